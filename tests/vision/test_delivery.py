"""One decode for tracking, sampling and export images (src/vision/delivery.py): what the
engine's decoder hands its tap equals what the separate decodes gave, frame for frame."""

import numpy as np
import pytest

from src.vision.delivery import Delivery
from src.vision.formats.build import write_images
from src.vision.frames import FrameStore
from src.vision.formats.model import image_name
from src.vision.propagate import propagate
from src.vision.sampling import sample_frames
from src.vision.video import iter_frames, probe
from tests.vision.conftest import cut_sequence, seeds_at
from tests.vision.test_learned import MODEL_DIR
from tests.vision.test_sampling import cut_video, static_video  # noqa: F401 - fixtures

SAMPLINGS = [{"mode": "all"}, {"mode": "every_n", "every_n": 7}, {"mode": "dedup", "ssim_threshold": 0.95},
             {"mode": "dedup", "ssim_threshold": 0.0}]


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=lambda s: f"{s['mode']}-{s.get('every_n', s.get('ssim_threshold', ''))}")
@pytest.mark.parametrize("video", ["cut_video", "static_video"])
def test_the_tap_samples_as_sample_frames_does(video, sampling, request):
    path = request.getfixturevalue(video)
    delivery = Delivery(sampling, probe(path).width)
    for i, frame in enumerate(iter_frames(path)):
        delivery(i, frame)
    assert delivery.close() == sample_frames(path, **{k: v for k, v in sampling.items()})


def test_frames_must_come_in_order(cut_video):  # noqa: F811
    delivery = Delivery({"mode": "all"}, 320)
    frame = next(iter_frames(cut_video))
    delivery(0, frame)
    with pytest.raises(ValueError, match="in order"):
        delivery(2, frame)


def test_the_images_are_those_the_build_would_decode(cut_video, tmp_path):  # noqa: F811
    delivery = Delivery({"mode": "every_n", "every_n": 7}, probe(cut_video).width, tmp_path / "tap")
    for i, frame in enumerate(iter_frames(cut_video)):
        delivery(i, frame)
    kept = delivery.close()
    write_images(cut_video, kept, tmp_path / "build")
    assert sorted(p.name for p in (tmp_path / "tap").iterdir()) == [image_name(f) for f in kept]
    for f in kept:  # the same pixels through the same encoder: the same bytes
        assert (tmp_path / "tap" / image_name(f)).read_bytes() == (tmp_path / "build" / image_name(f)).read_bytes()


def test_a_grey_store_takes_no_tap(cut_video):  # noqa: F811
    """A grey store reads the decoder's luma plane, not the BGR frames a tap wants (the tracks
    would change with the tap): propagate feeds the tap from a second decode instead."""
    info = probe(cut_video)
    with pytest.raises(ValueError, match="colour store"):
        FrameStore(cut_video, info.frames, info.width, info.height, 0.5, tap=lambda i, frame: None)
    FrameStore(cut_video, info.frames, info.width, info.height, 0.5, colour=True, tap=lambda i, frame: None).close()


def test_nothing_to_see_needs_no_frames():
    assert not Delivery({"mode": "all"}, 320).needs_frames
    assert Delivery({"mode": "every_n", "every_n": 2}, 320).needs_frames


class Recorder:
    def __init__(self):
        self.frames: list[int] = []
        self.sums: list[int] = []

    def __call__(self, i: int, bgr: np.ndarray) -> None:
        self.frames.append(i)
        self.sums.append(int(bgr.sum()))


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
@pytest.mark.parametrize("engine", ["lk-ncc", "nanotrack-v2"])
def test_the_engine_hands_every_frame_to_its_tap(tmp_path, processes, engine):
    """Every frame reaches the tap in order (the keyframe in the middle: backward and forward
    passes), the same pixels as a plain decode, also on a re-propagation of one span."""
    model = MODEL_DIR if engine == "nanotrack-v2" else None
    if model is not None and not model.is_dir():
        pytest.skip("no NanoTrack files")
    path, info, gt, _ = cut_sequence("otb_crossing", 0, 40, tmp_path)
    seeds = {20: seeds_at(gt, 20)}
    plain = [int(f.sum()) for f in iter_frames(path)]
    tap = Recorder()
    first = propagate(path, seeds, budget=0, info=info, processes=processes, workers=2, keep=True, tap=tap,
                      tracker_model=model)
    assert tap.frames == list(range(info.frames)) and tap.sums == plain
    moved = {**seeds, 30: seeds_at(gt, 30)}
    again = Recorder()
    second = propagate(path, moved, budget=0, info=info, processes=processes, workers=2, reuse=first.reusable, tap=again,
                       tracker_model=model)
    assert second.spans is not None and again.frames == list(range(info.frames)) and again.sums == plain


@pytest.mark.parametrize("engine", ["lk-ncc", "nanotrack-v2"])
def test_the_tracks_are_the_same_with_a_tap(tmp_path, engine):
    """What the editor previews (no tap) is what the dataset delivers (a tap). The learned
    tracker's store reads BGR anyway and feeds the tap itself; the built-in tracker's reads the
    decoder's luma plane (another picture: limited range), so a second decode feeds the tap."""
    model = MODEL_DIR if engine == "nanotrack-v2" else None
    if model is not None and not model.is_dir():
        pytest.skip("no NanoTrack files")
    path, info, gt, _ = cut_sequence("otb_crossing", 0, 40, tmp_path)
    seeds = {0: seeds_at(gt, 0)}
    alone = propagate(path, seeds, budget=0, info=info, tracker_model=model, processes=False)
    tap = Recorder()
    tapped = propagate(path, seeds, budget=0, info=info, tracker_model=model, processes=False, tap=tap)
    assert tapped.engine == engine and tap.frames == list(range(info.frames))
    for a, b in zip(alone.tracks, tapped.tracks, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.confidence, b.confidence)
