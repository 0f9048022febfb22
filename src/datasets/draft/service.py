"""Dataset drafts: label classes and keyframes (seed boxes), shared by the API, the pages and the job.

Keyframe objects are stored with class ids (`{"track_id", "class_id", "box"}` or
`{"track_id", "gone": True}`) and answered with class names. Boxes are `[x1, y1, x2, y2]`
in full-resolution pixels of the video frame; frames are 0-based.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.datasets.draft.exceptions import (
    AttributeNotFound,
    ClassInUse,
    DatasetNotFound,
    DuplicateAttribute,
    DuplicateClass,
    InvalidDraft,
    KeyframeNotFound,
    LabelClassNotFound,
    NotADraft,
    NotReadyToCreate,
    VideoNotReady,
)
from src.datasets.draft.models import AttributeSpec, Keyframe, LabelClass
from src.datasets.draft.schemas import DraftRead, KeyframeObjectIn, LabelClassRead
from src.auth.models import Role, User
from src.datasets.models import Dataset, DatasetState
from src.videos import service as video_service
from src.videos.models import Video, VideoStatus
from src.vision import attributes as attrs

PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#42d4f4", "#f032e6", "#bfef45", "#9a6324", "#469990",
)
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_CLASS_NAME = 64
MAX_DATASET_NAME = 200
MIN_BOX = 2.0  # pixels, each side


# ---- drafts -------------------------------------------------------------------------------

async def get_for_user(session: AsyncSession, *, dataset_id: uuid.UUID, user: User) -> Dataset:
    """The dataset if `user` owns it (admins see all); DatasetNotFound otherwise."""
    dataset = await session.get(Dataset, dataset_id)
    if dataset is None or (dataset.owner_id != user.id and user.role != Role.admin):
        raise DatasetNotFound()
    return dataset


def ensure_draft(dataset: Dataset) -> None:
    if dataset.state != DatasetState.draft:
        raise NotADraft(str(dataset.state))


def clean_dataset_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not 1 <= len(name) <= MAX_DATASET_NAME:
        raise InvalidDraft(f"The dataset name must be 1 to {MAX_DATASET_NAME} characters.")
    return name


async def create_draft(
    session: AsyncSession, *, user: User, video_id: uuid.UUID, name: str, classes: list[str]
) -> Dataset:
    video = await video_service.get_for_user(session, video_id=video_id, user=user)
    if video.status != VideoStatus.ready or not video.frame_count:
        raise VideoNotReady()
    name = clean_dataset_name(name)
    names: list[str] = []
    for raw in classes:  # check them all before anything is written
        class_name = clean_class_name(raw)
        if any(n.casefold() == class_name.casefold() for n in names):
            raise DuplicateClass(class_name)
        names.append(class_name)
    dataset = Dataset(owner_id=user.id, video_id=video.id, name=name, state=DatasetState.draft)
    session.add(dataset)
    await session.flush()
    for class_name in names:
        await add_class(session, dataset=dataset, name=class_name)
    return dataset


async def get_video(session: AsyncSession, *, dataset: Dataset) -> Video:
    return await session.get_one(Video, dataset.video_id)


async def read_draft(session: AsyncSession, *, dataset: Dataset) -> DraftRead:
    classes = await list_classes(session, dataset_id=dataset.id)
    frames = await session.scalars(
        select(Keyframe.frame).where(Keyframe.dataset_id == dataset.id).order_by(Keyframe.frame)
    )
    return DraftRead(
        id=dataset.id, video_id=dataset.video_id, name=dataset.name, state=str(dataset.state),
        classes=[LabelClassRead.model_validate(c) for c in classes], keyframes=list(frames),
    )


async def check_ready_to_create(session: AsyncSession, *, dataset: Dataset) -> None:
    """"Create dataset" needs at least one box on a keyframe, and every box with a known class."""
    ensure_draft(dataset)
    class_ids = {c.id for c in await list_classes(session, dataset_id=dataset.id)}
    boxes = [o for kf in await _keyframes(session, dataset.id) for o in kf.objects if not o.get("gone")]
    if not boxes:
        raise NotReadyToCreate("Draw at least one box on a keyframe before creating the dataset.")
    if any(o.get("class_id") not in class_ids for o in boxes):
        raise NotReadyToCreate("Every box needs a class; open the editor and pick one for each box.")


# ---- label classes ------------------------------------------------------------------------

async def list_classes(session: AsyncSession, *, dataset_id: uuid.UUID) -> list[LabelClass]:
    query = select(LabelClass).where(LabelClass.dataset_id == dataset_id).order_by(LabelClass.position, LabelClass.id)
    return list((await session.scalars(query)).all())


def clean_class_name(raw: str | None) -> str:
    name = (raw or "").strip()
    if not 1 <= len(name) <= MAX_CLASS_NAME:
        raise InvalidDraft(f"A class name must be 1 to {MAX_CLASS_NAME} characters.")
    return name


def clean_color(raw: str) -> str:
    color = raw.strip()
    if not COLOR_RE.match(color):
        raise InvalidDraft(f"'{raw}' is not a colour; use #rrggbb, e.g. #e6194b.")
    return color.lower()


def _next_color(used: set[str], count: int) -> str:
    for color in PALETTE:
        if color not in used:
            return color
    return PALETTE[count % len(PALETTE)]


def _ensure_unique(classes: list[LabelClass], name: str, *, except_id: int | None = None) -> None:
    if any(c.name.casefold() == name.casefold() and c.id != except_id for c in classes):
        raise DuplicateClass(name)


async def add_class(session: AsyncSession, *, dataset: Dataset, name: str, color: str | None = None) -> LabelClass:
    ensure_draft(dataset)
    name = clean_class_name(name)
    classes = await list_classes(session, dataset_id=dataset.id)
    _ensure_unique(classes, name)
    color = clean_color(color) if color else _next_color({c.color for c in classes}, len(classes))
    position = max((c.position for c in classes), default=-1) + 1
    label = LabelClass(dataset_id=dataset.id, name=name, color=color, position=position)
    session.add(label)
    await session.flush()
    return label


async def get_class(session: AsyncSession, *, dataset: Dataset, class_id: int) -> LabelClass:
    label = await session.get(LabelClass, class_id)
    if label is None or label.dataset_id != dataset.id:
        raise LabelClassNotFound()
    return label


async def update_class(
    session: AsyncSession, *, dataset: Dataset, class_id: int, name: str | None = None, color: str | None = None
) -> LabelClass:
    ensure_draft(dataset)
    label = await get_class(session, dataset=dataset, class_id=class_id)
    if name is not None:
        name = clean_class_name(name)
        _ensure_unique(await list_classes(session, dataset_id=dataset.id), name, except_id=label.id)
    if color is not None:
        color = clean_color(color)
    label.name = name if name is not None else label.name
    label.color = color if color is not None else label.color
    await session.flush()
    return label


async def boxes_using(session: AsyncSession, *, dataset: Dataset, class_id: int) -> int:
    return sum(
        1 for kf in await _keyframes(session, dataset.id) for o in kf.objects if o.get("class_id") == class_id
    )


async def remove_class(session: AsyncSession, *, dataset: Dataset, class_id: int, force: bool = False) -> None:
    """Remove a class; if boxes use it, ClassInUse unless `force`, which removes those boxes too."""
    ensure_draft(dataset)
    label = await get_class(session, dataset=dataset, class_id=class_id)
    used = await boxes_using(session, dataset=dataset, class_id=class_id)
    if used and not force:
        raise ClassInUse(label.name, used)
    if used:
        for kf in await _keyframes(session, dataset.id):
            kf.objects = [o for o in kf.objects if o.get("class_id") != class_id]
        await _tidy(session, dataset.id)
    await session.delete(label)
    await session.flush()


# ---- keyframes ----------------------------------------------------------------------------

async def _keyframes(session: AsyncSession, dataset_id: uuid.UUID) -> list[Keyframe]:
    # populate_existing: bulk statements (upsert, delete) may have changed rows already loaded.
    query = (
        select(Keyframe).where(Keyframe.dataset_id == dataset_id).order_by(Keyframe.frame)
        .execution_options(populate_existing=True)
    )
    return list((await session.scalars(query)).all())


async def _tidy(session: AsyncSession, dataset_id: uuid.UUID) -> None:
    """Drop gone markers whose track no longer has a box on an earlier keyframe, then empty keyframes."""
    seen: set[int] = set()
    for kf in await _keyframes(session, dataset_id):
        kept = [o for o in kf.objects if not o.get("gone") or o["track_id"] in seen]
        seen.update(o["track_id"] for o in kf.objects if not o.get("gone"))
        if len(kept) != len(kf.objects):
            kf.objects = kept
        if not kept:
            await session.delete(kf)
    await session.flush()


def _names(classes: list[LabelClass]) -> dict[int, str]:
    return {c.id: c.name for c in classes}


def _public(obj: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    if obj.get("gone"):
        return {"track_id": obj["track_id"], "gone": True}
    public = {"track_id": obj["track_id"], "class": names.get(obj.get("class_id"), None), "box": obj["box"]}
    if obj.get("attributes"):
        public["attributes"] = obj["attributes"]
    return public


async def list_keyframes(session: AsyncSession, *, dataset: Dataset) -> list[dict[str, Any]]:
    """`[{"frame", "objects": [{"track_id", "class", "box"} | {"track_id", "gone": True}]}]`, by frame."""
    names = _names(await list_classes(session, dataset_id=dataset.id))
    return [
        {"frame": kf.frame, "objects": [_public(o, names) for o in kf.objects]}
        for kf in await _keyframes(session, dataset.id)
    ]


async def seeds_for_engine(session: AsyncSession, *, dataset_id: uuid.UUID) -> dict[int, list[dict[str, Any]]]:
    """The seeds of the propagation job: `{frame: [{"track_id", "class", "box"} | {"track_id", "gone": True}]}`."""
    names = _names(await list_classes(session, dataset_id=dataset_id))
    return {kf.frame: [_public(o, names) for o in kf.objects] for kf in await _keyframes(session, dataset_id)}


def _check_frame(video: Video, frame: int) -> None:
    if frame < 0 or frame >= (video.frame_count or 0):
        raise InvalidDraft(
            f"Frame {frame} is outside the video: frames are numbered 0 to {(video.frame_count or 1) - 1}."
        )


def _check_box(obj: KeyframeObjectIn, video: Video) -> list[float]:
    """The box clipped to the frame (an object entering at the edge is drawn partly outside
    it), or InvalidDraft saying what is wrong: a box wholly outside the frame is refused."""
    track = obj.track_id
    if obj.box is None or len(obj.box) != 4:
        raise InvalidDraft(f"Track {track}: a box is four numbers [x1, y1, x2, y2].")
    x1, y1, x2, y2 = obj.box
    if x2 <= x1 or y2 <= y1:
        raise InvalidDraft(f"Track {track}: the box needs x2 > x1 and y2 > y1, got {obj.box}.")
    width, height = video.width or 0, video.height or 0
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise InvalidDraft(f"Track {track}: the box {obj.box} is outside the {width}x{height} frame.")
    box = [max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)]
    if box[2] - box[0] < MIN_BOX or box[3] - box[1] < MIN_BOX:
        raise InvalidDraft(f"Track {track}: the box is smaller than 2x2 pixels.")
    return [round(v, 2) for v in box]


async def put_keyframe(
    session: AsyncSession, *, dataset: Dataset, frame: int, objects: list[KeyframeObjectIn]
) -> list[dict[str, Any]]:
    """Replace the objects of `frame` (an empty list removes the keyframe); answers them with names."""
    ensure_draft(dataset)
    video = await get_video(session, dataset=dataset)
    _check_frame(video, frame)
    classes = await list_classes(session, dataset_id=dataset.id)
    by_name = {c.name: c.id for c in classes}
    specs = await attribute_specs(session, dataset_id=dataset.id)
    keyframes = await _keyframes(session, dataset.id)
    earlier_tracks = {
        o["track_id"] for kf in keyframes if kf.frame < frame for o in kf.objects if not o.get("gone")
    }
    stored: list[dict[str, Any]] = []
    seen: set[int] = set()
    for obj in objects:
        if obj.track_id < 1:
            raise InvalidDraft(f"Track ids are positive whole numbers, got {obj.track_id}.")
        if obj.track_id in seen:
            raise InvalidDraft(f"Track {obj.track_id} appears twice on frame {frame}; each object needs its own track id.")
        seen.add(obj.track_id)
        if obj.gone:
            if obj.track_id not in earlier_tracks:
                raise InvalidDraft(
                    f"Track {obj.track_id} cannot be gone on frame {frame}: it has no box on an earlier keyframe."
                )
            stored.append({"track_id": obj.track_id, "gone": True})
            continue
        if obj.class_name not in by_name:
            raise InvalidDraft(f"Track {obj.track_id}: unknown class '{obj.class_name}'; add it to the dataset first.")
        box = _check_box(obj, video)
        entry = {"track_id": obj.track_id, "class_id": by_name[obj.class_name], "box": box}
        if obj.attributes:
            try:
                entry["attributes"] = attrs.check_values(specs, obj.class_name, obj.attributes)
            except attrs.InvalidAttribute as error:
                raise InvalidDraft(f"Track {obj.track_id} on frame {frame}: {error}") from error
        stored.append(entry)

    # A track has one class: a class set here becomes the track's class on every keyframe.
    classed = {o["track_id"]: o["class_id"] for o in stored if not o.get("gone")}
    # An immutable attribute has one value per track: a value set here holds on every keyframe.
    fixed_names = {(s.class_name, s.name) for s in specs if not s.mutable}
    names = _names(classes)
    fixed = {o["track_id"]: {k: v for k, v in (o.get("attributes") or {}).items()
                             if (names[o["class_id"]], k) in fixed_names}
             for o in stored if not o.get("gone")}
    for kf in keyframes:
        if kf.frame == frame:
            continue
        relabeled = [_retrack(o, classed, fixed) for o in kf.objects]
        if relabeled != kf.objects:
            kf.objects = relabeled
    if stored:
        statement = insert(Keyframe).values(dataset_id=dataset.id, frame=frame, objects=stored, created_at=func.now())
        await session.execute(statement.on_conflict_do_update(
            constraint="uq_keyframe_dataset_id_frame", set_={"objects": statement.excluded.objects},
        ))
    else:
        await session.execute(delete(Keyframe).where(Keyframe.dataset_id == dataset.id, Keyframe.frame == frame))
    await _tidy(session, dataset.id)
    return [_public(o, names) for o in stored]


def _retrack(obj: dict[str, Any], classed: dict[int, int], fixed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A box of another keyframe with its track's class and fixed attribute values as set now."""
    track = obj["track_id"]
    if obj.get("gone") or track not in classed:
        return obj
    out = {**obj, "class_id": classed[track]}
    if obj.get("class_id") != classed[track]:
        out.pop("attributes", None)  # values of the former class do not apply
    if fixed.get(track):
        out["attributes"] = {**(out.get("attributes") or {}), **fixed[track]}
    return out


