"""Variable-frame-rate video (phones write it): the frame index is the unit everywhere.

The file is written with PyAV (a test dependency): 90 grey frames, frame i at grey level
20 + 2i with a textured square at x = 40 + i; timestamps alternate between 30 fps and 10 fps
stretches every 10 frames.
"""

from fractions import Fraction

import numpy as np
import pytest

from src.vision.propagate import propagate
from src.vision.types import SeedObject
from src.vision.video import VideoProbeError, iter_frames, probe, read_frame

N = 90


@pytest.fixture(scope="module", params=["mp4", "mkv"])
def vfr_video(tmp_path_factory, request):
    """The VFR file as MP4 (frame count in the container) and as Matroska (none: OpenCV guesses
    it from duration x average fps, so the probe counts the packets' timestamps instead)."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("vfr") / f"vfr.{request.param}"
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.time_base = Fraction(1, 1000)
    stream.options = {"crf": "18", "preset": "veryfast", "g": "15"}
    patch = np.random.default_rng(0).integers(0, 256, (10, 10, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    pts = 0
    for i in range(N):
        img = np.full((240, 320, 3), 20 + 2 * i, np.uint8)
        img[100:140, 40 + i : 80 + i] = patch  # a textured square moving 1 px per frame
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        pts += 33 if (i // 10) % 2 == 0 else 100
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def _level(frame: np.ndarray) -> int:
    return int(round(float(np.median(frame[:60]))))  # the grey above the square


def test_probe_counts_every_frame(vfr_video):
    info = probe(vfr_video)
    assert info.frames == N
    levels = [_level(f) for f in iter_frames(vfr_video)]
    assert len(levels) == N
    assert all(b > a for a, b in zip(levels, levels[1:])), levels  # every frame, in order


def test_propagation_indexes_frames_in_decode_order(vfr_video):
    seeds = {0: [SeedObject(1, "square", np.array([40, 100, 80, 140], np.float32))]}
    result = propagate(vfr_video, seeds, budget=0)
    boxes = result.tracks[0].boxes
    assert len(boxes) == N
    # the square moves 1 px per frame whatever the time between frames
    np.testing.assert_allclose(boxes[:, 0], 40 + np.arange(N), atol=2)


def test_read_frame_is_the_decoded_frame(vfr_video):
    """OpenCV's CAP_PROP_POS_FRAMES seek lands 2-6 frames off here; read_frame seeks by timestamp."""
    levels = [_level(f) for f in iter_frames(vfr_video)]
    for n in [*range(0, N, 7), N - 1]:
        assert abs(_level(read_frame(vfr_video, n)) - levels[n]) <= 1, n
    with pytest.raises(IndexError):
        read_frame(vfr_video, N)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_phone_video_is_upright_everywhere(tmp_path, degrees):
    """A display-matrix rotation (phones filming upright): probe, sequential decode and
    read_frame all give the same upright picture."""
    av = pytest.importorskip("av")
    path = tmp_path / f"rot{degrees}.mp4"
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.set_display_rotation(degrees)
    for i in range(20):
        img = np.zeros((240, 320, 3), np.uint8)
        img[:40, :80] = 250  # a bright block in the stored picture's top-left corner
        img[100:140, 100 + 2 * i : 140 + 2 * i] = 120
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()

    info = probe(path)
    upright = (320, 240) if degrees == 180 else (240, 320)  # (width, height)
    assert (info.width, info.height) == upright
    frames = list(iter_frames(path))
    assert len(frames) == 20 and frames[0].shape[:2] == (upright[1], upright[0])
    # the stored top-left block, turned counter-clockwise by `degrees`
    corner = {90: np.s_[-30:, :30], 180: np.s_[-30:, -30:], 270: np.s_[:30, -30:]}[degrees]
    assert frames[0][corner].mean() > 200 and frames[0][:30, :30].mean() < 50
    for n in (0, 7, 19):
        np.testing.assert_allclose(read_frame(path, n).astype(int), frames[n].astype(int), atol=2)


def test_a_truncated_file_without_a_frame_count_is_refused(vfr_video, tmp_path):
    """Half a file: refused as truncated, whether the container declares a frame count (MP4)
    or only a duration (Matroska)."""
    data = vfr_video.read_bytes()
    cut = tmp_path / f"cut{vfr_video.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoProbeError) as err:
        probe(cut)
    assert "truncated" in str(err.value) or "no decodable" in str(err.value), str(err.value)
