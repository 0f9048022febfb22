"""A script with only a personal API token takes a video from upload to a downloaded dataset:
the `forge datasets` commands run as subprocesses against a real uvicorn server, the worker
in this test process. Then HEAD on the download, the dataset deleted (files gone, ledger kept)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import zipfile

import httpx

from src.config import get_settings
from tests.conftest import register
from tests.datasets.conftest import CROSSING, first_box, run_worker, top_up


async def _forge(env: dict[str, str], *args: str) -> tuple[int, dict | list | None, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "src.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    text = out.decode()
    return process.returncode, json.loads(text) if text.strip() else None, err.decode()


async def test_a_token_script_takes_a_video_to_a_downloaded_dataset(app, services, live_server, tmp_path):
    _, redis_url = services
    async with httpx.AsyncClient(base_url=live_server) as http:
        await register(http, "script@example.com")
        login = await http.post("/auth/jwt/login", data={"username": "script@example.com", "password": "correct-horse-9"})
        jwt = {"Authorization": f"Bearer {login.json()['access_token']}"}
        made = await http.post("/api/v1/users/me/tokens", json={"name": "pipeline", "scope": "write"}, headers=jwt)
        assert made.status_code == 201, made.text
        token = made.json()["token"]
    await top_up(app, "script@example.com", 1_000_000)

    env = {**os.environ, "FORGE_URL": live_server, "FORGE_TOKEN": token}
    keyframes = tmp_path / "keyframes.json"
    keyframes.write_text(json.dumps({"0": [{"track_id": 1, "class": "person", "box": first_box(CROSSING)}]}))
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"sampling": {"mode": "every_n", "every_n": 10}, "formats": ["yolo", "mot"],
                                   "review_budget": 0}))

    code, draft, err = await _forge(env, "datasets", "create", "--video", str(CROSSING / "video.mp4"),
                                    "--name", "crossing", "--class", "person", "--keyframes", str(keyframes))
    assert code == 0, err
    assert draft["state"] == "draft" and draft["classes"][0]["name"] == "person" and draft["keyframes"] == [0]
    assert "upload video.mp4" in err  # the upload's progress bar

    # a confirm body with the options at the top level is refused, naming the field (issue 18.12)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"review_budget": 0}))
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {token}"}) as http:
        refused = await http.post(f"/api/v1/datasets/{draft['id']}/confirm", json={"review_budget": 0})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "review_budget"]

    code, queued, err = await _forge(env, "datasets", "confirm", draft["id"], "--options", str(options))
    assert code == 0, err
    assert queued["state"] == "queued" and queued["options"]["sampling"]["every_n"] == 10

    waiting = asyncio.ensure_future(_forge(env, "datasets", "wait", draft["id"], "--poll", "0.5", "--timeout", "280"))
    await run_worker(redis_url)
    code, ready, err = await waiting
    assert code == 0, err
    assert ready["state"] == "ready" and set(ready["downloads"]) == {"yolo", "mot"}
    assert "ready: 100%" in err and "HTTP Request" not in err  # the progress bar reached the end, no log noise

    code, result, err = await _forge(env, "datasets", "download", draft["id"], "--format", "yolo",
                                     "--out", str(tmp_path / "out"))
    assert code == 0, err
    path = tmp_path / "out" / "crossing-yolo.zip"
    assert result == {"path": str(path)} and path.exists()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "data.yaml" in names and any(n.startswith("labels/train/") and n.endswith(".txt") for n in names)

    code, listed, err = await _forge(env, "datasets", "list", "--state", "ready")
    assert code == 0 and [d["id"] for d in listed] == [draft["id"]], err

    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {token}"}) as http:
        url = f"/api/v1/datasets/{draft['id']}/download"
        head = await http.head(url, params={"format": "yolo"})
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == path.stat().st_size
        assert head.headers["content-type"] == "application/zip"
        assert (await http.head(url, params={"format": "coco"})).status_code == 404  # not exported
        ledger_before = (await http.get("/api/v1/billing/ledger")).json()["items"]
        assert any(row.get("dataset_id") == draft["id"] for row in ledger_before)

    code, deleted, err = await _forge(env, "datasets", "delete", draft["id"])
    assert code == 0 and deleted == {"deleted": draft["id"]}, err
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.get(f"/api/v1/datasets/{draft['id']}")).status_code == 404
        ledger_after = (await http.get("/api/v1/billing/ledger")).json()["items"]
    assert ledger_after == ledger_before  # the money trail stays
    storage = get_settings().storage_path / "datasets" / draft["id"]
    for _ in range(50):  # removed by a background task after the response
        if not storage.exists():
            break
        await asyncio.sleep(0.1)
    assert not storage.exists()

    code, _, err = await _forge(env, "datasets", "wait", draft["id"])
    assert code == 1 and "HTTP 404" in err  # a clear message, no traceback
    code, _, err = await _forge({**env, "FORGE_TOKEN": ""}, "datasets", "list")
    assert code == 2 and "FORGE_TOKEN" in err
