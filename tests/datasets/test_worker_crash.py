"""A worker that dies mid-job: real `arq` worker processes, a long synthetic video.

SIGKILL (the worker and its pool processes, by pid): the dead run's heartbeat goes stale, the
next worker's `requeue_stale` hands the dataset to a fresh job id and that job makes it.
SIGTERM (a graceful stop): arq puts the cancelled job back and the next worker runs the same
job id again, which still holds the dataset. Either way the dataset ends `ready` with the frames
asked for, one reservation, one release and one charge.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from src.billing.models import LedgerEntry
from src.config import ROOT
from src.datasets.models import Dataset
from tests.datasets.conftest import top_up
from tests.videos.conftest import upload

FRAMES = 2400  # 80 s at 30 fps: propagation takes long enough to be caught mid-way (1500 took 1 s once);
# under SEGMENT_MIN_FRAMES, so in one piece
EVERY_N = 30
STALE_SECONDS = 10  # JOB_STALE_SECONDS of the test's workers after a SIGKILL (300 after a SIGTERM: see below)


def _descendants(pid: int) -> list[int]:
    """The pids of a process's children, grandchildren... (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.append(child)
                    todo.append(child)
    return found


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _autogroup(pid: int) -> str:
    """The nice of a process's autogroup ("/autogroup-12 nice 10" -> "10")."""
    return Path(f"/proc/{pid}/autogroup").read_text().split()[-1]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class WorkerProcess:
    """`python -m arq src.worker.WorkerSettings` against the test's PostgreSQL and Redis."""

    def __init__(self, name: str, log_dir: Path, stale_seconds: int = STALE_SECONDS, env: dict | None = None,
                 command: tuple[str, ...] = ("-m", "arq", "src.worker.WorkerSettings")):
        env = {**os.environ, "JOB_STALE_SECONDS": str(stale_seconds), "WORKER_PROCESSES": "1",
               "PYTHONUNBUFFERED": "1", **(env or {})}  # DATABASE_URL, REDIS_URL, VAR_DIR: set by tests/conftest.py
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, *command], cwd=ROOT,
                                            env=env, stdout=out, stderr=subprocess.STDOUT)
        self.pool: list[int] = []

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and every process under it, by pid."""
        self.pool = _descendants(self.process.pid)
        assert self.pool, "the worker has no pool processes"
        for pid in [self.process.pid, *self.pool]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> None:
        """SIGTERM (what `forge up`, systemd or docker send), then wait for it to end."""
        self.pool = _descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Teardown: whatever is left of this worker, by pid."""
        pids = [] if self.process.poll() is not None else [self.process.pid, *_descendants(self.process.pid)]
        for pid in pids + self.pool:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.process.poll() is None:
            self.process.wait(timeout=10)


async def _long_dataset(app, client, tmp_path: Path, seed: int = 5) -> dict:
    """A dataset of a FRAMES-frame video made from ``seed``: one seed per test, as the same file
    uploaded again is the same stored video, whose decode a worker of this test session may
    have kept (the frame cache), and the job would end before anyone could kill its worker."""
    from src.vision.synthetic import make_video

    path = tmp_path / "long.mp4"
    truth = await asyncio.to_thread(make_video, path, width=320, height=240, n_frames=FRAMES, n_objects=1, seed=seed,
                                    object_size=(40, 70), max_speed=1.5, pan=0.2)
    video = await upload(client, path, "long.mp4")
    assert video.status_code == 201, video.text
    assert video.json()["frame_count"] == FRAMES
    draft = await client.post("/api/v1/datasets", json={"video_id": video.json()["id"], "name": "long", "classes": ["box"]})
    assert draft.status_code == 201, draft.text
    dataset = draft.json()
    box = [round(float(v), 1) for v in truth[1][0]]
    keyframe = {"objects": [{"track_id": 1, "class": "box", "box": box}]}
    assert (await client.put(f"/api/v1/datasets/{dataset['id']}/keyframes/0", json=keyframe)).status_code == 200
    options = {"sampling": {"mode": "every_n", "every_n": EVERY_N}, "split": {"train": 0.8, "valid": 0.2, "test": 0.0},
               "formats": ["yolo"], "review_budget": 0.0}
    assert (await client.put(f"/api/v1/datasets/{dataset['id']}/options", json=options)).status_code == 200
    await top_up(app, "user@example.com", 1_000_000)
    confirm = await client.post(f"/api/v1/datasets/{dataset['id']}/confirm")
    assert confirm.status_code == 202, confirm.text
    return dataset


