"""Human review of hard frames: one task per dataset, split into jobs, one row per frame.

Stages follow CVAT: annotation -> validation -> acceptance. A job is done by an annotator
(annotation), checked by a reviewer (validation: accept, or reject with an issue text that
goes back to the annotator), and its corrections are imported once accepted (acceptance).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, Integer, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class ReviewBackend(StrEnum):
    builtin = "builtin"
    cvat = "cvat"


class TaskState(StrEnum):
    creating = "creating"  # waiting for CVAT to accept the task (retried while CVAT is down)
    open = "open"
    done = "done"  # every job accepted and imported


class JobStage(StrEnum):
    annotation = "annotation"
    validation = "validation"
    acceptance = "acceptance"


class FrameDecision(StrEnum):
    pending = "pending"
    accepted = "accepted"  # the proposed boxes are right
    fixed = "fixed"  # corrected boxes replace the proposed ones
    rejected = "rejected"  # the frame is unusable: dropped from the dataset


def _enum(enum: type[StrEnum], name: str):
    return Enum(enum, name=name, native_enum=False, length=16)


class ReviewTask(CreatedAtMixin, Base):
    __tablename__ = "review_task"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), unique=True)
    backend: Mapped[ReviewBackend] = mapped_column(_enum(ReviewBackend, "review_backend"))
    state: Mapped[TaskState] = mapped_column(_enum(TaskState, "review_task_state"), default=TaskState.open)
    message: Mapped[str | None] = mapped_column(Text)  # shown to users (e.g. "CVAT unreachable, retrying")
    cvat_project_id: Mapped[int | None] = mapped_column(Integer)
    cvat_task_id: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None]
    # QC: pairs of jobs whose box F1 and label kappa both reach this are accepted without a validator
    auto_accept_agreement: Mapped[float | None] = mapped_column(Float)
    agreement: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the last `service.qc_agreement` figures


class ReviewJob(CreatedAtMixin, Base):
    __tablename__ = "review_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("review_task.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    stage: Mapped[JobStage] = mapped_column(_enum(JobStage, "review_job_stage"), default=JobStage.annotation)
    issue: Mapped[str | None] = mapped_column(Text)  # the reviewer's reason for the last rejection
    imported: Mapped[bool] = mapped_column(default=False)
    qc: Mapped[bool] = mapped_column(default=False, server_default=false())  # a second opinion on frames of primary jobs
    cvat_job_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    updated_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]


class ReviewFrame(Base):
    """One review frame in a job: a hard frame, or an attribute check (`attribute_check`).
    `proposed` / `corrected` are lists of `{"track_id": int, "class": str, "box": [x1, y1, x2, y2]}`
    in full-resolution pixels."""

    __tablename__ = "review_frame"
    __table_args__ = (UniqueConstraint("job_id", "video_frame", name="uq_review_frame_job_id_video_frame"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("review_job.id", ondelete="CASCADE"), index=True)
    video_frame: Mapped[int] = mapped_column(Integer)
    task_frame: Mapped[int] = mapped_column(Integer)  # index of the frame inside the review (CVAT) task
    proposed: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    corrected: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    decision: Mapped[FrameDecision] = mapped_column(_enum(FrameDecision, "review_frame_decision"), default=FrameDecision.pending)
    # picked to check the attribute values at an AVA timestamp rather than the boxes (a share of
    # the review budget, DatasetOptions.review_attribute_share); reviewed like any other frame
    attribute_check: Mapped[bool] = mapped_column(default=False, server_default=false())
