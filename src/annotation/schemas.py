"""Request and response bodies of dataset drafts, label classes and keyframes.

Semantic checks (trimmed names, colours, boxes inside the frame...) live in the service,
so the API and the pages answer with the same messages.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LabelClassRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    color: str
    position: int


class DraftCreate(BaseModel):
    video_id: uuid.UUID
    name: str
    classes: list[str] = Field(default_factory=list, max_length=100)


class DraftRead(BaseModel):
    id: uuid.UUID
    video_id: uuid.UUID
    name: str
    state: str
    classes: list[LabelClassRead]
    keyframes: list[int]


class LabelClassCreate(BaseModel):
    name: str
    color: str | None = None


class LabelClassUpdate(BaseModel):
    name: str | None = None
    color: str | None = None


class KeyframeObjectIn(BaseModel):
    """A box `{"track_id", "class", "box": [x1, y1, x2, y2]}` or a marker `{"track_id", "gone": true}`."""

    model_config = ConfigDict(populate_by_name=True)

    track_id: int
    class_name: str | None = Field(default=None, alias="class")
    box: list[float] | None = None
    gone: bool = False


class KeyframePut(BaseModel):
    objects: list[KeyframeObjectIn] = Field(max_length=1000)


class KeyframeRead(BaseModel):
    frame: int
    objects: list[dict[str, Any]]


class KeyframeList(BaseModel):
    keyframes: list[KeyframeRead]
