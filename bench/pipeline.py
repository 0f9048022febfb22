"""Platform benchmarks (issue: datasets). Prints figures; not part of the test run.

1. End to end through the real platform (embedded PostgreSQL + Redis, the FastAPI app, an
   arq burst worker with its process pool): otb_faceocc1 (892 frames, 1 object) and a
   synthetic 720p, 3-minute video with 5 objects. Time per stage beside the engine alone
   (the same propagation called directly in one process); overhead = platform / engine - 1.
2. Export of 10,000 frames to all four formats: time and peak memory of the process.

    python -m bench.pipeline [--skip-e2e] [--skip-export] [--minutes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

TMP = Path(tempfile.mkdtemp(prefix="forge-bench-"))
os.environ.update({"ENVIRONMENT": "test", "VAR_DIR": str(TMP / "var"), "CERTS_DIR": str(TMP / "certs"),
                   "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789", "WORKER_PROCESSES": "2"})

from bench.common import SHARED, first_seeds, load_sequence  # noqa: E402
from src.vision.propagate import propagate  # noqa: E402
from src.vision.synthetic import make_video  # noqa: E402


def engine_alone(video: Path, seeds) -> float:
    t0 = time.perf_counter()
    propagate(video, seeds, budget=0)
    return time.perf_counter() - t0


async def platform_run(video: Path, seeds, classes: list[str]) -> dict:
    """Upload, draft, keyframe, confirm, burst worker; returns the job's stage timings."""
    import httpx
    from arq.worker import Worker
    from sqlalchemy import select

    from src.auth.models import User
    from src.billing import service as billing_service
    from src.cli import migrate
    from src.config import get_settings
    from src.database import unit_of_work
    from src.embedded import EmbeddedPostgres, EmbeddedRedis
    from src.main import create_app
    from src.quotas import service as quota_service
    from src.worker import redis_settings, shutdown, startup, task_functions

    postgres, redis = EmbeddedPostgres(TMP / f"pg-{uuid.uuid4().hex[:6]}"), EmbeddedRedis(TMP / "redis")
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = postgres.start(), redis.start()
    get_settings.cache_clear()
    await asyncio.to_thread(migrate)
    app = create_app()
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600) as c:
                await c.get("/login")  # the CSRF cookie, which logging in needs too (login CSRF)
                c.headers["X-CSRF-Token"] = c.cookies["forge_csrf"]
                registered = await c.post("/auth/register", json={"email": "bench@example.com", "password": "sunlit-meadow-42"})
                assert registered.status_code == 201, registered.text
                logged_in = await c.post("/auth/login", data={"username": "bench@example.com", "password": "sunlit-meadow-42"})
                assert logged_in.status_code in (200, 204), logged_in.text
                async with unit_of_work(app.state.sessionmaker) as session:
                    user = (await session.scalars(select(User))).one()
                    await billing_service.top_up(session, user_id=user.id, amount_cents=10**9, reason="bench", admin_id=None)
                    big = {"max_storage_bytes": 10**12, "max_video_bytes": 10**11, "max_video_duration_s": 10**6,
                           "frames_per_month": 10**9, "max_videos": 1000}
                    await quota_service.set_overrides(session, user_id=user.id, changes=big)
                with video.open("rb") as f:
                    response = await c.post("/api/v1/videos", files={"file": (video.name, f, "video/mp4")})
                    assert response.status_code == 201, response.text
                    uploaded = response.json()
                draft = (await c.post("/api/v1/datasets", json={"video_id": uploaded["id"], "name": "bench", "classes": classes})).json()
                for frame, objs in seeds.items():
                    body = {"objects": [{"track_id": s.track_id, "class": classes[0], "box": [float(v) for v in s.box]} for s in objs]}
                    response = await c.put(f"/api/v1/datasets/{draft['id']}/keyframes/{frame}", json=body)
                    assert response.status_code == 200, response.text
                options = {"sampling": {"mode": "all"}, "formats": ["yolo", "coco", "cvat", "ava"], "review_budget": 0}
                await c.put(f"/api/v1/datasets/{draft['id']}/options", json=options)
                t0 = time.perf_counter()
                assert (await c.post(f"/api/v1/datasets/{draft['id']}/confirm")).status_code == 202
                worker = Worker(functions=task_functions(), redis_settings=redis_settings(os.environ["REDIS_URL"]),
                                on_startup=startup, on_shutdown=shutdown, burst=True, poll_delay=0.05, handle_signals=False)
                await worker.main()
                await worker.close()
                total = time.perf_counter() - t0
                done = (await c.get(f"/api/v1/datasets/{draft['id']}")).json()
                assert done["state"] == "ready", done
                timeline = json.loads((get_settings().storage_path / "datasets" / draft["id"] / "timeline.json").read_text())
                return {"total": total, "stages": timeline["stage_seconds"], "engine_in_job": timeline["engine_seconds"],
                        "frames": done["delivered_frames"]}
    finally:
        redis.stop()
        postgres.stop()


