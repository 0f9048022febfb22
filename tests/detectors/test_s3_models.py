"""Detector models with STORAGE_URL=s3://... (moto's S3 server on loopback): the uploaded file
goes to the bucket, the worker validates it and answers "Suggest boxes" from its own cache of
the store (the job carries storage keys, not the web's paths), and nothing is written to the
local storage folder."""

from __future__ import annotations

import shutil

from src.config import get_settings
from tests.datasets.conftest import CROSSING, run_worker
from tests.detectors.conftest import predict_with_worker, upload_model
from tests.test_s3_storage import _objects, s3_endpoint, s3_settings  # noqa: F401 - fixtures
from tests.videos.conftest import stored_files, upload


async def test_models_live_in_the_store_and_workers_run_them_from_their_cache(
        app, user_client, services, model_files, s3_settings, tmp_path):  # noqa: F811
    model = (await upload_model(user_client, model_files["tiny.pt"], name="coco tiny")).json()
    assert model["state"] == "validating"
    video = (await upload(user_client, CROSSING / "video.mp4")).json()
    objects = _objects(s3_settings)
    stored = [k for k in objects if k.startswith("forge/detectors/") and model["id"] in k]
    assert len(stored) == 1 and objects[stored[0]] == model_files["tiny.pt"].stat().st_size
    shutil.rmtree(tmp_path / "cache")  # the worker, as if on another machine, has no copy yet
    await run_worker(services[1])
    model = (await user_client.get(f"/api/v1/models/{model['id']}")).json()
    assert model["state"] == "ready", model
    shutil.rmtree(tmp_path / "cache")
    body = {"video_id": video["id"], "frame": 119, "conf": 0.001}
    answered = await predict_with_worker(app, user_client, services[1], model["id"], body)
    assert answered.status_code == 200, answered.text
    assert answered.json()["frame"] == 119
    cached = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert "source" in cached and stored[0].rsplit("/", 1)[1] in cached  # both fetched by the worker
    local_root = get_settings().storage_path
    assert not local_root.exists() or stored_files(local_root) == []
