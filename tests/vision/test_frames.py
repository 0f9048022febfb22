"""The frame store: pyramid geometry, crops from it, decode into it (luma, BGR and colour paths)."""

import time

import cv2
import numpy as np
import pytest

from src.vision.frames import FrameStore, pyramid, shrink
from src.vision.tracker import sample
from src.vision.video import iter_frames, probe

from .conftest import decoded_store


def _ramp(h=240, w=128):
    """Pixel (y, x) = 2x: a crop's value at each output pixel is twice the x it was taken
    from (2x, not x, so that every pyramid level's averages are whole numbers)."""
    return np.tile(np.arange(0, 2 * w, 2, dtype=np.uint8), (h, 1))


@pytest.mark.parametrize("factor", [0.7, 1.0, 1.6, 3.0, 5.5])  # levels 0, 0, 0, 1, 2
def test_crop_takes_the_asked_region_from_any_level(factor):
    pyr = pyramid(_ramp())
    out_w, out_h = 16, 16
    x1, y1 = 10.3, 30.0
    crop = sample(pyr, x1, y1, x1 + out_w * factor, y1 + out_h * factor, out_w, out_h)
    assert crop.shape == (out_h, out_w) and crop.dtype == np.uint8
    # output pixel u covers [x1 + u * factor, x1 + (u + 1) * factor): its centre, in the
    # pixel-centre coordinates the ramp's values are
    expected = 2 * (x1 + (np.arange(out_w) + 0.5) * factor - 0.5)
    np.testing.assert_allclose(crop[out_h // 2].astype(float), expected, atol=0.6)


def test_crop_outside_the_frame_repeats_the_border():
    crop = sample(pyramid(_ramp()), -20.0, 0.0, 4.0, 10.0, 24, 10)
    assert (crop[:, :18] == 0).all() and crop[0, -1] > 0


def test_pyramid_levels_are_box_averages():
    img = np.random.default_rng(0).integers(0, 256, (101, 203), dtype=np.uint8)
    lv0, lv1, lv2 = pyramid(img)
    assert lv1.shape == (50, 101) and lv2.shape == (25, 50)
    assert abs(int(lv1[3, 7]) - img[6:8, 14:16].mean()) <= 1
    assert abs(int(lv2[3, 7]) - img[12:16, 28:32].mean()) <= 1


@pytest.mark.parametrize("size", [(640, 360), (427, 240), (200, 112)])
def test_shrink_matches_area_resize(size):
    img = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (720, 1280), dtype=np.uint8), (0, 0), 8)
    fast = shrink(img, *size)
    ref = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    assert fast.shape == ref.shape
    assert np.abs(fast.astype(int) - ref.astype(int)).mean() < 1.0


def test_store_holds_the_grey_video(synthetic_video):
    path, _ = synthetic_video
    with decoded_store(path, 0.5) as (reader, _):
        for i, bgr in enumerate(iter_frames(path)):
            if i % 30:
                continue
            want = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (320, 180), interpolation=cv2.INTER_AREA)
            got = reader.get(i)[0]
            # luma straight from the decoder is limited-range (16-235): compare by correlation
            assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


def test_store_reports_a_video_shorter_than_promised(synthetic_video):
    path, _ = synthetic_video
    info = probe(path)
    store = FrameStore(path, info.frames + 5, info.width, info.height, 0.5)
    store.start()
    try:
        with pytest.raises(RuntimeError, match="decoding stopped at frame 90"):
            store.reader().get(info.frames + 2)
        with pytest.raises(RuntimeError):
            store.join()
    finally:
        store.close()


def test_closing_the_store_wakes_a_waiting_reader(synthetic_video):
    """A pass still waiting for a frame when propagation gives up must fail, not hang."""
    import threading

    path, _ = synthetic_video
    info = probe(path)
    store = FrameStore(path, info.frames, info.width, info.height, 0.5)
    reader = store.reader()
    gate = threading.Event()  # holds the decoder after frame 5
    store.start(lambda done: gate.wait() if done == 5 else None)
    outcome = []

    def wait_for_the_last_frame():
        try:
            reader.get(info.frames - 1)
            outcome.append("got it")
        except RuntimeError as exc:
            outcome.append(str(exc))

    waiter = threading.Thread(target=wait_for_the_last_frame, daemon=True)
    waiter.start()
    closer = threading.Thread(target=store.close, daemon=True)
    closer.start()
    assert store._stop.wait(5)  # close() has asked the decoder to stop ...
    gate.set()  # ... before the decoder may go on
    closer.join(timeout=10)
    waiter.join(timeout=10)
    assert not waiter.is_alive(), "the reader still waits"
    assert outcome and outcome[0] != "got it", outcome  # stopped or closed, never a hang


def test_a_ring_smaller_than_the_video_waits_for_its_reader(synthetic_video):
    """A 10-frame ring: the decoder reuses slots only behind the reader's mark, and every
    frame the reader gets is the same as in a store that holds the whole video."""
    import os

    path, _ = synthetic_video
    info = probe(path)
    with decoded_store(path, 0.5) as (whole, _):
        store = FrameStore(path, info.frames, info.width, info.height, 0.5, slots=10, marks=[0])
        store.start()
        try:
            reader = store.reader()
            for i in range(info.frames):
                frame = reader.get(i)
                for got, want in zip(frame, whole.get(i)):
                    np.testing.assert_array_equal(got, want)
                if i < 20:
                    time.sleep(0.01)  # a slow reader: the decoder must wait, not overwrite
                reader.hold(0, i)
            store.join()
            assert store.waited_seconds > 0
            w, h = 320, 180
            assert os.path.getsize(os.path.join(store.spec.dir, "grey0.u8")) == 10 * w * h
        finally:
            store.close()


def test_a_frame_read_after_its_slot_was_reused_is_refused(synthetic_video):
    path, _ = synthetic_video
    info = probe(path)
    store = FrameStore(path, info.frames, info.width, info.height, 0.5, slots=10, marks=[0])
    store.start()
    try:
        reader = store.reader()
        reader.hold(0, 50)
        reader.get(55)
        with pytest.raises(RuntimeError, match="slot was reused"):
            reader.get(5)
        with pytest.raises(ValueError, match="marks"):
            FrameStore(path, info.frames, info.width, info.height, 0.5, slots=10)
    finally:
        store.close()


def test_colour_store_carries_the_chroma_the_learned_tracker_crops_in(synthetic_video):
    """A colour store keeps Cr, Cb beside the grey pyramid at half its resolution; a crop for
    the learned tracker from it is the video's colours, from a grey store equal channels."""
    from src.vision.nanotrack import crop

    path, _ = synthetic_video
    info = probe(path)
    bgr = next(iter_frames(path))
    for colour in (True, False):
        store = FrameStore(path, info.frames, info.width, info.height, 0.5, colour=colour)
        store.start()
        try:
            store.join()
            frame = store.reader().get(0)
            got = crop(frame, 160.0, 90.0, 320.0, 160)  # the whole frame, 2x down
        finally:
            store.close()
        assert len(frame) == 3 and frame[0].shape == (180, 320)
        want = cv2.resize(bgr, (160, 90), interpolation=cv2.INTER_AREA)
        rows = slice(35, 125)  # the square crop is 160 px tall; the frame fills its middle 90 rows
        if colour:
            assert [c.shape for c in frame.chroma] == [(90, 160, 2), (45, 80, 2)]
            assert np.abs(got[rows].astype(int) - want.astype(int)).mean() < 4  # grey crops: 40
        else:
            assert frame.chroma is None
            assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
