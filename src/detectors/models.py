"""Detector models, the versioned master datasets they are trained on, and their evaluations."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class DetectorState(StrEnum):
    validating = "validating"  # uploaded: the worker loads it and runs it on one frame
    training = "training"  # a train job is making it
    ready = "ready"
    invalid = "invalid"  # upload refused by the worker (message in `error`)
    failed = "failed"  # training failed (message in `error`)


class DetectorKind(StrEnum):
    pt = "pt"  # ultralytics checkpoint
    onnx = "onnx"  # ultralytics ONNX export


class Detector(CreatedAtMixin, Base):
    __tablename__ = "detector"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[DetectorKind] = mapped_column(Enum(DetectorKind, name="detector_kind", native_enum=False, length=8))
    state: Mapped[DetectorState] = mapped_column(
        Enum(DetectorState, name="detector_state", native_enum=False, length=16), default=DetectorState.validating
    )
    shared: Mapped[bool] = mapped_column(Boolean, default=False)  # admins' models, usable by everyone
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    storage_key: Mapped[str | None] = mapped_column(String(255))
    imgsz: Mapped[int | None] = mapped_column(Integer)
    # training: {"dataset_ids", "epochs", "imgsz", "base", "device"}; None for uploads
    training: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    master_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("master_dataset.id", ondelete="SET NULL"))
    # {"epoch", "epochs", "losses": {...}, "map50_95", "percent"}
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    ready_at: Mapped[datetime | None]


class MasterDataset(CreatedAtMixin, Base):
    """The merge of some of a user's ready datasets, version n per owner; files under masters/<id>/."""

    __tablename__ = "master_dataset"
    __table_args__ = (UniqueConstraint("owner_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    dataset_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"train": n, "val": n, "duplicates": n, "objects": {class: n}}
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DetectorEvaluation(CreatedAtMixin, Base):
    """A model's metrics on a master dataset version's valid split."""

    __tablename__ = "detector_evaluation"
    __table_args__ = (UniqueConstraint("detector_id", "master_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detector_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("detector.id", ondelete="CASCADE"), index=True)
    master_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("master_dataset.id", ondelete="CASCADE"), index=True)
    precision: Mapped[float] = mapped_column(Float)
    recall: Mapped[float] = mapped_column(Float)
    map50: Mapped[float] = mapped_column(Float)
    map50_95: Mapped[float] = mapped_column(Float)
    split: Mapped[str] = mapped_column(String(8), default="val")  # "train" when the master had no valid split
