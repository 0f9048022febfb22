"""Model upload and validation in the worker, ownership, and refusals with clear messages."""

from __future__ import annotations

from src.config import get_settings
from tests.conftest import login_cookie, register
from tests.datasets.conftest import CROSSING, run_worker
from tests.detectors.conftest import predict_with_worker, upload_model
from tests.videos.conftest import upload


async def test_upload_is_validated_in_the_worker(app, user_client, services, model_files):
    response = await upload_model(user_client, model_files["tiny.pt"], name="coco tiny")
    assert response.status_code == 202, response.text
    model = response.json()
    assert model["state"] == "validating" and model["kind"] == "pt"
    await run_worker(services[1])
    model = (await user_client.get(f"/api/v1/models/{model['id']}")).json()
    assert model["state"] == "ready", model
    assert len(model["classes"]) == 80 and model["classes"][:2] == ["0", "1"]  # the model's own (yaml-built) names
    listed = (await user_client.get("/api/v1/models")).json()
    assert [m["id"] for m in listed] == [model["id"]]
    page = await user_client.get("/models", headers={"accept": "text/html"})
    assert page.status_code == 200 and "coco tiny" in page.text


async def test_predictions_run_in_the_worker(app, user_client, services, model_files, monkeypatch):
    model = (await upload_model(user_client, model_files["tiny.pt"], name="coco tiny")).json()
    video = (await upload(user_client, CROSSING / "video.mp4")).json()
    await run_worker(services[1])
    body = {"video_id": video["id"], "frame": 119, "conf": 0.001}
    # no worker answers: a clear 503 after the configured wait, not a hang
    monkeypatch.setattr(get_settings(), "predict_timeout_s", 0.3)
    waited = await user_client.post(f"/api/v1/models/{model['id']}/predict", json=body)
    assert waited.status_code == 503 and "No worker ran the model" in waited.json()["detail"]
    await app.state.redis.delete("arq:queue")  # the unanswered click expires; drop it now
    monkeypatch.setattr(get_settings(), "predict_timeout_s", 60.0)
    answered = await predict_with_worker(app, user_client, services[1], model["id"], body)
    assert answered.status_code == 200, answered.text
    answer = answered.json()
    assert answer["frame"] == 119 and (answer["width"], answer["height"]) == (360, 240)
    for box in answer["boxes"]:  # a random-weight 80-class model: any boxes, but well-formed
        assert box["model_class"] in model["classes"] and 0 <= box["confidence"] <= 1
        x1, y1, x2, y2 = box["box"]
        assert 0 <= x1 <= x2 <= 360 and 0 <= y1 <= y2 <= 240


async def test_broken_and_wrong_files_are_refused(app, user_client, services, model_files):
    # obviously not a model: refused at once
    notes = await upload_model(user_client, model_files["notes.pt"])
    assert notes.status_code == 422 and "not a PyTorch checkpoint" in notes.json()["detail"]
    other = await upload_model(user_client, model_files["model.txt"])
    assert other.status_code == 422 and ".pt checkpoint or an .onnx export" in other.json()["detail"]
    bad_classes = await upload_model(user_client, model_files["tiny.pt"], classes='["a", 3]')
    assert bad_classes.status_code == 422 and "classes" in bad_classes.json()["detail"]
    # looks like one, fails to load / has the wrong shape / wrong class count: the worker says why
    broken = (await upload_model(user_client, model_files["broken.pt"])).json()
    gray = (await upload_model(user_client, model_files["gray.onnx"], classes="a,b")).json()
    counted = (await upload_model(user_client, model_files["tiny.pt"], classes="helmet, vest")).json()
    await run_worker(services[1])
    broken = (await user_client.get(f"/api/v1/models/{broken['id']}")).json()
    assert broken["state"] == "invalid" and "could not be loaded" in broken["error"], broken
    gray = (await user_client.get(f"/api/v1/models/{gray['id']}")).json()
    assert gray["state"] == "invalid" and "[1, 1, 32, 32]" in gray["error"] and "[1, 3, H, W]" in gray["error"], gray
    counted = (await user_client.get(f"/api/v1/models/{counted['id']}")).json()
    assert counted["state"] == "invalid" and "80 classes" in counted["error"] and "2 class names" in counted["error"]
    # an invalid model cannot predict
    predict = await user_client.post(f"/api/v1/models/{broken['id']}/predict", json={"video_id": broken["id"], "frame": 0})
    assert predict.status_code == 409


async def test_models_belong_to_their_owner(app, user_client, admin_client, make_client, services, model_files):
    mine = (await upload_model(user_client, model_files["tiny.pt"], name="mine")).json()
    other = make_client()
    await register(other, "other@example.com")
    await login_cookie(other, "other@example.com")
    for method, url in (("GET", f"/api/v1/models/{mine['id']}"), ("DELETE", f"/api/v1/models/{mine['id']}"),
                        ("GET", f"/models/{mine['id']}")):
        assert (await other.request(method, url)).status_code == 404, url
    predict = await other.post(f"/api/v1/models/{mine['id']}/predict", json={"video_id": mine["id"], "frame": 0})
    assert predict.status_code == 404
    assert (await other.get("/api/v1/models")).json() == []
    # only an admin may share; a shared model is visible (not deletable) to everyone
    refused = await upload_model(user_client, model_files["tiny.pt"], shared="true")
    assert refused.status_code == 403
    shared = (await upload_model(admin_client, model_files["tiny.pt"], name="house model", shared="true")).json()
    assert [m["name"] for m in (await other.get("/api/v1/models")).json()] == ["house model"]
    assert (await other.delete(f"/api/v1/models/{shared['id']}")).status_code == 404
    assert (await admin_client.get(f"/api/v1/models/{mine['id']}")).status_code == 200
    assert (await user_client.delete(f"/api/v1/models/{mine['id']}")).status_code == 204
    assert (await user_client.get(f"/api/v1/models/{mine['id']}")).status_code == 404