def e2e(minutes: float) -> None:
    """minutes = 0: the shared sequence only."""
    cases = []
    faceocc = SHARED / "sequences" / "otb_faceocc1"
    if faceocc.exists():
        video, info, gt = load_sequence("otb_faceocc1")
        cases.append(("otb_faceocc1 352x288, 1 object", video, first_seeds(gt)))
    if minutes > 0:
        synthetic = TMP / "synthetic_720p.mp4"
        gt = make_video(synthetic, width=1280, height=720, n_frames=int(minutes * 60 * 30), n_objects=5, seed=3)
        cases.append((f"synthetic 720p {minutes:g} min, 5 objects", synthetic, first_seeds(gt)))

    print("\n| video | frames | engine alone s | job propagating s (since 2026-12-02 with sampling and images) | sampling s | building s | job total s | propagation overhead | whole job / engine |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, video, seeds in cases:
        alone = engine_alone(video, seeds)
        run = asyncio.run(platform_run(video, seeds, ["object"]))
        st = run["stages"]
        print(f"| {name} | {run['frames']} | {alone:.1f} | {st.get('propagating', 0):.1f} | {st.get('sampling', 0):.1f} | "
              f"{st.get('building', 0):.1f} | {run['total']:.1f} | {st.get('propagating', 0) / alone - 1:+.1%} | "
              f"{run['total'] / alone:.2f}× |", flush=True)


def _export_child(n_frames: int, out: str, queue) -> None:
    from src.vision.formats.build import build_exports
    from src.vision.formats.model import ExportSpec, labeled_frames, split_by_blocks
    from src.vision.types import SOURCE_KEYFRAME, SOURCE_PROPAGATED, PropagationResult, Track, VideoInfo
    import cv2

    width, height = 640, 360
    video = Path(out) / "long.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    for i in range(n_frames):
        writer.write(np.roll(base, i, axis=1))
    writer.release()
    tracks = []
    for k in range(5):
        boxes = np.zeros((n_frames, 4), np.float32)
        x = (np.arange(n_frames) * (k + 1)) % (width - 60)
        boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3] = x, 40 * k + 10, x + 50, 40 * k + 60
        source = np.full(n_frames, SOURCE_PROPAGATED, np.uint8)
        source[0] = SOURCE_KEYFRAME
        tracks.append(Track(k + 1, "object", boxes, np.full(n_frames, 0.9, np.float32), source))
    result = PropagationResult(VideoInfo(n_frames, 30.0, width, height, "mp4v", "mp4", n_frames / 30), tracks)
    frames = list(range(n_frames))
    spec = ExportSpec("bench", "bench", "video", "long.mp4", width, height, 30.0, n_frames, ["object"])
    split = split_by_blocks(frames, {"train": 0.8, "valid": 0.2}, 0)
    t0 = time.perf_counter()
    labeled = labeled_frames(result, frames, split, {"object": 0})
    zips = build_exports(video, result, spec, labeled, Path(out) / "export")
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = {fmt: round(p.stat().st_size / 2**20, 1) for fmt, p in zips.items()}
    queue.put((seconds, peak_mb, sizes))


def export(n_frames: int = 10_000) -> None:
    queue = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=_export_child, args=(n_frames, str(TMP), queue))
    child.start()
    seconds, peak_mb, sizes = queue.get()
    child.join()
    print(f"\nExport of {n_frames} frames (640x360, 5 objects) to YOLO + COCO + CVAT + AVA: "
          f"{seconds:.1f} s ({n_frames / seconds:.0f} frames/s), peak memory of the process {peak_mb:.0f} MB, "
          f"zip sizes MB {sizes}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--export-frames", type=int, default=10_000)
    args = parser.parse_args()
    if not args.skip_export:
        export(args.export_frames)
    if not args.skip_e2e:
        e2e(args.minutes)
    sys.exit(0)
