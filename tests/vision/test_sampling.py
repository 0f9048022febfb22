import cv2
import numpy as np
import pytest

from src.vision.sampling import detect_scene_cuts, sample_frames, ssim


def _write(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()
    return path


def _scene(seed, n, shift=3):
    rng = np.random.default_rng(seed)
    tex = cv2.resize(rng.integers(0, 256, (40, 80, 3), dtype=np.uint8), (640 + shift * n, 180), interpolation=cv2.INTER_CUBIC)
    tex = (tex.astype(np.float32) * (0.5 + seed * 0.4)).clip(0, 255).astype(np.uint8)
    return [tex[:, i * shift : i * shift + 320].copy() for i in range(n)]


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    """30 frames of a panning scene, then a hard cut to another scene for 30 frames."""
    return _write(tmp_path_factory.mktemp("cut") / "cut.mp4", _scene(0, 30) + _scene(1, 30))


@pytest.fixture(scope="module")
def static_video(tmp_path_factory):
    """20 moving frames, 40 identical frames, 20 moving frames."""
    moving = _scene(0, 40, shift=6)
    frames = moving[:20] + [moving[20]] * 40 + moving[20:40]
    return _write(tmp_path_factory.mktemp("static") / "static.mp4", frames)


def test_ssim():
    a = np.random.default_rng(0).integers(0, 256, (60, 80), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 255 - a) < 0.2


def test_scene_cut_found(cut_video):
    assert detect_scene_cuts(cut_video) == [30]


def test_every_n_restarts_at_cut(cut_video):
    assert sample_frames(cut_video, mode="every_n", every_n=7) == [0, 7, 14, 21, 28, 30, 37, 44, 51, 58]
    assert sample_frames(cut_video, mode="all") == list(range(60))


def test_dedup_drops_static_stretch(static_video):
    kept = sample_frames(static_video, mode="dedup", ssim_threshold=0.95)
    static = [f for f in kept if 21 <= f < 60]
    assert static == [], kept
    assert sum(1 for f in kept if f < 20) >= 5
    assert len(kept) < 60
    assert sample_frames(static_video, mode="dedup", ssim_threshold=0.0) == [0]
