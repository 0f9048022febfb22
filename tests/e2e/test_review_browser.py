"""In a real browser: the built-in review. An annotator opens a job from "My review jobs",
redraws the box on one hard frame, accepts another, completes; a second annotator accepts
the job; the worker re-propagates and the drawn box is in the delivered dataset."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest

from src.vision.metrics import load_otb
from tests.datasets.conftest import CROSSING, run_worker, top_up
from tests.e2e.test_editor_browser import PASSWORD, Canvas, login, saved

pytestmark = pytest.mark.browser


async def _account(base_url: str, email: str) -> dict:
    async with httpx.AsyncClient(base_url=base_url) as api:
        assert (await api.post("/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
        token = (await api.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})).json()
        return {"Authorization": f"Bearer {token['access_token']}"}


async def test_builtin_review_in_the_browser(page, live_server, app, services):
    from tests.conftest import set_role

    owner = await _account(live_server, "owner@example.com")
    for email in ("anna@example.com", "rob@example.com"):
        await _account(live_server, email)
        await set_role(app, email, "annotator")
    await top_up(app, "owner@example.com", 100_000)
    first = [float(v) for v in load_otb(CROSSING / "groundtruth_rect.txt")[0]]
    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        with (CROSSING / "video.mp4").open("rb") as f:
            video = (await api.post("/api/v1/videos", files={"file": ("crossing.mp4", f, "video/mp4")})).json()
        draft = (await api.post("/api/v1/datasets", json={"video_id": video["id"], "name": "Crossing", "classes": ["person"]})).json()
        await api.put(f"/api/v1/datasets/{draft['id']}/keyframes/0", json={"objects": [{"track_id": 1, "class": "person", "box": first}]})
        await api.put(f"/api/v1/datasets/{draft['id']}/options", json={"review_budget": 0.05, "formats": ["coco"]})
        assert (await api.post(f"/api/v1/datasets/{draft['id']}/confirm")).status_code == 202
        await run_worker(services[1])
        assert (await api.get(f"/api/v1/datasets/{draft['id']}")).json()["state"] == "in_review"

    await login(page, "anna@example.com")
    await page.goto("/review")
    await page.click("text=Open")
    await page.wait_for_url("**/review/jobs/*")
    await page.set_viewport_size({"width": 1280, "height": 1100})  # the review panel sits above the editor
    canvas = Canvas(page)
    await page.locator("#editor-canvas").scroll_into_view_if_needed()
    await canvas.ready()
    frame = int(await page.locator("#frame-number").input_value())
    # a box the tracker missed: draw it (the edit marks the frame "fixed")
    drawn = [100.0, 60.0, 160.0, 200.0]
    await canvas.drag(drawn[:2], drawn[2:])
    await saved(page)
    await page.click("#complete-job")
    await page.click("#complete-anyway")  # the other frames are still pending: the page asks first
    await page.wait_for_url("**/review")

    await page.click("text=Log out")
    await login(page, "rob@example.com")
    await page.goto("/review")
    await page.click("text=Open")
    await page.wait_for_selector("#accept-job")
    assert await page.locator("#frame-list a[data-decision='fixed']").count() == 1
    await page.click("#accept-job")
    await page.wait_for_url("**/review")

    await run_worker(services[1])
    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        done = (await api.get(f"/api/v1/datasets/{draft['id']}")).json()
        assert done["state"] == "ready", done
        archive = zipfile.ZipFile(io.BytesIO((await api.get(f"/api/v1/datasets/{draft['id']}/download?format=coco")).content))
        manifest = {f["frame"]: f for f in json.loads(archive.read("manifest.json"))["frames"]}
    reviewed = manifest[frame]
    assert reviewed["source"] == "reviewed"
    boxes = [o["box"] for o in reviewed["objects"]]
    assert any(all(abs(a - b) <= 3 for a, b in zip(box, drawn)) for box in boxes), boxes