async def _wait(client, dataset_id: str, until, timeout: float, what: str, workers: list[WorkerProcess]) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = (await client.get(f"/api/v1/datasets/{dataset_id}")).json()
        if until(current):
            return current
        assert current["state"] not in ("failed", "cancelled"), (current["state"], current["error"], current["progress"])
        for worker in workers:
            assert worker.process.poll() is None, f"{worker.log.name} exited:\n{worker.text()[-3000:]}"
        await asyncio.sleep(0.2)
    logs = "\n".join(f"--- {w.log.name}\n{w.text()[-3000:]}" for w in workers)
    raise AssertionError(f"timed out waiting for {what}: {current}\n{logs}")


async def _row(app, dataset_id: str) -> Dataset:
    async with app.state.sessionmaker() as session:
        return await session.get(Dataset, dataset_id)


async def _ledger_kinds(app, dataset_id: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.dataset_id == dataset_id)
                                     .order_by(LedgerEntry.id))
        return [str(getattr(k, "value", k)) for k in rows]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_a_worker_dies_mid_job_and_the_next_one_finishes_it(app, user_client, services, tmp_path, how):
    dataset = await _long_dataset(app, user_client, tmp_path, seed={"SIGKILL": 5, "SIGTERM": 6}[how])
    did = dataset["id"]
    # After a SIGTERM the next worker must take the job over at once, long before the
    # heartbeat could look stale: a stale threshold it cannot reach in this test.
    stale = STALE_SECONDS if how == "SIGKILL" else 300
    first = WorkerProcess("worker-1", tmp_path, stale)
    workers = [first]
    try:
        mid = await _wait(user_client, did, lambda d: d["state"] == "propagating" and d["progress"]["percent"] > 10,
                          120, "the job to pass 10%", workers)
        # the kill lands mid-job: in propagation, or in sampling right after it (a fast host can
        # finish propagating between two progress writes); either way before anything is built
        assert mid["progress"]["stage"] in ("propagating", "sampling"), mid
        held = await _row(app, did)
        assert held.run_job_id == f"dataset:{did}" and held.run_token
        # the processes computing the job yield the CPU to the web server (WORKER_NICE, default 10)
        computing = [p for p in _descendants(first.process.pid) if "resource_tracker" not in _cmdline(p)]
        base = _nice(first.process.pid)
        assert base == _nice(os.getpid())  # the worker's event loop itself keeps its priority
        assert computing and all(_nice(p) == min(19, base + 10) for p in computing), \
            [(p, _nice(p), _cmdline(p)) for p in computing]
        if Path("/proc/self/autogroup").exists():  # Linux shares the CPU between autogroups first
            assert all(_autogroup(p) == "10" for p in computing), [(p, _autogroup(p)) for p in computing]
        if how == "SIGKILL":
            first.kill()
            deadline = time.monotonic() + 10  # SIGKILL lands at the next scheduling of each process
            while any(_alive(pid) for pid in first.pool) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert not any(_alive(pid) for pid in first.pool), "a pool process outlived the kill"
            # A supervisor restarts a dead worker with a backoff; the heartbeat is stale by then.
            await asyncio.sleep(STALE_SECONDS + 1)
        else:
            first.terminate()
        workers.remove(first)
        stopped = (await user_client.get(f"/api/v1/datasets/{did}")).json()
        assert stopped["state"] == "propagating" and stopped["progress"]["stage"] in ("propagating", "sampling"), stopped

        second = WorkerProcess("worker-2", tmp_path, stale)
        workers.append(second)
        done = await _wait(user_client, did, lambda d: d["state"] == "ready", 150, "the dataset to be ready", workers)
    finally:
        for worker in [first, *workers]:
            worker.stop()

    log = second.text()
    assert "skipped" not in log, log
    row = await _row(app, did)
    if how == "SIGKILL":  # handed to a fresh job id by requeue_stale, once
        assert row.attempts == 1 and row.run_job_id == f"dataset:{did}:retry1", (row.attempts, row.run_job_id, log)
    else:  # arq ran the same job again (its second try), which still held the dataset
        assert row.attempts == 0 and row.run_job_id == f"dataset:{did}", (row.attempts, row.run_job_id, log)
        assert "try=2" in log, log
    # the same dataset as an uninterrupted run: every N-th frame, each with its box
    assert done["delivered_frames"] == FRAMES // EVERY_N
    archive = await user_client.get(f"/api/v1/datasets/{did}/download", params={"format": "yolo"})
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        labels = [n for n in z.namelist() if n.endswith(".txt") and f"/{n}".count("/labels/")]
        assert len(labels) == FRAMES // EVERY_N
        assert sum(1 for n in labels if z.read(n).strip()) >= 0.9 * len(labels)
    # one reservation, released once when the one charge was made
    assert await _ledger_kinds(app, did) == ["reservation", "release", "charge"]
    assert 0 < done["charged_cents"] <= done["quoted_cents"]
    balance = (await user_client.get("/api/v1/billing/balance")).json()["balance_cents"]
    assert balance == 1_000_000 - done["charged_cents"]


