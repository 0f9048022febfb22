"""The flywheel end to end, offline on CPU: a ready dataset from a shared sequence -> a tiny
YOLO trained 1 epoch through the arq job -> registered with metrics -> predicts on a video
frame through the API -> ranks the hard frames of the next dataset (model_id option)."""

from __future__ import annotations

from tests.datasets.conftest import OPTIONS, make_draft, run_worker, top_up
from tests.detectors.conftest import predict_with_worker


async def _confirm(client, dataset: dict, options: dict) -> None:
    assert (await client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
    quote = (await client.get(f"/api/v1/datasets/{dataset['id']}/quote")).json()
    confirm = await client.post(f"/api/v1/datasets/{dataset['id']}/confirm", json={"expected_total_cents": quote["total_cents"]})
    assert confirm.status_code == 202, confirm.text


async def test_train_predict_and_rank(app, user_client, services):
    await top_up(app, "user@example.com", 1_000_000)
    dataset = await make_draft(user_client)
    await _confirm(user_client, dataset, {**OPTIONS, "formats": ["yolo"]})
    await run_worker(services[1])
    ready = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert ready["state"] == "ready", ready

    refused = await user_client.post("/api/v1/models/train", json={
        "dataset_ids": [dataset["id"]], "name": "x", "epochs": 1, "imgsz": 64, "base": "yolo11n.pt"})
    assert refused.status_code == 422 and "not downloaded" in refused.json()["detail"]
    response = await user_client.post("/api/v1/models/train", json={
        "dataset_ids": [dataset["id"], dataset["id"]], "name": "people v1", "epochs": 1, "imgsz": 64,
        "base": "yolov8n.yaml"})
    assert response.status_code == 202, response.text
    model = response.json()
    assert model["state"] == "training"
    await run_worker(services[1])
    model = (await user_client.get(f"/api/v1/models/{model['id']}")).json()
    assert model["state"] == "ready", model
    assert model["classes"] == ["person"] and model["training"]["device"] == "cpu"
    assert model["progress"]["epoch"] == 1 and "box_loss" in model["progress"]["losses"]
    evaluations = (await user_client.get(f"/api/v1/models/{model['id']}/evaluations")).json()
    assert len(evaluations) == 1 and evaluations[0]["split"] == "val"
    assert all(0 <= evaluations[0][k] <= 1 for k in ("precision", "recall", "map50", "map50_95"))
    page = await user_client.get(f"/models/{model['id']}", headers={"accept": "text/html"})
    assert page.status_code == 200 and 'id="metrics"' in page.text
    listing = await user_client.get("/models", headers={"accept": "text/html"})
    assert "Master v1" in listing.text and "people v1" in listing.text

    # the registered model loads and predicts on a frame of the video, classes mapped onto the draft
    prediction = await predict_with_worker(app, user_client, services[1], model["id"], {
        "video_id": dataset["video_id"], "frame": 10, "dataset_id": dataset["id"], "conf": 0.001})
    assert prediction.status_code == 200, prediction.text
    body = prediction.json()
    assert body["width"] == 360 and body["height"] == 240 and body["frame"] == 10
    for box in body["boxes"]:
        assert box["model_class"] == "person" and box["class_name"] == "person"
        x1, y1, x2, y2 = box["box"]
        assert 0 <= x1 <= x2 <= 360 and 0 <= y1 <= y2 <= 240
    out_of_range = await user_client.post(f"/api/v1/models/{model['id']}/predict",
                                          json={"video_id": dataset["video_id"], "frame": 10_000})
    assert out_of_range.status_code == 422

    # the next dataset of the video uses the model to rank its hard frames
    second = await make_draft(user_client, name="pedestrians again", video={"id": dataset["video_id"]})
    await _confirm(user_client, second, {**OPTIONS, "formats": ["yolo"], "review_budget": 0.05,
                                          "model_id": model["id"]})
    await run_worker(services[1])
    second = (await user_client.get(f"/api/v1/datasets/{second['id']}")).json()
    assert second["state"] == "in_review", second
    assert second["options"]["model_id"] == model["id"]
