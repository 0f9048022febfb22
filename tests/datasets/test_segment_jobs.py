"""A long video's propagation in segment jobs (src.datasets.segment_jobs), in a real worker:
the dataset equals the one made in one piece, label for label (a worker that dies mid-segment:
test_segment_workers.py)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest

from src.config import get_settings
from src.datasets import service
from src.storage import get_storage
from tests.datasets.conftest import CROSSING, OPTIONS, make_draft, run_worker, top_up


def _truth(frame: int) -> list[float]:
    from src.vision.metrics import load_otb

    x1, y1, x2, y2 = (float(v) for v in load_otb(CROSSING / "groundtruth_rect.txt")[frame])
    return [x1, y1, x2, y2]


async def _confirmed(app, client, name: str, video: dict | None = None) -> dict:
    dataset = await make_draft(client, name=name, video=video)
    keyframe = {"objects": [{"track_id": 1, "class": "person", "box": _truth(60)}]}
    assert (await client.put(f"/api/v1/datasets/{dataset['id']}/keyframes/60", json=keyframe)).status_code == 200
    options = {**OPTIONS, "formats": ["yolo", "mot"]}
    assert (await client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
    confirm = await client.post(f"/api/v1/datasets/{dataset['id']}/confirm")
    assert confirm.status_code == 202, confirm.text
    return dataset


async def _labels(client, dataset_id: str) -> dict[str, bytes]:
    response = await client.get(f"/api/v1/datasets/{dataset_id}/download", params={"format": "mot"})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        return {n: z.read(n) for n in z.namelist() if n.endswith(".txt")}


def _timeline(dataset_id: str) -> dict:
    with get_storage().open(service.artifact_key(uuid.UUID(dataset_id), "timeline.json")) as f:
        return json.load(f)


async def _one_piece_and_split(app, client, services, monkeypatch, **split) -> tuple[str, str]:
    """The same keyframes made into a dataset in one piece, then in segment jobs with the
    settings ``split`` (the 120-frame clip counting as long): both ready; their ids."""
    await top_up(app, "user@example.com", 1_000_000)
    settings = get_settings()
    monkeypatch.setattr(settings, "segment_min_frames", 0)  # one piece
    whole = await _confirmed(app, client, "one piece")
    await run_worker(services[1])
    monkeypatch.setattr(settings, "segment_min_frames", 100)
    for name, value in split.items():
        monkeypatch.setattr(settings, name, value)
    video = (await client.get(f"/api/v1/datasets/{whole['id']}")).json()["video_id"]
    parts = await _confirmed(app, client, "segments", video={"id": video})
    await run_worker(services[1])
    for dataset in (whole, parts):
        done = (await client.get(f"/api/v1/datasets/{dataset['id']}")).json()
        assert done["state"] == "ready", done
    return whole["id"], parts["id"]


async def test_segment_jobs_give_the_dataset_of_one_piece(app, user_client, services, monkeypatch):
    # 4 passes of ~60 frames: a segment or two each
    whole, parts = await _one_piece_and_split(app, user_client, services, monkeypatch, segment_work=40)
    assert _timeline(whole)["segments"] == 0
    assert _timeline(parts)["segments"] >= 3
    one, split = await _labels(user_client, whole), await _labels(user_client, parts)
    assert one and one == split


async def test_a_long_pass_in_chunk_jobs_gives_the_dataset_of_one_piece(app, user_client, services, monkeypatch):
    """Keyframes on frames 0 and 60: the three passes of 59 frames (forward from 0, both ways
    from 60) run as chunks of at most 25 frames, each a job going on from the checkpoint of the
    one before: the labels are those of one piece."""
    whole, chunked = await _one_piece_and_split(app, user_client, services, monkeypatch, segment_chunk_frames=25)
    assert _timeline(chunked)["segments"] == 3 * 3  # the empty pass back from frame 0 is no job
    one, split = await _labels(user_client, whole), await _labels(user_client, chunked)
    assert one and one == split
