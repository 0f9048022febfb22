"""Creation options, quotes and the dataset as the API returns it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from src.datasets.draft.schemas import DraftRead
from src.datasets.models import DatasetState

# yolo: Ultralytics YOLO; yolo_track: the same plus tracks/ (a track id per label line);
# coco: COCO (RF-DETR layout); cvat: CVAT for video 1.1; cvat_images: CVAT for images 1.1;
# ava: AVA v2.x CSV; mot: MOT Challenge sequence (gt/gt.txt, seqinfo.ini). See docs/formats.md.
Format = Literal["yolo", "yolo_track", "coco", "cvat", "cvat_images", "ava", "mot"]


class SamplingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    mode: Literal["all", "every_n", "dedup"] = "all"
    every_n: int = Field(5, ge=1, le=10_000, description="with mode=every_n: keep one frame in N")
    ssim_threshold: float = Field(0.95, gt=0, lt=1, description="with mode=dedup: drop frames at least this similar")


class SplitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    train: float = Field(0.8, ge=0, le=1)
    valid: float = Field(0.2, ge=0, le=1)
    test: float = Field(0.0, ge=0, le=1)
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> "SplitOptions":
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"train + valid + test must add up to 1 (they add up to {total:g})")
        if self.train <= 0:
            raise ValueError("train must be more than 0")
        return self


class DatasetOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    sampling: SamplingOptions = SamplingOptions()
    split: SplitOptions = SplitOptions()
    formats: list[Format] = Field(default_factory=lambda: ["yolo", "coco", "cvat", "ava"], min_length=1)
    review_budget: float = Field(0.05, ge=0, le=0.5, description="share of delivered frames a human may check")
    review_attribute_share: float = Field(0, ge=0, le=1, description=(
        "share of the review frames given to attribute checks: AVA timestamps where a mutable attribute value is "
        "at risk (it changes nearby, or was set long ago), instead of the hardest frames for the boxes; "
        "see docs/attributes.md"))
    review_backend: Literal["builtin", "cvat"] = "builtin"
    review_by: Literal["team", "me"] = Field(
        "team", description="who reviews the hard frames: the annotator team, or me (the owner, on the built-in page)")
    double_review_share: float = Field(0, ge=0, le=1, description="share of hard frames also given to a second annotator")
    auto_accept_agreement: float | None = Field(
        None, ge=0, le=1, description="QC: accept both jobs without validation when their box F1 and kappa reach this")
    keep_empty: bool = Field(True, description="keep frames without objects as negatives")
    ava_rate: float = Field(1.0, gt=0, le=30, description=(
        "AVA CSV rows per second of video: 1 (AVA's rate) or less, e.g. 0.5 for a row every 2 s; "
        "AVA timestamps are whole seconds, so a rate above 1 still gives 1 row per second"))
    ava_action_attribute: str | None = Field(None, min_length=1, max_length=64, description=(
        "the attribute (one of / several of) whose values are the AVA export's actions; unset: the first such "
        "attribute of the class person, else of any class"))
    model_id: uuid.UUID | None = Field(None, description="a ready detector whose disagreement with the tracks ranks hard frames")

    @field_validator("formats")
    @classmethod
    def _unique(cls, formats: list[str]) -> list[str]:
        return list(dict.fromkeys(formats))

    @field_serializer("model_id")
    def _model_id_str(self, model_id: uuid.UUID | None) -> str | None:
        return str(model_id) if model_id is not None else None  # options are stored as JSON


class QuoteItem(BaseModel):
    label: str
    quantity: int
    unit_cents: int
    cents: int


class Quote(BaseModel):
    frames: int
    frames_exact: bool
    objects: int
    object_frames: int
    review_frames: int
    qc_frames: int = 0  # of those, reviewed again by a second person (double review)
    attribute_frames: int = 0  # of those, at most this many attribute checks (the rest, and any they leave, box checks)
    from_preview: bool = False  # object-frames counted from the preview's tracks (else: every object on every frame)
    price_list_version: int
    currency: str
    items: list[QuoteItem]
    subtotal_cents: int
    minimum_cents: int
    total_cents: int


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422 naming them

    options: DatasetOptions | None = None
    expected_total_cents: int | None = Field(None, description="refuse if the price changed since the quote shown")


class Progress(BaseModel):
    stage: str | None = None
    percent: float = 0
    frames_done: int | None = None
    frames_total: int | None = None
    eta_s: float | None = None
    message: str | None = None


class DatasetRead(DraftRead):
    """The draft (classes, keyframes) plus the job: state, options, price, progress, downloads."""

    state: DatasetState
    options: dict[str, Any]
    quote: dict[str, Any] | None
    quoted_cents: int | None
    charged_cents: int | None
    delivered_frames: int | None
    progress: Progress
    error: str | None
    created_at: datetime
    confirmed_at: datetime | None
    finished_at: datetime | None
    downloads: dict[str, str]
