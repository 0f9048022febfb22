"""The job page's words for each state: what happens, who it waits for, what the user can do;
never a raw state, stage or "None"."""

from __future__ import annotations

import pytest

from src.datasets.models import DatasetState
from src.datasets.wording import describe, describe_dataset, progress_words


@pytest.mark.parametrize("state", list(DatasetState))
def test_every_state_has_words_without_raw_values(state):
    words = describe(state, progress={"stage": state.value, "frames_total": 6, "frames_done": None},
                     options={}, error="The video could not be read.", delivered_frames=40)
    text = " ".join(filter(None, [words.label, words.doing, words.waits_for, words.you_can]))
    assert "None" not in text and "_" not in text, text
    assert words.label and words.doing.endswith(".") and words.you_can


def test_the_review_says_who_it_waits_for():
    """The issue's example: in_review with 6 hard frames and no frames_done."""
    progress = {"stage": "in_review", "percent": 60, "frames_total": 6}
    team = describe("in_review", progress=progress, options={"review_backend": "builtin"})
    assert team.label == "In review"
    assert team.doing == "A person checks 6 hard frames: the frames where the tracking is least sure."
    assert team.waits_for.startswith("the annotator team")
    assert "Nothing is needed from you" in team.you_can and "cancel" in team.you_can
    me = describe("in_review", progress=progress, options={"review_by": "me"})
    assert me.waits_for == "you" and me.you_can.startswith("Open the review")
    cvat = describe("in_review", progress=progress, options={"review_backend": "cvat"})
    assert cvat.waits_for == "the reviewers in CVAT"
    jobs = describe("in_review", progress=progress, options={}, jobs={"annotation": 1, "validation": 1, "acceptance": 2})
    assert "2 of 4 review jobs accepted, 1 waiting for validation" in jobs.doing


def test_progress_figures_only_when_known():
    assert progress_words({"frames_done": 120, "frames_total": 600, "eta_s": 75}) == "frame 120 of 600, about 1 min 15 s left"
    assert progress_words({"frames_done": None, "frames_total": 6}) == ""
    running = describe("propagating", progress={"stage": "propagating", "frames_done": 10, "frames_total": 50})
    assert running.doing == "Following your boxes through every frame of the video (frame 10 of 50)."
    assert running.waits_for == "the worker (automatic)"
    resumed = describe("building", progress={"stage": "propagating"})
    assert resumed.doing == "Tracking the objects again from the reviewed frames."


def test_ready_failed_and_cancelled():
    assert describe("ready", delivered_frames=1).doing == "Done: 1 frame delivered."
    failed = describe("failed", error="The dataset could not be made: no keyframe.")
    assert failed.doing == "It stopped: The dataset could not be made: no keyframe." and failed.tone == "error"
    assert "released" in failed.you_can and failed.waits_for is None
    assert "nothing was charged" in describe("cancelled").doing


def test_describe_dataset_reads_rows_and_read_models():
    from src.datasets.schemas import Progress

    class Row:
        state, progress, options, error, delivered_frames = DatasetState.queued, Progress(stage="queued"), {}, None, None

    assert describe_dataset(Row()).label == "Waiting for a worker"
