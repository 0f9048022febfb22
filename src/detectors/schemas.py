"""Detector API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from src.detectors.models import DetectorKind, DetectorState


class DetectorRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    kind: DetectorKind
    state: DetectorState
    shared: bool
    classes: list[str]
    imgsz: int | None
    training: dict[str, Any] | None
    master_id: uuid.UUID | None
    progress: dict[str, Any]
    error: str | None
    created_at: datetime
    ready_at: datetime | None


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    dataset_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=200)
    epochs: int = Field(20, ge=1, le=300)
    imgsz: int = Field(640, ge=32, le=1280, description="a multiple of 32")
    base: str = Field("yolov8n.yaml", description="an architecture yaml (yolov8n.yaml, yolo11n.yaml...) or a model id")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    video_id: uuid.UUID
    frame: int = Field(ge=0)
    dataset_id: uuid.UUID | None = Field(None, description="map class names onto this draft's classes")
    conf: float = Field(0.25, gt=0, lt=1)


class PredictedBox(BaseModel):
    box: list[float]
    model_class: str
    class_name: str | None = Field(description="the draft's class of the same name, None when it has none")
    confidence: float


class Prediction(BaseModel):
    model_id: uuid.UUID
    frame: int
    width: int
    height: int
    boxes: list[PredictedBox]


class EvaluationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    detector_id: uuid.UUID
    master_id: uuid.UUID
    precision: float
    recall: float
    map50: float
    map50_95: float
    split: str


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    master_id: uuid.UUID | None = Field(None, description="a master dataset version of yours; the latest when omitted")


class EvaluationQueued(BaseModel):
    model_id: uuid.UUID
    master_id: uuid.UUID
    version: int
    state: str = "queued"
