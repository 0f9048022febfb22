from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from src.review.models import FrameDecision, JobStage


class ReviewFrameRead(BaseModel):
    video_frame: int
    task_frame: int
    proposed: list[dict[str, Any]]
    corrected: list[dict[str, Any]] | None
    decision: FrameDecision
    attribute_check: bool = Field(False, description=(
        "picked to check the attribute values at an AVA timestamp (review_attribute_share) rather than the boxes"))


class ReviewJobRead(BaseModel):
    id: int
    dataset_id: uuid.UUID
    dataset_name: str
    video_id: uuid.UUID
    backend: str
    stage: JobStage
    issue: str | None
    assignee_id: uuid.UUID | None
    qc: bool = Field(False, description="a QC job: a second opinion on frames of another annotator's job")
    frames: list[ReviewFrameRead]
    classes: list[dict[str, Any]]
    url: str


class FrameDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    decision: FrameDecision = Field(description='"accepted" (a fixed frame keeps its fix), "fixed" (with `objects`), '
                                                '"rejected" (dropped from the dataset), "pending" (revert to the proposed boxes)')
    objects: list[dict[str, Any]] | None = Field(None, description='with "fixed": [{"track_id"?, "class", "box"}]')


class ValidationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    accept: bool
    issue: str = ""


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    user_id: uuid.UUID


class ReviewTaskRead(BaseModel):
    backend: str
    state: str
    message: str | None = Field(None, description="shown to the dataset owner, e.g. while CVAT is unreachable")
    jobs: dict[str, int] = Field(default_factory=dict, description="number of jobs per stage")


class AgreementPairRow(BaseModel):
    """Two annotators over the frames both annotated (`src/review/agreement.py`)."""

    a: str
    b: str
    frames: int
    box_f1: float | None = Field(None, description="mean per-frame F1 of the IoU >= 0.5 matching")
    matched_boxes: int
    label_kappa: float | None = Field(None, description="Cohen's kappa over the matched boxes' classes")
    attribute_kappa: dict[str, float | None] | None = Field(
        None, description="Cohen's kappa per attribute over matched boxes of the same class (multi-label: per value, "
                          "keyed 'attribute:value'); absent when no box has attributes (docs/attributes.md)")


class AgreementJobRow(AgreementPairRow):
    """A QC job (`b`) against the primary job (`a`) holding its frames."""

    job_id: int
    qc_job_id: int
    stages: list[str]
    ready: bool = Field(description="both completed annotation: the figures are set")
    frame_f1: dict[str, float] = Field(default_factory=dict, description="box F1 per video frame")
    meets_threshold: bool | None = None
    can_accept: bool = False
    auto_accepted: bool = False


class ReviewAgreement(BaseModel):
    jobs: list[AgreementJobRow]
    pairs: list[AgreementPairRow]


class ReviewJobBrief(BaseModel):
    id: int
    qc: bool
    stage: JobStage
    frames: int
    assignee: str | None
    reviewer: str | None
    auto_accepted: bool
    issue: str | None


class ReviewOverviewRow(BaseModel):
    dataset_id: uuid.UUID
    dataset_name: str
    dataset_state: str
    task_state: str
    backend: str
    message: str | None
    auto_accept_agreement: float | None
    created_at: datetime
    completed_at: datetime | None
    stages: dict[str, int]
    jobs: list[ReviewJobBrief]
    agreement: ReviewAgreement
