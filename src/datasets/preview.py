"""Preview tracks: the draft's keyframes propagated through the video before anyone pays.

The editor (and a script, through `POST/GET /api/v1/datasets/{id}/preview`) asks for a
preview of the current keyframes; the worker runs the engine (job `preview_dataset`) and
stores the tracks as `datasets/<id>/preview/<key>.json`, where `key` hashes the keyframes,
the engine and the review budget. So a preview is computed once per keyframe set and engine
and reused from the store; keyframes that change make a new key, and a preview whose key is
no longer the draft's current one (`is_current`) is skipped when queued and stopped when
running (the job checks four times a second; the engine stops within a frame).

A preview job starts from the one it replaces (`base`: the last ready key): next to each
document the store keeps the engine's `Reusable` (`<key>.reuse.npz`, src.vision.segments),
and only the spans of the tracks whose keyframes changed, from the unchanged keyframe
before the change to the one after it, are propagated again and spliced in. A fix in place
costs its neighbouring segments, not the video. Once a preview is stored, the dataset's older
ones are deleted (``prune``), except the one a queued job builds on.

The state of the draft's current preview lives in Redis (`forge:preview:<dataset id>`):
`{"key", "state": queued|running|ready|failed|empty, "done", "total", "error", "base", "spans"}`
(`spans`: what a running re-propagation changes, for the editor to mark).
Light on purpose: the web imports this, so no OpenCV here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from src.datasets.draft import service as drafts
from src.config import get_settings
from src.datasets.models import Dataset
from src.exceptions import Unprocessable
from src.storage import get_storage

ENGINE_VERSION = "2026-12-03"  # bump when the engine's tracks change for the same keyframes
MAX_RANGE = 2000  # frames per GET page


def redis_key(dataset_id: uuid.UUID) -> str:
    return f"forge:preview:{dataset_id}"


def store_key(dataset_id: uuid.UUID, key: str) -> str:
    return f"datasets/{dataset_id}/preview/{key}.json"


def reuse_key(dataset_id: uuid.UUID, key: str) -> str:
    """The engine's Reusable of preview `key`: what a later preview re-propagates on top of."""
    return f"datasets/{dataset_id}/preview/{key}.reuse.npz"


def stored_set(dataset_id: uuid.UUID) -> str:
    """Redis set of the preview keys stored for a dataset (so old ones can be deleted)."""
    return f"forge:preview:{dataset_id}:stored"


async def prune(redis, dataset_id: uuid.UUID, *, stored: str) -> list[str]:
    """Note that preview ``stored`` is in the store, then delete every other stored preview of
    the dataset but the current one and the one a queued or running job builds on (its
    ``base``): each keyframe edit makes a preview, and only those can still be read or reused.
    An undo to an older keyframe set then computes again (on top of the current one). Returns
    the keys deleted."""
    storage, members = get_storage(), stored_set(dataset_id)
    await redis.sadd(members, stored)
    state = await _state(redis, dataset_id)
    keep = {stored, state.get("key"), state.get("base")}
    gone = sorted(k.decode() if isinstance(k, bytes) else k for k in await redis.smembers(members))
    gone = [k for k in gone if k not in keep]
    for k in gone:
        for path in (store_key(dataset_id, k), reuse_key(dataset_id, k)):
            await asyncio.to_thread(storage.delete_prefix, path)
        await redis.srem(members, k)
    return gone


def engine_id() -> str:
    """The engine a preview is made with: the version, and the learned tracker's folder if set."""
    model = getattr(get_settings(), "tracker_model_dir", None)
    return f"{ENGINE_VERSION}:{model or 'builtin'}"


def preview_key(seeds: dict[int, list[dict[str, Any]]], *, budget: float, engine: str,
                checks: dict[str, Any] | None = None) -> str:
    """`checks`: what picks the attribute checks (`attribute_checks`), when the draft has any."""
    body = {"seeds": {str(k): v for k, v in sorted(seeds.items())}, "budget": round(budget, 4), "engine": engine}
    if checks:
        body["checks"] = checks
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


async def attribute_checks(session: AsyncSession, *, dataset: Dataset) -> dict[str, Any] | None:
    """What the hard-frame pick of the dataset would give to attribute checks (options
    `review_attribute_share`, `ava_rate`, and the draft's mutable attributes), so that the
    preview marks them too; None when it gives them nothing."""
    from dataclasses import asdict

    from src.datasets import service as dataset_service

    options = dataset_service.options_of(dataset)
    if options.review_attribute_share <= 0:
        return None
    specs = [asdict(s) for s in await drafts.attribute_specs(session, dataset_id=dataset.id) if s.mutable]
    if not specs:
        return None
    return {"share": options.review_attribute_share, "ava_rate": options.ava_rate, "specs": specs}


async def _state(redis, dataset_id: uuid.UUID) -> dict[str, Any]:
    raw = await redis.get(redis_key(dataset_id))
    return json.loads(raw) if raw else {}


async def set_state(redis, dataset_id: uuid.UUID, **state: Any) -> None:
    await redis.set(redis_key(dataset_id), json.dumps(state), ex=7 * 24 * 3600)


