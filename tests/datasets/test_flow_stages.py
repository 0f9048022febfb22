"""The dataset flow's stages on small inputs, without a database or a worker
(src/datasets/flow.py, src/datasets/pipeline.py): a change in one fails here first, before
the end-to-end tests."""

from __future__ import annotations

import json
import uuid
import zipfile

import numpy as np
import pytest

from src.datasets import flow, pipeline
from src.datasets.draft.models import LabelClass
from src.datasets.models import Dataset, DatasetState
from src.datasets.ports import ModelApplied, ReviewOutcome
from src.datasets.runs import Claim
from src.datasets.schemas import DatasetOptions
from src.videos.models import Video
from src.vision.formats.build import write_images
from src.vision.formats.model import image_name
from src.vision.propagate import propagate
from src.vision.sampling import sample_frames
from tests.vision.conftest import cut_sequence

FRAMES = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames of otb_crossing: (path, probe, ground truth of the walker)."""
    path, info, gt, _ = cut_sequence("otb_crossing", 0, FRAMES, tmp_path_factory.mktemp("clip"))
    return path, info, next(iter(gt.values()))


def _seeds(gt, *frames):
    return {f: [{"track_id": 1, "class": "person", "box": [float(v) for v in gt[f]]}] for f in frames}


def _claim(path, info, seeds, state=DatasetState.propagating) -> Claim:
    video = Video(id=uuid.uuid4(), display_name="crossing.mp4", width=info.width, height=info.height, fps=info.fps,
                  frame_count=info.frames)
    dataset = Dataset(id=uuid.uuid4(), name="walkers", state=state, video_id=video.id, options={})
    classes = [LabelClass(id=1, name="person", color="#e6194b", position=0)]
    return Claim(dataset.id, "token", dataset, video, classes, seeds, (), str(path))


def test_one_decode_tracks_samples_and_writes_the_images(clip, tmp_path):
    """run_tracking: the tracks of a plain propagation, the frames sample_frames picks, and
    the images write_images would write, byte for byte."""
    path, info, gt = clip
    sampling = {"mode": "every_n", "every_n": 4}
    seeds = _seeds(gt, 0)
    tracked = pipeline.run_tracking(str(path), seeds, info, None, None, None, sampling, str(tmp_path / "images"),
                                    progress_path=str(tmp_path / "progress.json"))
    assert tracked.delivered == sample_frames(path, mode="every_n", every_n=4)
    alone = propagate(path, pipeline.seed_objects(seeds), budget=0, info=info)
    np.testing.assert_array_equal(tracked.result.tracks[0].boxes, alone.tracks[0].boxes)
    write_images(path, tracked.delivered, tmp_path / "decoded")
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [image_name(f) for f in tracked.delivered]
    for f in tracked.delivered:
        assert (tmp_path / "images" / image_name(f)).read_bytes() == (tmp_path / "decoded" / image_name(f)).read_bytes()
    assert json.loads((tmp_path / "progress.json").read_text()) == {"done": FRAMES, "total": FRAMES}


def test_the_build_reads_the_written_images_not_the_video(clip, tmp_path):
    """With the images of the track stage the build needs no video: here there is none."""
    path, info, gt = clip
    claim = _claim(path, info, _seeds(gt, 0))
    options = DatasetOptions(formats=["coco"])
    images = tmp_path / "images"
    tracked = pipeline.run_tracking(str(path), claim.seeds, info, None, None, None, options.sampling.model_dump(),
                                    str(images), progress_path=str(tmp_path / "p.json"))
    spec = flow.export_spec(claim, options, ReviewOutcome())
    built = pipeline.run_build(str(tmp_path / "no-such-video.mp4"), tracked.result, spec, tracked.delivered,
                               options.split.model_dump(), True, str(tmp_path / "out"), str(tmp_path / "b.json"),
                               images_dir=tracked.images)
    assert built.frames == FRAMES and built.object_frames == int(tracked.result.tracks[0].present.sum())
    names = zipfile.ZipFile(built.zips["coco"]).namelist()
    assert {n.rpartition("/")[2] for n in names if n.endswith(".jpg")} == {image_name(f) for f in range(FRAMES)}
    (images / image_name(3)).unlink()  # an image missing: refused, not a half-empty export
    with pytest.raises(ValueError, match="missing"):
        pipeline.run_build(str(path), tracked.result, spec, tracked.delivered, options.split.model_dump(), True,
                           str(tmp_path / "out2"), str(tmp_path / "b2.json"), images_dir=tracked.images)


@pytest.mark.parametrize(("budget", "frames", "resumed", "builds"), [
    (0.0, 1000, False, True),  # no review possible: the first run writes the images
    (0.05, 10, False, True),  # floor(0.05 x 10) = 0 review frames
    (0.05, 20, False, False),  # one review frame possible: the images wait for the run after it
    (0.05, 20, True, True),  # that run builds
])
def test_which_run_writes_the_images(budget, frames, resumed, builds, clip):
    path, info, gt = clip
    claim = _claim(path, info, _seeds(gt, 0), DatasetState.building if resumed else DatasetState.propagating)
    claim.video.frame_count = frames
    assert flow.goes_to_build(claim, DatasetOptions(review_budget=budget)) is builds


def test_the_review_pick_and_what_the_reviewer_sees(clip, tmp_path):
    path, info, gt = clip
    claim = _claim(path, info, _seeds(gt, 0))
    tracked = pipeline.run_tracking(str(path), claim.seeds, info, None, None, None, {"mode": "all"}, None,
                                    progress_path=str(tmp_path / "p.json"))
    assert tracked.delivered == list(range(FRAMES)) and tracked.images is None  # every frame, nothing decoded for it
    run = flow.Run({}, claim, DatasetOptions(review_budget=0.1), tmp_path)
    pick = flow.pick_review(run, tracked, ModelApplied(tracked.result, None, 0))
    assert len(pick.frames) == 3 and 0 not in pick.frames  # floor(0.1 x 30); never the keyframe
    proposed = flow.proposed_boxes(tracked.result, pick.frames)
    track = tracked.result.tracks[0]
    for f in pick.frames:
        (box,) = proposed[f]
        assert box["track_id"] == 1 and box["class"] == "person"
        np.testing.assert_allclose(box["box"], track.boxes[f], atol=0.005)
    resumed = flow.Run({}, _claim(path, info, claim.seeds, DatasetState.building), DatasetOptions(review_budget=0.1), tmp_path)
    assert flow.pick_review(resumed, tracked, ModelApplied(tracked.result, None, 0)).frames == []


def test_the_timeline_says_what_the_run_did(clip, tmp_path):
    path, info, gt = clip
    claim = _claim(path, info, _seeds(gt, 0, 20), DatasetState.building)
    tracked = pipeline.run_tracking(str(path), claim.seeds, info, None, None, None, {"mode": "all"}, None,
                                    progress_path=str(tmp_path / "p.json"))
    run = flow.Run({}, claim, DatasetOptions(), tmp_path, timings={"propagating": 1.5})
    outcome = ReviewOutcome(reviewed=[12], dropped=[7])
    doc = flow.timeline(run, pipeline.Tracked(tracked.result, [f for f in tracked.delivered if f != 7]),
                        ModelApplied(tracked.result, None, 0), outcome)
    assert doc["keyframes"] == [0, 20] and doc["hard_frames"] == [7, 12] and doc["reviewed_frames"] == [12]
    assert doc["delivered"] == FRAMES - 1 and len(doc["confidence"]) == FRAMES
    assert doc["engine"] == "lk-ncc" and doc["propagated_spans"] is None and doc["stage_seconds"] == {"propagating": 1.5}
    assert "model_filled_boxes" not in doc


def test_progress_within_a_stage():
    assert flow._progress("building", 65, 100, {}, 3.0) == {"stage": "building", "percent": 65}
    half = flow._progress("propagating", 0, 65, {"done": 50, "total": 100}, 10.0)
    assert half == {"stage": "propagating", "percent": 32.5, "frames_done": 50, "frames_total": 100, "eta_s": 10.0}
    assert flow.STAGES["propagating"][1] == flow.IN_REVIEW_PERCENT == flow.STAGES["building"][0]
    assert flow.STAGES_AFTER_REVIEW["propagating"][0] > flow.IN_REVIEW_PERCENT  # the bar never goes back
