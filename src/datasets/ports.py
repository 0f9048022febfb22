"""What the dataset domain needs from the domains above it, as it sees them.

Review and detectors sit above datasets (they read datasets; review hands a finished review
back to `datasets.service`), so the dataset job and pages never import them. They name what
they need here instead, and the process that hosts them plugs the real ones in: the worker
puts a `DatasetJobPorts` into each job's context (`src.worker.startup`, `ctx["dataset_ports"]`),
the web app a `DatasetPagePorts` on `app.state.dataset_ports` (`src.main.create_app`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from src.auth.models import User
    from src.datasets.models import Dataset
    from src.datasets.schemas import DatasetOptions
    from src.vision.types import PropagationResult


@dataclass(frozen=True)
class ReviewOutcome:
    """An accepted review, as the run after it takes it: the corrections as engine seeds
    (`{frame: objects}`), the frames reviewed and dropped, the frames reviewed a second time
    (QC, charged as such)."""

    seeds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    reviewed: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    qc_reviewed: int = 0


@dataclass(frozen=True)
class ModelApplied:
    """A detector over the video (the dataset's `model_id` option): the fused tracks, the
    disagreement with the unfused ones per frame (None: not asked or no review budget), and
    how many boxes the detections filled."""

    result: PropagationResult
    scores: list[float] | None
    filled: int


class ReviewDesk(Protocol):
    async def open(self, session: AsyncSession, redis, *, dataset: Dataset, proposed: dict[int, list[dict[str, Any]]],
                   options: DatasetOptions, attribute_checks: set[int]) -> None:
        """Open the dataset's review of `proposed` (`{frame: boxes}`), in the caller's
        transaction (once committed, a CVAT task is made when the backend is CVAT)."""

    async def outcome(self, session: AsyncSession, *, dataset_id: uuid.UUID) -> ReviewOutcome:
        """The accepted review of the dataset (empty when it had none)."""


class ModelRunner(Protocol):
    async def __call__(self, ctx: dict, *, dataset: Dataset, video_path: str, result: PropagationResult,
                       classes: list[str], rank: bool) -> ModelApplied:
        """Apply the dataset's detector: detections fill lost tracks; with `rank`, the scores."""


@dataclass(frozen=True)
class DatasetJobPorts:
    review: ReviewDesk
    apply_model: ModelRunner


@dataclass(frozen=True)
class ReviewSummary:
    """The overview page's review block: the task's message, and the user's own review jobs
    of this dataset (`(job, frames)`, for self-review)."""

    message: str | None = None
    own_jobs: Sequence[tuple[Any, int]] = ()


@dataclass(frozen=True)
class ModelChoice:
    """A ready detector the user may apply to a dataset (the create page's list)."""

    id: uuid.UUID
    name: str


class ReviewSummaries(Protocol):
    async def __call__(self, session: AsyncSession, *, dataset_id: uuid.UUID, user: User) -> ReviewSummary: ...


class ModelChoices(Protocol):
    async def __call__(self, session: AsyncSession, *, user: User) -> list[ModelChoice]: ...


@dataclass(frozen=True)
class DatasetPagePorts:
    review_summary: ReviewSummaries
    model_choices: ModelChoices
