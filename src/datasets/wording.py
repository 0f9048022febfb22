"""A dataset's state in words: what is happening, who it waits for, what the user can do.

The job page and the cabinet show these sentences instead of raw states and stages
("in_review in_review · frame None of 6"). Pure: strings and numbers in, `StatusWords`
out, so it is tested without a database and used from templates as `dataset_status(...)`
(registered in src/templating.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from src.units import human_duration

# Short labels for badges and the cabinet's state column.
LABELS = {
    "draft": "Draft",
    "queued": "Waiting for a worker",
    "propagating": "Tracking the objects",
    "in_review": "In review",
    "building": "Building the files",
    "ready": "Ready",
    "failed": "Stopped",
    "cancelled": "Cancelled",
}
CANCEL_HINT = "You can cancel until building starts; the reserved amount is then released."
AUTOMATIC = "Nothing is needed from you: this page updates by itself."


@dataclass(frozen=True)
class StatusWords:
    label: str  # a few words for a badge: "In review"
    doing: str  # what is happening now, with progress figures when there are any
    waits_for: str | None  # who or what the dataset waits for; None when nothing is pending
    you_can: str  # what the user can do now
    tone: str = "info"  # "info", "ok" (ready) or "error" (failed): the badge's colour


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def progress_words(progress: Any) -> str:
    """"frame 120 of 600, about 2 min left" from what the worker reported; "" when nothing useful."""
    done, total, eta = _get(progress, "frames_done"), _get(progress, "frames_total"), _get(progress, "eta_s")
    parts = []
    if done is not None and total:
        parts.append(f"frame {done} of {total}")
    if eta:
        parts.append(f"about {human_duration(eta)} left")
    return ", ".join(parts)


def _review_jobs_words(jobs: dict[str, int] | None) -> str:
    """{"annotation": 1, "validation": 1, "acceptance": 2} -> "2 of 4 review jobs accepted, 1 waiting for validation"."""
    if not jobs:
        return ""
    total = sum(jobs.values())
    accepted, validating = jobs.get("acceptance", 0), jobs.get("validation", 0)
    words = f"{accepted} of {_plural(total, 'review job')} accepted"
    if validating:
        words += f", {validating} waiting for validation"
    return words


def describe(
    state: str, *, progress: Any = None, options: dict[str, Any] | None = None, error: str | None = None,
    delivered_frames: int | None = None, jobs: dict[str, int] | None = None,
) -> StatusWords:
    """The words for a dataset in `state` (a DatasetState value). `progress` is the dataset's
    progress (dict or `Progress`), `options` its creation options, `jobs` the count of review
    jobs per stage when the page has them (the review task's own message, e.g. CVAT
    unreachable, is shown beside these words by the page)."""
    state = str(getattr(state, "value", state))
    label = LABELS.get(state, state.replace("_", " ").capitalize())
    stage = _get(progress, "stage")
    figures = progress_words(progress)
    with_figures = (lambda text: f"{text} ({figures})." if figures else f"{text}.")

    if state == "draft":
        return StatusWords(label, "Not started yet: this is still a draft.", "you",
                           "Draw boxes on a few keyframes, then choose the options, check the price and confirm.")
    if state == "queued":
        return StatusWords(label, "Confirmed and in the queue; a worker starts it shortly.",
                           "a free worker (automatic)", f"{AUTOMATIC} {CANCEL_HINT}")
    if state == "propagating":
        doing = (with_figures("Choosing which frames to deliver") if stage == "sampling"
                 else with_figures("Following your boxes through every frame of the video"))
        return StatusWords(label, doing, "the worker (automatic)", f"{AUTOMATIC} {CANCEL_HINT}")
    if state == "in_review":
        options = options or {}
        hard = _get(progress, "frames_total")
        frames = _plural(hard, "hard frame") if hard else "the hard frames"
        doing = f"A person checks {frames}: the frames where the tracking is least sure."
        jobs_words = _review_jobs_words(jobs)
        if jobs_words:
            doing = f"{doing[:-1]}; {jobs_words}."
        if options.get("review_by") == "me":
            return StatusWords(label, doing, "you",
                               "Open the review, fix or accept the boxes on each hard frame, then complete it. "
                               + CANCEL_HINT)
        if options.get("review_backend") == "cvat":
            waits = "the reviewers in CVAT"
        else:
            waits = "the annotator team: an annotator fixes or accepts each frame, then a reviewer validates the job"
        return StatusWords(label, doing, waits,
                           f"{AUTOMATIC} When the last job is accepted the files are built. {CANCEL_HINT}")
    if state == "building":
        doing = with_figures({"propagating": "Tracking the objects again from the reviewed frames",
                              "sampling": "Choosing which frames to deliver"}.get(stage, "Writing the export files"))
        return StatusWords(label, doing, "the worker (automatic)",
                           f"{AUTOMATIC} The downloads appear here when it is done.")
    if state == "ready":
        frames = f"{_plural(delivered_frames, 'frame')} delivered" if delivered_frames is not None else "delivered"
        return StatusWords(label, f"Done: {frames}.", None,
                           "Download the files below or from My datasets; the preview shows every delivered frame.",
                           tone="ok")
    if state == "failed":
        doing = f"It stopped: {error}" if error else "It stopped."
        return StatusWords(label, doing, None,
                           "The reserved amount was released and nothing was charged. Start a new dataset from "
                           "the video, or ask an administrator to retry this one.", tone="error")
    if state == "cancelled":
        return StatusWords(label, "Cancelled; the reserved amount was released and nothing was charged.", None,
                           "Start a new dataset from the video page when you want one.")
    return StatusWords(label, with_figures(label), None, AUTOMATIC)


def describe_dataset(dataset: Any, *, jobs: dict[str, int] | None = None) -> StatusWords:
    """`describe` for a Dataset row or a DatasetRead (templates: `dataset_status(view)`)."""
    return describe(
        _get(dataset, "state"), progress=_get(dataset, "progress"), options=_get(dataset, "options"),
        error=_get(dataset, "error"), delivered_frames=_get(dataset, "delivered_frames"),
        jobs=jobs,
    )
