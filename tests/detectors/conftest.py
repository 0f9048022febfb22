"""Real model files made offline: a tiny YOLO checkpoint from an architecture yaml, an ONNX
with the wrong input, a truncated checkpoint and a text file named .pt."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict[str, Path]:
    import torch

    from src.detectors.inference import ultralytics

    root = tmp_path_factory.mktemp("models")
    model = ultralytics().YOLO("yolov8n.yaml")  # built offline, 80 classes, random weights
    model.save(str(root / "tiny.pt"))
    data = (root / "tiny.pt").read_bytes()
    (root / "broken.pt").write_bytes(data[: len(data) // 3])  # a zip cut short: passes the sniff, fails to load
    (root / "notes.pt").write_text("these are my notes, not a model\n")
    (root / "model.txt").write_text("hello")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    torch.onnx.export(net, (torch.zeros(1, 1, 32, 32),), str(root / "gray.onnx"), dynamo=False)
    return {p.name: p for p in root.iterdir()}


async def upload_model(client, path: Path, name: str = "tiny", classes: str | None = None, **data):
    with path.open("rb") as f:
        form = {"name": name, **({"classes": classes} if classes is not None else {}), **data}
        return await client.post("/api/v1/models", files={"file": (path.name, f, "application/octet-stream")}, data=form)


async def predict_with_worker(app, client, redis_url: str, model_id: str, body: dict):
    """POST a predict request and run a burst worker once its job is queued (the web waits for it)."""
    from tests.datasets.conftest import run_worker

    request = asyncio.ensure_future(client.post(f"/api/v1/models/{model_id}/predict", json=body))
    for _ in range(400):
        if request.done() or await app.state.redis.zcard("arq:queue"):
            break
        await asyncio.sleep(0.025)
    if not request.done():
        await run_worker(redis_url)
    return await request