async def delete_keyframe(session: AsyncSession, *, dataset: Dataset, frame: int) -> None:
    ensure_draft(dataset)
    result = await session.execute(
        delete(Keyframe).where(Keyframe.dataset_id == dataset.id, Keyframe.frame == frame)
    )
    if result.rowcount == 0:
        raise KeyframeNotFound(frame)
    await _tidy(session, dataset.id)


async def split_track(session: AsyncSession, *, dataset: Dataset, track_id: int, frame: int) -> int:
    """From `frame` on, track `track_id` is another object: its boxes and gone marks on keyframes
    at or after `frame` move to a new track id, which is returned."""
    ensure_draft(dataset)
    keyframes = await _keyframes(session, dataset.id)
    if not any(o["track_id"] == track_id and not o.get("gone") for kf in keyframes for o in kf.objects):
        raise InvalidDraft(f"There is no track {track_id} in this draft.")
    later = [kf for kf in keyframes if kf.frame >= frame and any(o["track_id"] == track_id for o in kf.objects)]
    if not later or all(kf.frame >= frame for kf in keyframes if any(
            o["track_id"] == track_id and not o.get("gone") for o in kf.objects)):
        raise InvalidDraft(f"Track {track_id} needs a box before frame {frame} and one from it on to be split there.")
    new_id = 1 + max(o["track_id"] for kf in keyframes for o in kf.objects)
    for kf in later:
        kf.objects = [{**o, "track_id": new_id} if o["track_id"] == track_id else o for o in kf.objects]
    await session.flush()
    await _tidy(session, dataset.id)
    return new_id


