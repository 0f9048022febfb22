"""Re-propagating only the spans a keyframe change touches (src.vision.segments) gives what a
full propagation of the new keyframes gives; a store that starts mid-video holds the same
frames as one that decodes from the start; a cancelled propagation stops promptly."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from src.vision.frames import FrameStore
from src.vision.propagate import (
    Checkpoint,
    PropagationCancelled,
    assemble,
    plan_propagation,
    propagate,
    spans_to_rerun,
    track_passes,
)
from src.vision.segments import Reusable, Span, changed_spans, pack_passes, split_passes, unpack_passes
from src.vision.synthetic import make_video
from src.vision.types import SeedObject
from src.vision.video import probe
from tests.vision.conftest import decoded_store, seeds_at, sequence


def _seed(tid: int, box, cls: str = "object") -> SeedObject:
    return SeedObject(tid, cls, np.asarray(box, np.float32))


def test_changed_spans_run_from_the_unchanged_keyframe_before_to_the_one_after():
    before = {0: [_seed(1, [0, 0, 10, 10]), _seed(2, [50, 50, 60, 60])], 100: [_seed(1, [5, 5, 15, 15])],
              200: [_seed(1, [9, 9, 19, 19])]}
    moved = {**before, 100: [_seed(1, [6, 5, 16, 15])]}
    assert changed_spans(before, moved, 300) == {1: Span(1, 0, 200)}
    added = {**before, 150: [_seed(1, [7, 7, 17, 17])]}
    assert changed_spans(before, added, 300) == {1: Span(1, 100, 200)}
    after_last = {**before, 250: [SeedObject(1, "object", None, gone=True)]}
    assert changed_spans(before, after_last, 300) == {1: Span(1, 200, 299)}
    removed = {f: objs for f, objs in before.items() if f != 200}
    assert changed_spans(before, removed, 300) == {1: Span(1, 100, 299)}
    new_track = {**before, 0: [*before[0], _seed(3, [80, 80, 90, 90])]}
    assert changed_spans(before, new_track, 300) == {3: Span(3, 0, 299)}
    relabelled = {f: [SeedObject(o.track_id, "car", o.box) for o in objs] for f, objs in before.items()}
    assert changed_spans(before, relabelled, 300) == {}  # a class does not move a box


@pytest.fixture(scope="module")
def h264_objects(tmp_path_factory):
    """A 640x360 H.264 video of 160 frames, 3 objects, with its ground truth."""
    path = tmp_path_factory.mktemp("segments") / "objects.mp4"
    gt = make_video(path, width=640, height=360, n_frames=160, n_objects=3, seed=4, object_size=(50, 90), codec="h264")
    return path, gt


def _keyframes(gt, frames) -> dict[int, list[SeedObject]]:
    return {f: [_seed(t, g[f]) for t, g in gt.items()] for f in frames}


def _assert_same(got, want):
    assert [t.track_id for t in got.tracks] == [t.track_id for t in want.tracks]
    for a, b in zip(got.tracks, want.tracks):
        np.testing.assert_array_equal(a.source, b.source, err_msg=f"track {a.track_id}")
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3, err_msg=f"track {a.track_id}")
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
        np.testing.assert_array_equal(a.lost, b.lost)
        np.testing.assert_array_equal(a.left, b.left)
        assert a.class_name == b.class_name
    assert got.hard_frames == want.hard_frames


@pytest.mark.parametrize("processes", [False, True])
def test_a_fix_in_place_re_propagates_its_segments_to_what_a_full_run_gives(h264_objects, processes):
    path, gt = h264_objects
    info = probe(path)
    first = propagate(path, _keyframes(gt, [0, 120]), info=info, keep=True, processes=processes, workers=2)
    assert first.spans is None and first.reusable is not None
    # track 2 gets a keyframe at frame 60, 3 px off the truth, as a person would drag it
    fixed = _keyframes(gt, [0, 120])
    fixed[60] = [_seed(2, gt[2][60] + np.array([3, 0, 3, 0], np.float32))]
    reuse = Reusable.from_bytes(first.reusable.to_bytes())  # as the preview stores it
    started = time.perf_counter()
    spliced = propagate(path, fixed, info=info, reuse=reuse, keep=True, processes=processes, workers=2)
    seconds = time.perf_counter() - started
    assert spliced.spans == [Span(2, 0, 120)]
    assert spans_to_rerun(fixed, info, reuse) == {2: Span(2, 0, 120)}  # known before it runs
    full = propagate(path, fixed, info=info, processes=processes, workers=2)
    _assert_same(spliced, full)
    assert not np.array_equal(np.nan_to_num(spliced.tracks[1].boxes), np.nan_to_num(first.tracks[1].boxes))
    print(f"spliced re-propagation of 121 frames: {seconds:.2f} s")

    # then a later move of that keyframe: only 0..120 of track 2 again; a class change: nothing
    moved = {**fixed, 60: [_seed(2, gt[2][60], "car")], 0: [_seed(t, gt[t][0], "car" if t == 2 else "object") for t in gt],
             120: [_seed(t, gt[t][120], "car" if t == 2 else "object") for t in gt]}
    again = propagate(path, moved, info=info, reuse=spliced.reusable, processes=processes, workers=2)
    assert again.spans == [Span(2, 0, 120)]
    _assert_same(again, propagate(path, moved, info=info, processes=processes, workers=2))
    relabelled = {f: [SeedObject(o.track_id, "truck", o.box) for o in objs] for f, objs in fixed.items()}
    same = propagate(path, relabelled, info=info, reuse=spliced.reusable)
    assert same.spans == [] and {t.class_name for t in same.tracks} == {"truck"}


def test_a_segment_after_the_last_keyframe_runs_to_the_end(h264_objects):
    path, gt = h264_objects
    info = probe(path)
    first = propagate(path, _keyframes(gt, [0]), info=info, keep=True, processes=False)
    fixed = {**_keyframes(gt, [0]), 90: [_seed(1, gt[1][90])]}
    spliced = propagate(path, fixed, info=info, reuse=first.reusable, processes=False)
    assert spliced.spans == [Span(1, 0, info.frames - 1)]
    _assert_same(spliced, propagate(path, fixed, info=info, processes=False))
    later = {**fixed, 130: [SeedObject(1, "object", None, gone=True)]}
    redo = propagate(path, later, info=info, reuse=propagate(path, fixed, info=info, keep=True, processes=False).reusable,
                     processes=False)
    assert redo.spans == [Span(1, 90, info.frames - 1)]
    _assert_same(redo, propagate(path, later, info=info, processes=False))
    assert not redo.tracks[0].present[131:].any()


@pytest.mark.parametrize("name", ["otb_crossing", "uav123_car14"])
def test_a_store_starting_mid_video_holds_the_frames_of_a_full_decode(name):
    path, info, _ = sequence(name)
    first = info.frames // 2 + 7
    with decoded_store(path, 0.5) as (whole, _):
        store = FrameStore(path, info.frames, info.width, info.height, 0.5, first=first)
        store.start()
        try:
            store.join()
            reader = store.reader()
            for i in (first, first + 1, first + 30, info.frames - 1):
                for got, want in zip(reader.get(i), whole.get(i)):
                    np.testing.assert_array_equal(got, want, err_msg=f"frame {i}")
            np.testing.assert_allclose(reader.camera(first, info.frames - 1), whole.camera(first, info.frames - 1))
            with pytest.raises(RuntimeError, match="outside this store"):
                reader.get(first - 1)
        finally:
            store.close()


@pytest.mark.parametrize("processes", [False, True])
def test_a_cancelled_propagation_stops_promptly(h264_objects, processes):
    path, gt = h264_objects
    info = probe(path)
    asked = threading.Event()
    started = time.perf_counter()

    def cancelled() -> bool:
        asked.set()
        return time.perf_counter() - started > 0.05

    with pytest.raises(PropagationCancelled):
        propagate(path, _keyframes(gt, [0]), info=info, processes=processes, workers=2, cancelled=cancelled)
    seconds = time.perf_counter() - started
    assert asked.is_set()
    full = time.perf_counter()
    propagate(path, _keyframes(gt, [0]), info=info, processes=processes, workers=2)
    full = time.perf_counter() - full
    assert seconds < full, (seconds, full)


from tests.vision.test_learned import model_dir  # noqa: E402,F401 - the NanoTrack files, as a fixture here
from tests.vision.test_vfr import vfr_video  # noqa: E402,F401 - the variable-frame-rate file, as a fixture here


def test_a_store_starting_mid_video_lands_on_its_frame_on_variable_frame_rate_video(vfr_video):
    """OpenCV's frame seek goes through the average fps and lands frames off on such video:
    the store decodes forward to its first frame instead."""
    info = probe(vfr_video)
    with decoded_store(vfr_video, 1.0) as (whole, _):
        store = FrameStore(vfr_video, info.frames, info.width, info.height, 1.0, first=47)
        store.start()
        try:
            store.join()
            reader = store.reader()
            for i in (47, 48, 60, info.frames - 1):
                np.testing.assert_array_equal(reader.get(i)[0], whole.get(i)[0], err_msg=f"frame {i}")
        finally:
            store.close()


# --- segment jobs: groups of whole passes ---------------------------------------------------

def _job(start: int, stop: int) -> tuple:
    return (start, np.zeros(4, np.float32), stop, 1 if stop >= start else -1, False)


def test_split_passes_cuts_only_between_stretches_that_share_no_frame():
    # track 1: keyframes 0, 100, 200; track 2: 0 and 200 (its passes cross 100)
    jobs = [_job(0, 99), _job(100, 199), _job(100, 1), _job(200, 101), _job(200, 299),
            _job(0, 199), _job(200, 1), _job(200, 299)]
    parts = split_passes(jobs, target_work=150)
    assert sorted(i for p in parts for i in p.passes) == list(range(len(jobs)))  # every pass, once
    stretch = {0, 1, 2, 3, 5, 6}  # crossing keyframe 100: one stretch, split by passes only
    for p in parts:
        inside = set(p.passes)
        assert inside <= stretch or not inside & stretch
        lo = min(min(jobs[i][0], jobs[i][2]) for i in p.passes)
        hi = max(max(jobs[i][0], jobs[i][2]) for i in p.passes)
        assert (p.first, p.last) == (lo, hi)
    assert len(parts) >= 3  # work 99+99+99+99+99+199+199+99 over a target of 150
    # small neighbours are merged up to the target
    merged = split_passes([_job(0, 49), _job(50, 99), _job(100, 149)], target_work=200)
    assert len(merged) == 1 and merged[0].passes == (0, 1, 2)
    assert split_passes([], 100) == []
    # the empty backward passes from keyframe 0 go with the next stretch, not alone
    first = split_passes([_job(0, 0), _job(0, 0), _job(0, 99), _job(0, 99)], target_work=50)
    assert all(p.work > 0 for p in first) and sorted(i for p in first for i in p.passes) == [0, 1, 2, 3]


def test_segments_run_apart_give_the_tracks_of_one_piece(h264_objects, tmp_path):
    """Each segment decodes only its own frames (a store from its first frame), as a job on
    another machine would; assembled, the tracks are those of one propagate call."""
    path, gt = h264_objects
    keyframes = _keyframes(gt, [0, 60, 120])
    keyframes[90] = [_seed(2, gt[2][90])]  # a keyframe of one track only: its neighbours' passes cross it
    want = propagate(path, keyframes, budget=0, workers=2, processes=False)
    plan = plan_propagation(path, keyframes)
    parts = split_passes(plan.jobs, target_work=120)
    assert len(parts) >= 4 and any(p.first > 0 for p in parts)
    passes = {}
    for p in reversed(parts):  # any order
        jobs = [plan.jobs[i] for i in p.passes]
        results = unpack_passes(pack_passes(track_passes(path, plan.info, jobs, plan.scale, None, first=p.first,
                                                         last=p.last, workers=1)))
        passes |= {plan.keys[i]: r for i, r in zip(p.passes, results)}
    got = assemble(plan, passes, budget=0)
    _assert_same(got, want)
    assert got.engine == want.engine


# --- chunks of a long pass ------------------------------------------------------------------

def test_a_long_pass_is_cut_into_chunks_that_read_their_frames_and_the_overlap():
    jobs = [_job(100, 399), _job(100, 0), _job(0, 49)]  # forward 299 frames, backward 100, a short one
    parts = split_passes(jobs, target_work=1000, chunk_frames=120)
    whole = [p for p in parts if p.chunk is None]
    assert [p.passes for p in whole] == [(1, 2)]  # passes up to 120 frames are grouped as before
    forward = [p for p in parts if p.passes == (0,)]
    assert [c.chunk.index for c in forward] == [0, 1, 2] and {c.chunk.count for c in forward} == {3}
    assert [(c.chunk.start, c.chunk.until) for c in forward] == [(0, 100), (100, 200), (200, 299)]
    # from the frame the tracker last saw to two frames past the chunk's end (a stride of three)
    assert [(c.first, c.last) for c in forward] == [(100, 202), (200, 302), (300, 399)]
    assert [c.checkpoint_only for c in forward] == [True, True, False]
    backward = split_passes([_job(400, 100)], target_work=1000, chunk_frames=120)
    assert [(c.chunk.start, c.chunk.until, c.first, c.last) for c in backward] == [
        (0, 100, 298, 400), (100, 200, 198, 300), (200, 300, 100, 200)]  # frames read down from 400
    assert split_passes(jobs, target_work=1000) == split_passes(jobs, 1000, chunk_frames=0)  # 0: never cut
    alone = split_passes([_job(0, 0), _job(0, 299)], target_work=1000, chunk_frames=120)
    assert [p.passes for p in alone] == [(1,)] * 3  # the empty pass back from frame 0 is no job of its own


def _run_chunked(path, plan, chunk_frames: int, model_dir=None) -> dict:
    """Every pass of ``plan``, long ones in chunks, each chunk in a store of its own frames
    going on from the checkpoint the chunk before left (packed and unpacked, as stored)."""
    parts = split_passes(plan.jobs, target_work=10**6, chunk_frames=chunk_frames)
    passes, checkpoints = {}, {}
    for p in parts:
        jobs = [plan.jobs[i] for i in p.passes]
        resume = until = None
        if p.chunk is not None:
            resume, until = [checkpoints.get((p.passes, p.chunk.index - 1))], [p.chunk.until]
        out = track_passes(path, plan.info, jobs, plan.scale, model_dir, first=p.first, last=p.last, workers=1,
                           resume=resume, until=until)
        if p.checkpoint_only:
            assert isinstance(out[0], Checkpoint)
            checkpoints[(p.passes, p.chunk.index)] = out[0].data
            continue
        passes |= {plan.keys[i]: r for i, r in zip(p.passes, unpack_passes(pack_passes(out)))}
    return passes


@pytest.mark.parametrize("engine", ["built-in", "learned"])
def test_a_pass_run_in_chunks_gives_the_boxes_of_one_piece(engine, request):
    """A long pass cut into chunks that run one after another, each from the checkpoint of the
    one before and decoding only its own frames (as on separate machines), gives the tracks of
    the pass run whole: the tracker's state travels with the checkpoint."""
    model_dir = str(request.getfixturevalue("model_dir")) if engine == "learned" else None
    path, info, gt = sequence("otb_crossing")
    keyframes = {40: seeds_at(gt, 40)}  # forward 79 frames, backward (open-ended) 40
    plan = plan_propagation(path, keyframes, info=info, tracker_model=model_dir)
    assert (plan.engine.model_dir is None) == (model_dir is None)
    model_dir = plan.engine.model_dir
    one = {plan.keys[i]: r for i, r in enumerate(
        track_passes(path, info, [job], plan.scale, model_dir, workers=1)[0] for job in plan.jobs)}
    want = assemble(plan, one, budget=0)
    for chunk_frames in (13, 30):  # boundaries at different phases of the stride
        got = assemble(plan, _run_chunked(path, plan, chunk_frames, model_dir), budget=0)
        _assert_same(got, want)
    assert np.isfinite(want.tracks[0].boxes[:80]).all(1).mean() > 0.5  # it tracked something
