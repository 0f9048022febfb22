import cv2
import numpy as np
import pytest

from src.vision.video import VideoProbeError, iter_frames, probe, read_frame


def test_probe_real(synthetic_video):
    path, gt = synthetic_video
    info = probe(path)
    assert (info.frames, info.width, info.height) == (90, 640, 360)
    assert info.fps == pytest.approx(30.0) and info.container == "mp4"
    assert info.duration_s == pytest.approx(3.0)


@pytest.mark.parametrize("kind", ["empty", "text", "jpeg", "truncated", "missing"])
def test_probe_errors(tmp_path, synthetic_video, kind):
    p = tmp_path / "bad.mp4"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not a video\n" * 50)
    elif kind == "jpeg":
        ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
        p.write_bytes(buf.tobytes())
    elif kind == "truncated":
        data = synthetic_video[0].read_bytes()
        p.write_bytes(data[: len(data) // 2])
    else:
        p = tmp_path / "nope.mp4"
    with pytest.raises(VideoProbeError) as err:
        probe(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_read_frame_matches_sequential(synthetic_video):
    path, _ = synthetic_video
    frames = list(iter_frames(path))
    assert len(frames) == 90
    for n in [0, 1, 13, 44, 45, 89]:
        assert np.array_equal(read_frame(path, n), frames[n]), n
    assert read_frame(path, 44, width=320).shape == (180, 320, 3)
    with pytest.raises(IndexError):
        read_frame(path, 90)


def test_read_frame_real_h264(sequences_dir):
    path = sequences_dir / "otb_crossing" / "video.mp4"
    frames = list(iter_frames(path))
    for n in [0, 57, 119]:
        assert np.array_equal(read_frame(path, n), frames[n])


def test_iter_frames_grey_scaled(synthetic_video):
    g = next(iter_frames(synthetic_video[0], scale=0.5, grey=True))
    assert g.shape == (180, 320) and g.dtype == np.uint8