async def test_a_run_that_lost_the_dataset_writes_nothing(app, user_client, monkeypatch, tmp_path):
    """The ownership rules themselves, without a worker: a live holder makes another job skip;
    once its heartbeat is stale (its arq job still "in progress": a dead or stalled worker) the
    sweep hands the dataset to a new job id, and from then on the old run's writes, charge and
    failure are refused while the new job claims it."""
    from arq.constants import in_progress_key_prefix

    from src.config import get_settings
    from src.datasets import flow, pipeline, runs, service
    from src.datasets.ports import ReviewOutcome
    from tests.datasets.conftest import make_draft

    dataset = await make_draft(user_client)
    await top_up(app, "user@example.com", 100_000)
    assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202
    did = uuid.UUID(dataset["id"])
    ctx = {"redis": app.state.redis, "sessionmaker": app.state.sessionmaker, "job_id": f"dataset:{did}", "job_try": 1}

    claimed = await runs.claim(ctx, did)
    token = claimed.token
    await runs.update(ctx, did, token, progress={"stage": "propagating", "percent": 20})
    assert await runs.claim({**ctx, "job_id": f"dataset:{did}:retry9"}, did) is None  # the holder is alive
    assert await runs.requeue_stale(ctx) == 0  # its heartbeat is fresh

    await app.state.redis.set(in_progress_key_prefix + ctx["job_id"], b"1")  # arq still has it running
    monkeypatch.setattr(get_settings(), "job_stale_seconds", 0)
    assert await runs.requeue_stale(ctx) == 1
    row = await _row(app, str(did))
    assert (row.run_job_id, row.run_token, row.attempts) == (f"dataset:{did}:retry1", None, 1)

    with pytest.raises(runs.Superseded):
        await runs.update(ctx, did, token, progress={"stage": "propagating", "percent": 30})
    with pytest.raises(runs.Superseded):
        old_run = flow.Run(ctx, claimed, service.options_of(claimed.dataset), tmp_path)
        await flow.deliver(old_run, pipeline.Built({}, str(tmp_path / "manifest.json"), 0, 0, {}), {}, ReviewOutcome())
    await runs.fail(ctx, did, token, "the old run's failure")
    row = await _row(app, str(did))
    assert row.state.value == "queued" and row.error is None and row.progress["percent"] == 20
    assert await _ledger_kinds(app, str(did)) == ["reservation"]

    monkeypatch.setattr(get_settings(), "job_stale_seconds", 300)
    again = await runs.claim({**ctx, "job_id": f"dataset:{did}:retry1"}, did)
    assert again is not None and again.token not in (None, token)
    assert await runs.claim(ctx, did) is None  # the old job, run again by arq, finds it taken
    assert await runs.requeue_stale(ctx) == 0


async def test_steps_without_progress_keep_the_heartbeat(app, user_client):
    """A detector over the video or a long upload of the zips reports no progress: the job's
    heartbeat is kept fresh meanwhile, and stops once the run has lost the dataset."""
    from src.datasets import runs
    from tests.datasets.conftest import make_draft

    dataset = await make_draft(user_client)
    await top_up(app, "user@example.com", 100_000)
    assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202
    did = uuid.UUID(dataset["id"])
    ctx = {"redis": app.state.redis, "sessionmaker": app.state.sessionmaker, "job_id": f"dataset:{did}", "job_try": 1}
    token = (await runs.claim(ctx, did)).token
    first = (await _row(app, str(did))).heartbeat_at
    async with runs.heartbeat(ctx, did, token, every_s=0.2):
        await asyncio.sleep(1.0)
        beaten = (await _row(app, str(did))).heartbeat_at
        assert beaten > first
        async with app.state.sessionmaker() as session:  # another run takes the dataset
            row = await session.get(Dataset, did)
            row.run_token = "someone-else"
            await session.commit()
        await asyncio.sleep(1.0)
        assert (await _row(app, str(did))).heartbeat_at - beaten < timedelta(seconds=0.5)
