"""Decoded videos kept between propagations (src.vision.frame_cache): a preview's fix in place
reads the frames a whole run kept instead of decoding, and gets exactly what decoding gives."""

from __future__ import annotations

import os

import numpy as np
import pytest

from src.vision.frame_cache import FrameCache
from src.vision.propagate import propagate
from src.vision.segments import Reusable, Span
from src.vision.video import probe
from tests.vision.test_learned import model_dir  # noqa: F401 (fixture)
from tests.vision.test_segments import _assert_same, _keyframes, _seed, h264_objects  # noqa: F401 (fixture)


class Progress:
    """What propagate reports as frames arrive: many calls while decoding, one when none is needed."""

    def __init__(self):
        self.calls = []

    def __call__(self, done, total):
        self.calls.append((done, total))


@pytest.mark.parametrize("processes", [False, True])
def test_a_fix_in_place_reads_the_kept_frames_and_tracks_as_decoding_does(h264_objects, tmp_path, processes):
    path, gt = h264_objects
    info = probe(path)
    cache = FrameCache(tmp_path / "cache")
    first = propagate(path, _keyframes(gt, [0, 120]), info=info, keep=True, processes=processes, workers=2,
                      frame_cache=cache)
    entries = [d for d in (tmp_path / "cache").iterdir() if not d.name.startswith(".")]
    assert len(entries) == 1 and cache.lookup(entries[0]) == info.frames

    fixed = _keyframes(gt, [0, 120])
    fixed[60] = [_seed(2, gt[2][60] + np.array([3, 0, 3, 0], np.float32))]
    reuse = Reusable.from_bytes(first.reusable.to_bytes())
    progress = Progress()
    cached = propagate(path, fixed, info=info, reuse=reuse, processes=processes, workers=2, frame_cache=cache,
                       progress=progress)
    assert cached.spans == [Span(2, 0, 120)]
    assert progress.calls == [(121, 121)]  # nothing decoded: all there at once
    decoding = Progress()
    _assert_same(cached, propagate(path, fixed, info=info, reuse=reuse, processes=processes, workers=2,
                                   progress=decoding))
    assert len(decoding.calls) > 100
    # a whole run from the kept frames gives what a whole run decoding gives
    _assert_same(propagate(path, fixed, info=info, processes=processes, workers=2, frame_cache=cache),
                 propagate(path, fixed, info=info, processes=processes, workers=2))


def test_a_changed_file_is_not_read_from_the_cache_and_old_entries_go(h264_objects, tmp_path):
    path, gt = h264_objects
    info = probe(path)
    kf = _keyframes(gt, [0])
    cache = FrameCache(tmp_path / "cache")
    propagate(path, kf, info=info, processes=False, frame_cache=cache)
    entry = cache.entry(path, info.frames, info.width, info.height, 1.0, False)
    assert cache.lookup(entry) == info.frames
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(path.read_bytes())
    assert cache.entry(copy, info.frames, info.width, info.height, 1.0, False) != entry
    os.utime(copy, ns=(1, 1))
    changed = cache.entry(copy, info.frames, info.width, info.height, 1.0, False)
    os.utime(copy, ns=(2, 2))
    assert cache.entry(copy, info.frames, info.width, info.height, 1.0, False) != changed  # a rewritten file is another

    size = sum(f.stat().st_size for f in entry.iterdir())
    small = FrameCache(tmp_path / "cache", max_bytes=int(size * 1.5))  # room for one
    propagate(copy, kf, info=info, processes=False, frame_cache=small)
    kept = [d for d in (tmp_path / "cache").iterdir() if not d.name.startswith(".")]
    assert len(kept) == 2  # the older one was looked up a moment ago: it may be in use
    os.utime(entry / "meta.json", (1, 1))  # last used long ago
    os.utime(copy, ns=(3, 3))
    propagate(copy, kf, info=info, processes=False, frame_cache=small)
    kept = [d for d in (tmp_path / "cache").iterdir() if not d.name.startswith(".")]
    assert entry not in kept and len(kept) == 2  # the old one went; the two recent ones stay


def test_a_run_that_does_not_decode_the_whole_video_keeps_nothing(h264_objects, tmp_path):
    path, gt = h264_objects
    info = probe(path)
    first = propagate(path, _keyframes(gt, [0, 120]), info=info, keep=True, processes=False)
    fixed = {**_keyframes(gt, [0, 120]), 60: [_seed(2, gt[2][60])]}
    cache = FrameCache(tmp_path / "cache")
    propagate(path, fixed, info=info, reuse=first.reusable, processes=False, frame_cache=cache)  # frames 0-120 only
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_the_learned_tracker_reads_its_colour_from_the_kept_frames(h264_objects, tmp_path, model_dir):
    """The learned engine's store holds chroma too: kept and read back, its tracks are those of
    a decoding run."""
    path, gt = h264_objects
    info = probe(path)
    cache = FrameCache(tmp_path / "cache")
    first = propagate(path, _keyframes(gt, [0, 120]), info=info, keep=True, processes=False, tracker_model=model_dir,
                      frame_cache=cache)
    entry = cache.entry(path, info.frames, info.width, info.height, 1.0, True)
    assert sorted(f.name for f in entry.iterdir()) == [
        "chroma1.u8", "chroma2.u8", "grey0.u8", "grey1.u8", "grey2.u8", "meta.json", "motion.f64"]
    fixed = {**_keyframes(gt, [0, 120]), 60: [_seed(2, gt[2][60] + np.array([3, 0, 3, 0], np.float32))]}
    progress = Progress()
    cached = propagate(path, fixed, info=info, reuse=first.reusable, processes=False, tracker_model=model_dir,
                       frame_cache=cache, progress=progress)
    assert cached.engine == "nanotrack-v2" and progress.calls == [(121, 121)]
    _assert_same(cached, propagate(path, fixed, info=info, reuse=first.reusable, processes=False, tracker_model=model_dir))
