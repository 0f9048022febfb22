"""Label classes and keyframes (seed boxes) of a dataset draft."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from src.database import Base, CreatedAtMixin


class LabelClass(CreatedAtMixin, Base):
    __tablename__ = "label_class"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_label_class_dataset_id_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(7))  # "#rrggbb"
    position: Mapped[int] = mapped_column(Integer, default=0)


class Keyframe(CreatedAtMixin, Base):
    """One annotated frame. `objects` is a list of
    `{"track_id": int, "class_id": int, "box": [x1, y1, x2, y2]}` (full-resolution pixels) or
    `{"track_id": int, "gone": true}` (the object is gone from this frame on)."""

    __tablename__ = "keyframe"
    __table_args__ = (UniqueConstraint("dataset_id", "frame", name="uq_keyframe_dataset_id_frame"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    frame: Mapped[int] = mapped_column(Integer)
    objects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class AttributeSpec(CreatedAtMixin, Base):
    """An attribute of the boxes of one class, as CVAT has them (docs/attributes.md).

    `kind`: select (one of `values`), multi (several of `values`), checkbox (yes/no),
    number (`values` = [min, max, step]) or text. `mutable`: the value may change along a
    track (from a keyframe on); otherwise it is fixed per track. `default` is a value of `kind`."""

    __tablename__ = "attribute_spec"
    __table_args__ = (UniqueConstraint("class_id", "name", name="uq_attribute_spec_class_id_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("label_class.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    values: Mapped[list[Any]] = mapped_column(JSON, default=list)
    default: Mapped[Any] = mapped_column(JSON, nullable=True)
    mutable: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