async def merge_tracks(session: AsyncSession, *, dataset: Dataset, track_id: int, into: int) -> None:
    """Track `track_id` is the same object as `into`: its keyframes join `into` (which keeps its
    class). Refused when both have a box on one keyframe (one object cannot be there twice)."""
    ensure_draft(dataset)
    if track_id == into:
        raise InvalidDraft("A track cannot be merged into itself.")
    keyframes = await _keyframes(session, dataset.id)
    has = lambda kf, t: any(o["track_id"] == t for o in kf.objects)  # noqa: E731
    if not any(has(kf, track_id) for kf in keyframes) or not any(has(kf, into) for kf in keyframes):
        raise InvalidDraft(f"Both tracks must exist in this draft (#{track_id}, #{into}).")
    both = [kf.frame for kf in keyframes if has(kf, track_id) and has(kf, into)]
    if both:
        raise InvalidDraft(f"Tracks #{track_id} and #{into} are both on frame {both[0]}: one object cannot be there twice.")
    target_class = next(o["class_id"] for kf in keyframes for o in kf.objects if o["track_id"] == into and not o.get("gone"))
    for kf in keyframes:
        if has(kf, track_id):
            kf.objects = [{**o, "track_id": into, **({} if o.get("gone") else {"class_id": target_class})}
                          if o["track_id"] == track_id else o for o in kf.objects]
    await session.flush()
    await _tidy(session, dataset.id)


