"""Shared fixtures of the vision tests: the real sequences, synthetic videos, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from src.vision.frames import FrameReader, FrameStore
from src.vision.metrics import load_ground_truth
from src.vision.synthetic import make_video
from src.vision.types import SeedObject, VideoInfo
from src.vision.video import probe

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("FORGE_SHARED_DATA", REPO.parent / "shared" / "data"))
SEQUENCES = SHARED_DATA / "sequences"
SEQUENCE_NAMES = ["otb_crossing", "otb_faceocc1", "uav123_wakeboard7", "mot17_04_mini"]


def _need_data() -> None:
    if not SEQUENCES.is_dir():
        pytest.skip(f"shared test data not found at {SEQUENCES} (set FORGE_SHARED_DATA)")


@pytest.fixture(scope="session")
def sequences_dir() -> Path:
    _need_data()
    return SEQUENCES


def sequence(name: str):
    """(video path, VideoInfo, ground truth {track_id: (n, 4) xyxy clipped to the frame})."""
    _need_data()
    d = SEQUENCES / name
    if not d.is_dir():
        pytest.skip(f"sequence {name} missing from {SEQUENCES}")
    info = probe(d / "video.mp4")
    lim = np.array([info.width, info.height, info.width, info.height], np.float32)
    gt = {t: np.clip(g, 0, lim) for t, g in load_ground_truth(d).items()}
    return d / "video.mp4", info, gt


def seeds_at(gt: dict[int, np.ndarray], frame: int, class_name: str = "object") -> list[SeedObject]:
    """Ground-truth boxes on ``frame`` as seeds (objects absent there are skipped)."""
    out = []
    for t, g in gt.items():
        b = g[frame]
        if np.isfinite(b).all() and b[2] - b[0] >= 2 and b[3] - b[1] >= 2:
            out.append(SeedObject(t, class_name, b.copy()))
    return out


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory):
    """A 640x360, 90-frame mp4v video with 3 textured objects and its ground truth."""
    path = tmp_path_factory.mktemp("synthetic") / "objects.mp4"
    gt = make_video(path, width=640, height=360, n_frames=90, n_objects=3, seed=1, object_size=(50, 90))
    return path, gt


@pytest.fixture(scope="session")
def exit_video(tmp_path_factory):
    """A textured patch that moves out of the frame on the right."""
    path = tmp_path_factory.mktemp("exit") / "exit.mp4"
    gt = make_video(path, width=480, height=270, n_frames=90, n_objects=1, seed=2, object_size=(50, 70), exit_object=True)
    return path, gt


def _cli_prefix() -> list[str]:
    """How to run `forge propagate` with this interpreter: `python -m src.cli propagate` when
    the platform's dependencies are importable here, else the vision entry point directly."""
    ok = subprocess.run([sys.executable, "-c", "import src.cli"], cwd=REPO, capture_output=True).returncode == 0
    if ok:
        return [sys.executable, "-m", "src.cli", "propagate"]
    return [sys.executable, "-c", "import sys; from src.vision.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture(scope="session")
def run_cli():
    prefix = _cli_prefix()

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout)

    return run


@contextmanager
def decoded_store(path: Path, scale: float) -> Iterator[tuple[FrameReader, VideoInfo]]:
    """The whole video decoded into a FrameStore at ``scale``: (its reader, the probe)."""
    info = probe(path)
    store = FrameStore(path, info.frames, info.width, info.height, scale)
    store.start()
    try:
        store.join()
        yield store.reader(), info
    finally:
        store.close()


def cut_sequence(name: str, start: int, stop: int, out_dir: Path):
    """Frames ``start .. stop - 1`` of a shared sequence as an H.264 file (cached in
    ``out_dir``): (path, VideoInfo, ground truth {track_id: (stop - start, 4) xyxy clipped to
    the frame}, raw ground truth unclipped: MOT boxes may stick out of the frame)."""
    from src.vision.synthetic import _H264Writer
    from src.vision.video import iter_frames

    src, info, _ = sequence(name)
    path = Path(out_dir) / f"{name}_{start}_{stop}.mp4"
    if not path.exists():
        writer = _H264Writer(path, info.fps, info.width, info.height)
        for i, frame in enumerate(iter_frames(src)):
            if i >= stop:
                break
            if i >= start:
                writer.write(frame)
        writer.release()
    raw = {t: g[start:stop] for t, g in load_ground_truth(SEQUENCES / name).items()}
    lim = np.array([info.width, info.height, info.width, info.height], np.float32)
    return path, probe(path), {t: np.clip(g, 0, lim) for t, g in raw.items()}, raw
