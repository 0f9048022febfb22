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
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    video_id: uuid.UUID
    name: str = Field(max_length=200)
    classes: list[str] = Field(default_factory=list, max_length=100)


class DraftRead(BaseModel):
    id: uuid.UUID
    video_id: uuid.UUID
    name: str
    state: str
    classes: list[LabelClassRead]
    keyframes: list[int]


class LabelClassCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    name: str
    color: str | None = None


class LabelClassUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    name: str | None = None
    color: str | None = None


class KeyframeObjectIn(BaseModel):
    """A box `{"track_id", "class", "box": [x1, y1, x2, y2]}` or a marker `{"track_id", "gone": true}`."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    track_id: int
    class_name: str | None = Field(default=None, alias="class")
    box: list[float] | None = None
    gone: bool = False
    attributes: dict[str, Any] | None = Field(
        None, description='values of the class\'s attributes set on this keyframe, e.g. {"action": ["walk"]}')


class KeyframePut(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    objects: list[KeyframeObjectIn] = Field(max_length=1000)


class KeyframeRead(BaseModel):
    frame: int
    objects: list[dict[str, Any]]


class KeyframeList(BaseModel):
    keyframes: list[KeyframeRead]


class AttributeCreate(BaseModel):
    """`{"class": "person", "name": "action", "kind": "multi", "values": [...], "mutable": true}`."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    class_name: str = Field(alias="class")
    name: str
    kind: str = Field(description="select (one of values) | multi (several of values) | checkbox | number | text")
    values: list[Any] = Field(default_factory=list, max_length=200,
                              description="choices (select, multi); [min, max, step] (number)")
    default: Any = None
    mutable: bool = Field(True, description="may change along a track (from a keyframe on); false: fixed per track")


class AttributeRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: int
    class_name: str = Field(alias="class")
    name: str
    kind: str
    values: list[Any]
    default: Any
    mutable: bool


class AttributeList(BaseModel):
    attributes: list[AttributeRead]


class TrackSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame: int = Field(ge=0, description="from this frame on the track is another object")


class TrackMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: int = Field(ge=0, description="the track that this one is the same object as")