# ---- attribute schemas --------------------------------------------------------------------

async def list_attributes(session: AsyncSession, *, dataset_id: uuid.UUID) -> list[tuple[AttributeSpec, LabelClass]]:
    """The dataset's attributes with their class, in class order then creation order."""
    query = (
        select(AttributeSpec, LabelClass).join(LabelClass, AttributeSpec.class_id == LabelClass.id)
        .where(AttributeSpec.dataset_id == dataset_id)
        .order_by(LabelClass.position, LabelClass.id, AttributeSpec.position, AttributeSpec.id)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


def as_spec(row: AttributeSpec, label: LabelClass) -> attrs.AttributeSpec:
    return attrs.AttributeSpec(label.name, row.name, row.kind, tuple(row.values or ()), row.default, row.mutable)


async def attribute_specs(session: AsyncSession, *, dataset_id: uuid.UUID) -> list[attrs.AttributeSpec]:
    """The schemas as the engine and the exports read them (src/vision/attributes.py)."""
    return [as_spec(row, label) for row, label in await list_attributes(session, dataset_id=dataset_id)]


def read_attribute(row: AttributeSpec, label: LabelClass) -> dict[str, Any]:
    return {"id": row.id, **as_spec(row, label).as_dict()}


async def add_attribute(
    session: AsyncSession, *, dataset: Dataset, class_name: str, name: str, kind: str,
    values: list[Any] | None = None, default: Any = None, mutable: bool = True,
) -> dict[str, Any]:
    """A new attribute of the class named `class_name`; InvalidDraft says what is wrong."""
    ensure_draft(dataset)
    classes = await list_classes(session, dataset_id=dataset.id)
    label = next((c for c in classes if c.name == (class_name or "").strip()), None)
    if label is None:
        raise InvalidDraft(f"Unknown class '{class_name}'; add it to the dataset first.")
    try:
        spec = attrs.clean_spec(label.name, name, kind, values, default, mutable)
    except attrs.InvalidAttribute as error:
        raise InvalidDraft(str(error)) from error
    existing = [row for row, c in await list_attributes(session, dataset_id=dataset.id) if c.id == label.id]
    if any(row.name.casefold() == spec.name.casefold() for row in existing):
        raise DuplicateAttribute(label.name, spec.name)
    row = AttributeSpec(
        dataset_id=dataset.id, class_id=label.id, name=spec.name, kind=spec.kind, values=list(spec.values),
        default=spec.default, mutable=spec.mutable, position=max((r.position for r in existing), default=-1) + 1,
    )
    session.add(row)
    await session.flush()
    return read_attribute(row, label)


async def remove_attribute(session: AsyncSession, *, dataset: Dataset, attribute_id: int) -> None:
    """Remove an attribute and the values the keyframes hold for it."""
    ensure_draft(dataset)
    row = await session.get(AttributeSpec, attribute_id)
    if row is None or row.dataset_id != dataset.id:
        raise AttributeNotFound()
    for kf in await _keyframes(session, dataset.id):
        changed = [
            {**o, "attributes": {k: v for k, v in o["attributes"].items() if k != row.name}}
            if o.get("class_id") == row.class_id and row.name in (o.get("attributes") or {}) else o
            for o in kf.objects
        ]
        if changed != kf.objects:
            kf.objects = [{k: v for k, v in o.items() if k != "attributes" or v} for o in changed]
    await session.delete(row)
    await session.flush()
