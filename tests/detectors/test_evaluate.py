"""Models are compared on every master version: a dataset made with model A (its detections
fused into the propagation), model B trained on a new master v2, and A measured on v2 too;
plus the by-name class mapping of a master split for a model with other classes."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from src.detectors import master
from tests.datasets.conftest import OPTIONS, make_draft, run_worker, top_up
from tests.detectors.test_training import _confirm


async def _train(client, redis_url: str, name: str, dataset_ids: list[str]) -> dict:
    response = await client.post("/api/v1/models/train", json={
        "dataset_ids": dataset_ids, "name": name, "epochs": 1, "imgsz": 64, "base": "yolov8n.yaml"})
    assert response.status_code == 202, response.text
    await run_worker(redis_url)
    model = (await client.get(f"/api/v1/models/{response.json()['id']}")).json()
    assert model["state"] == "ready", model
    return model


async def test_a_new_master_version_measures_the_other_models(app, user_client, services):
    from src.datasets.service import artifact_key
    from src.detectors.tasks import detections_key
    from src.storage import get_storage

    await top_up(app, "user@example.com", 1_000_000)
    first = await make_draft(user_client)
    await _confirm(user_client, first, {**OPTIONS, "formats": ["yolo"]})
    await run_worker(services[1])
    model_a = await _train(user_client, services[1], "A", [first["id"]])

    # a dataset made with model A: its detections are fused into the propagation, then exported
    second = await make_draft(user_client, name="with model A", video={"id": first["video_id"]})
    await _confirm(user_client, second, {**OPTIONS, "formats": ["yolo"], "model_id": model_a["id"]})
    await run_worker(services[1])
    assert (await user_client.get(f"/api/v1/datasets/{second['id']}")).json()["state"] == "ready"
    storage = get_storage()
    assert storage.exists(detections_key(second["id"], model_a["id"]))  # kept for the build after a review
    timeline = json.loads(storage.local_path(artifact_key(second["id"], "timeline.json")).read_text())
    assert timeline["model_filled_boxes"] >= 0

    # B's training makes master v2; A is measured on v2 by the same worker run
    model_b = await _train(user_client, services[1], "B", [first["id"], second["id"]])
    masters = {e["master_id"] for e in (await user_client.get(f"/api/v1/models/{model_b['id']}/evaluations")).json()}
    assert len(masters) == 1 and model_b["master_id"] in masters
    evaluations = (await user_client.get(f"/api/v1/models/{model_a['id']}/evaluations")).json()
    assert {e["master_id"] for e in evaluations} == {model_a["master_id"], model_b["master_id"]}
    assert all(0 <= e[k] <= 1 for e in evaluations for k in ("precision", "recall", "map50", "map50_95"))

    # on demand: the API (latest version by default) and the /models button
    queued = await user_client.post(f"/api/v1/models/{model_a['id']}/evaluate", json={})
    assert queued.status_code == 202 and queued.json()["version"] == 2, queued.text
    listing = await user_client.get("/models", headers={"accept": "text/html"})
    assert "Evaluate on the latest version" in listing.text and f'action="/models/{model_a["id"]}/evaluate"' in listing.text
    token = user_client.headers["X-CSRF-Token"]
    form = await user_client.post(f"/models/{model_a['id']}/evaluate", data={"csrf_token": token},
                                  headers={"accept": "text/html"})
    assert form.status_code in (302, 303), form.text
    await run_worker(services[1])
    assert len((await user_client.get(f"/api/v1/models/{model_a['id']}/evaluations")).json()) == 2  # replaced, not added
    other = await user_client.post(f"/api/v1/models/{model_a['id']}/evaluate", json={"master_id": first["id"]})
    assert other.status_code == 404  # not a master version of this user


def test_a_master_split_relabelled_for_a_model_with_other_classes(tmp_path: Path):
    root = tmp_path / "master"
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    (root / "images" / "val" / "v_1.jpg").write_bytes(b"jpg")
    (root / "labels" / "val" / "v_1.txt").write_text("0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "val": "images/val", "nc": 2,
                                                    "names": {0: "helmet", 1: "Person"}}))
    assert master.common_classes(["car", "person"], ["helmet", "Person"]) == ["Person"]
    assert master.common_classes(["0", "1"], ["helmet", "Person"]) == []
    data_yaml = Path(master.for_model(str(root), "val", ["car", "person"], str(tmp_path / "view")))
    document = yaml.safe_load(data_yaml.read_text())
    assert document["names"] == {0: "car", 1: "person"} and document["val"] == "images/val"
    assert (tmp_path / "view" / "labels" / "val" / "v_1.txt").read_text() == "1 0.2 0.2 0.1 0.1\n"  # helmet dropped
    assert (tmp_path / "view" / "images" / "val" / "v_1.jpg").resolve() == (root / "images" / "val" / "v_1.jpg")
    same = master.for_model(str(root), "val", ["Helmet", "person"], str(tmp_path / "unused"))
    assert same == str(root / "data.yaml")
