from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from src.review.models import FrameDecision, JobStage


class ReviewFrameRead(BaseModel):
    video_frame: int
    task_frame: int
    proposed: list[dict[str, Any]]
    corrected: list[dict[str, Any]] | None
    decision: FrameDecision


class ReviewJobRead(BaseModel):
    id: int
    dataset_id: uuid.UUID
    dataset_name: str
    video_id: uuid.UUID
    backend: str
    stage: JobStage
    issue: str | None
    assignee_id: uuid.UUID | None
    frames: list[ReviewFrameRead]
    classes: list[dict[str, Any]]
    url: str


class FrameDecisionIn(BaseModel):
    decision: FrameDecision
    objects: list[dict[str, Any]] | None = Field(None, description='with "fixed": [{"track_id"?, "class", "box"}]')


class ValidationIn(BaseModel):
    accept: bool
    issue: str = ""


class AssignIn(BaseModel):
    user_id: uuid.UUID


class ReviewTaskRead(BaseModel):
    backend: str
    state: str
    message: str | None = Field(None, description="shown to the dataset owner, e.g. while CVAT is unreachable")
    jobs: dict[str, int] = Field(default_factory=dict, description="number of jobs per stage")