async def is_current(redis, dataset_id: uuid.UUID, key: str) -> bool:
    return (await _state(redis, dataset_id)).get("key") == key


async def request(session: AsyncSession, redis, *, dataset: Dataset) -> dict[str, Any]:
    """Start a preview of the draft's current keyframes, or reuse the stored one."""
    from src.datasets import service as dataset_service

    seeds = await drafts.seeds_for_engine(session, dataset_id=dataset.id)
    if not any(not o.get("gone") for objs in seeds.values() for o in objs):
        await set_state(redis, dataset.id, key=None, state="empty")
        return {"key": None, "state": "empty", "message": "Draw a box on a frame first: there is nothing to follow yet."}
    budget = dataset_service.options_of(dataset).review_budget
    key = preview_key(seeds, budget=budget, engine=engine_id(), checks=await attribute_checks(session, dataset=dataset))
    state = await _state(redis, dataset.id)
    if get_storage().exists(store_key(dataset.id, key)):
        await set_state(redis, dataset.id, key=key, state="ready")
        return {"key": key, "state": "ready"}
    if state.get("key") == key and state.get("state") in ("queued", "running"):
        return state
    base = state.get("key") if state.get("state") == "ready" else state.get("base")  # the last ready preview
    await set_state(redis, dataset.id, key=key, state="queued", done=0, total=0, base=base)
    await redis.enqueue_job("preview_dataset", str(dataset.id), key, base, _job_id=f"preview:{dataset.id}:{key}")
    return {"key": key, "state": "queued", "done": 0, "total": 0, "base": base}


async def read(redis, *, dataset: Dataset, start: int = 0, stop: int | None = None) -> dict[str, Any]:
    """The current preview's state and, when ready, its tracks on frames [start, stop)."""
    state = await _state(redis, dataset.id)
    out: dict[str, Any] = {"key": state.get("key"), "state": state.get("state", "none"), "done": state.get("done", 0),
                           "total": state.get("total", 0), "error": state.get("error")}
    if out["state"] in ("queued", "running"):
        out["updating"] = state.get("spans")  # [[track_id, first, last]] this run changes (None: all or not known yet)
    if out["state"] != "ready" or not out["key"]:
        return out
    storage = get_storage()
    with storage.open(store_key(dataset.id, out["key"])) as f:
        doc = json.load(f)
    n = doc["frames"]
    stop = n if stop is None else stop
    if start < 0 or stop < start:
        raise Unprocessable("The frame range needs 0 <= start <= stop.")
    stop = min(stop, n, start + MAX_RANGE)
    out |= {"frames": n, "fps": doc.get("fps"), "engine": doc.get("engine"), "start": start, "stop": stop,
            "hard_frames": doc.get("hard_frames", []), "attribute_checks": doc.get("attribute_checks", []), "keyframes": doc.get("keyframes", []), "spans": doc.get("spans"),
            "tracks": [{"track_id": t["track_id"], "class": t["class"], "boxes": t["boxes"][start:stop],
                        "confidence": t["confidence"][start:stop], "present": t.get("present")} for t in doc["tracks"]]}
    return out


def document(result, *, budget: float, keyframes: list[int], checks: dict[str, Any] | None = None,
             keyframe_attributes: dict | None = None) -> dict[str, Any]:
    """A PropagationResult as the stored preview: boxes rounded to 0.1 px (None where absent),
    confidence to 0.01, the frame ranges where each track is present, and the frames the
    hard-frame pick would send to review at `budget`: box checks (`hard_frames`) and, with
    `checks` (``attribute_checks``), the attribute checks among them (`attribute_checks`), as
    the dataset's own pick makes them (all frames delivered)."""
    from src.vision.hard_frames import select_hard_frames

    tracks = []
    for t in result.tracks:
        present = t.present
        boxes = [[round(float(v), 1) for v in t.boxes[i]] if present[i] else None for i in range(len(present))]
        runs, start = [], None
        for i, p in enumerate(list(present) + [False]):
            if p and start is None:
                start = i
            elif not p and start is not None:
                runs.append([start, i - 1])
                start = None
        tracks.append({"track_id": int(t.track_id), "class": t.class_name, "boxes": boxes, "present": runs,
                       "confidence": [round(float(c), 2) for c in t.confidence]})
    attribute = []
    if checks and budget > 0:
        from src.datasets.pipeline import pick_review_frames
        from src.vision.attributes import AttributeSpec

        specs = [AttributeSpec(**{**c, "values": tuple(c["values"])}) for c in checks["specs"]]
        pick = pick_review_frames(result, list(range(result.video.frames)), budget, keyframes,
                                  attribute_share=checks["share"], attributes=specs,
                                  keyframe_attributes=keyframe_attributes or {}, ava_rate=checks["ava_rate"])
        hard, attribute = pick.box_checks, pick.attribute_checks
    else:
        hard = select_hard_frames(result.tracks, result.video.frames, budget, exclude=keyframes) if budget > 0 else []
    return {"frames": int(result.video.frames), "fps": float(result.video.fps), "engine": result.engine,
            "keyframes": sorted(keyframes), "hard_frames": [int(f) for f in hard],
            "attribute_checks": [int(f) for f in attribute], "tracks": tracks}
