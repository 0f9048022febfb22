"""The dataset lifecycle: options, quote, confirm (quota + reservation), review, settle,
cancel, retry, progress and downloads. The job itself is in flow.py (its runs in runs.py);
the pure steps in pipeline.py.

States: draft -> queued -> propagating -> in_review -> building -> ready, plus failed and
cancelled. Every transition is a row update under a row lock, so a job that runs twice or
a user who clicks twice cannot move a dataset backwards or charge it twice.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.datasets.draft import service as drafts
from src.auth.models import User
from src.billing import service as billing_service
from src.database import on_commit, utcnow
from src.datasets.exceptions import DatasetNotReady, DownloadNotFound, InvalidOptions, PriceChanged
from src.datasets.models import ACTIVE_STATES, Dataset, DatasetState
from src.datasets.schemas import DatasetOptions, DatasetRead, Progress, Quote
from src import pagination
from src.pagination import PageParams
from src.quotas import service as quota_service
from src.storage import get_storage
from src.videos import service as video_service
from src.videos.exceptions import VideoInUse
from src.videos.models import Video
from src.vision.attribute_checks import attribute_check_count
from src.webhooks import service as webhook_service
from src.webhooks.models import WebhookEvent

CANCELLABLE = (DatasetState.queued, DatasetState.propagating, DatasetState.in_review)
FORMAT_NAMES = {"yolo": "YOLO (Ultralytics)", "yolo_track": "YOLO with track ids", "coco": "COCO (RF-DETR)",
                "cvat": "CVAT for video 1.1", "cvat_images": "CVAT for images 1.1", "ava": "AVA v2.x CSV",
                "mot": "MOT Challenge"}


def qc_frames(frames: Sequence[int], share: float) -> list[int]:
    """The frames of a review given to a second annotator (QC): `share` of the (sorted) review
    frames, spread evenly over them; at least one when share > 0. The quote prices them; the
    review's QC jobs are made of them."""
    if share <= 0 or not frames:
        return []
    n = min(len(frames), max(1, int(len(frames) * share + 0.5)))
    return sorted({frames[int((i + 0.5) * len(frames) / n)] for i in range(n)})


def job_id(dataset_id: uuid.UUID, attempt: int = 0) -> str:
    """Deterministic arq job id: confirming twice cannot enqueue twice."""
    return f"dataset:{dataset_id}" if attempt == 0 else f"dataset:{dataset_id}:retry{attempt}"


def zip_key(dataset_id: uuid.UUID, fmt: str) -> str:
    return f"datasets/{dataset_id}/{fmt}.zip"


def artifact_key(dataset_id: uuid.UUID, name: str) -> str:
    return f"datasets/{dataset_id}/{name}"


def review_count(budget: float, frames: int) -> int:
    return math.floor(budget * frames + 1e-9)


async def get_for_user(session: AsyncSession, *, dataset_id: uuid.UUID, user: User) -> Dataset:
    return await drafts.get_for_user(session, dataset_id=dataset_id, user=user)


async def list_for_owner(session: AsyncSession, *, user: User) -> list[Dataset]:
    query = select(Dataset).where(Dataset.owner_id == user.id).order_by(Dataset.created_at.desc())
    return list((await session.scalars(query)).all())


async def list_for_video(session: AsyncSession, *, video_id: uuid.UUID) -> list[Dataset]:
    """The datasets made from a video, oldest first (the video page: the caller has checked the
    user may see the video)."""
    query = select(Dataset).where(Dataset.video_id == video_id).order_by(Dataset.created_at)
    return list((await session.scalars(query)).all())


async def before_video_delete(session: AsyncSession, *, video_id: uuid.UUID) -> list[str]:
    """A video is deleted with its datasets (dataset.video_id: ON DELETE CASCADE): refused while
    one of them is being made; otherwise the storage prefixes of their files, to remove once the
    transaction has committed (the video's `VideoPorts.before_delete`)."""
    running = await session.scalar(
        select(Dataset.id).where(Dataset.video_id == video_id, Dataset.state.in_(ACTIVE_STATES)).limit(1)
    )
    if running is not None:
        raise VideoInUse("A dataset of this video is still being made; cancel it first.")
    dataset_ids = (await session.scalars(select(Dataset.id).where(Dataset.video_id == video_id))).all()
    return [f"datasets/{dataset_id}" for dataset_id in dataset_ids]


async def usage(session: AsyncSession, *, user_id: uuid.UUID) -> quota_service.Usage:
    """What the user uses of the quotas, from the video and dataset tables: summed here, as
    datasets sit above videos and quotas (the quota checks' `UsageOf`). A dataset's frames count
    in the month it was confirmed, delivered ones or else the quoted ones, unless it failed or
    was cancelled."""
    videos = await video_service.usage(session, user_id=user_id)
    frames = func.coalesce(Dataset.delivered_frames, Dataset.quote["frames"].as_integer(), 0)
    counted_month = (
        (Dataset.confirmed_at >= quota_service.month_start())
        & Dataset.state.not_in([DatasetState.cancelled, DatasetState.failed])
    )
    dataset_bytes, frames_this_month, running_jobs = (await session.execute(
        select(
            func.coalesce(func.sum(Dataset.size_bytes), 0),
            func.coalesce(func.sum(frames).filter(counted_month), 0),
            func.count().filter(Dataset.state.in_(ACTIVE_STATES)),
        ).where(Dataset.owner_id == user_id)
    )).one()
    return quota_service.Usage(
        storage_bytes=videos.size_bytes + int(dataset_bytes),
        videos=videos.count,
        frames_this_month=int(frames_this_month),
        running_jobs=running_jobs,
    )


async def search_for_owner(
    session: AsyncSession, *, user: User, page: PageParams, state: DatasetState | None = None,
    video_id: uuid.UUID | None = None, q: str | None = None,
) -> tuple[list[Dataset], int]:
    """A page of the owner's datasets (newest first), by state, video and part of the name; and the total."""
    query = select(Dataset).where(Dataset.owner_id == user.id)
    if state is not None:
        query = query.where(Dataset.state == state)
    if video_id is not None:
        query = query.where(Dataset.video_id == video_id)
    if q:
        query = query.where(pagination.contains(Dataset.name, q))
    return await pagination.fetch(session, query.order_by(Dataset.created_at.desc(), Dataset.id), page)


async def delete(session: AsyncSession, *, dataset: Dataset) -> str:
    """Delete a dataset with its draft, review and files; its ledger rows stay (they name the
    dataset by id, without a foreign key). Refused while its job runs. Returns the storage
    prefix to remove once the transaction has committed."""
    locked = await session.get(Dataset, dataset.id, with_for_update=True, populate_existing=True)
    if locked.state in ACTIVE_STATES:
        raise DatasetNotReady(f"This dataset is {locked.state.value.replace('_', ' ')}: cancel it first, then delete it.")
    await session.delete(locked)
    await session.flush()
    return f"datasets/{locked.id}"


def delete_files(prefix: str) -> None:
    get_storage().delete_prefix(prefix)


def options_of(dataset: Dataset) -> DatasetOptions:
    return DatasetOptions.model_validate(dataset.options or {})


async def set_options(session: AsyncSession, *, dataset: Dataset, options: DatasetOptions) -> Dataset:
    drafts.ensure_draft(dataset)
    await check_action_attribute(session, dataset=dataset, options=options)
    dataset.options = options.model_dump()
    await session.flush()
    return dataset


def estimate_frames(video: Video, options: DatasetOptions) -> tuple[int, bool]:
    """Frames to deliver: exact for every frame / every Nth, an upper bound for near-duplicate removal."""
    total = video.frame_count or 0
    if options.sampling.mode == "every_n":
        return math.ceil(total / options.sampling.every_n), True
    return total, options.sampling.mode == "all"


async def quote(session: AsyncSession, *, dataset: Dataset, options: DatasetOptions | None = None) -> Quote:
    """Itemised price from the current price list. Quantities are upper bounds, so the final
    charge (from the actual quantities, same price-list version) never exceeds it."""
    options = options or options_of(dataset)
    video = await session.get(Video, dataset.video_id)
    frames, exact = estimate_frames(video, options)
    seeds = await drafts.seeds_for_engine(session, dataset_id=dataset.id)
    objects = len({o["track_id"] for objs in seeds.values() for o in objs if not o.get("gone")})
    review = review_count(options.review_budget, frames)
    qc = len(qc_frames(range(review), options.double_review_share))  # at most: QC needs two reviewers
    attribute_frames = attribute_check_count(review, options.review_attribute_share) if any(
        s.mutable for s in await drafts.attribute_specs(session, dataset_id=dataset.id)) else 0
    previewed = _previewed_object_frames(dataset, seeds, options, video)
    object_frames = objects * frames if previewed is None else min(previewed, objects * frames)
    price_list = await billing_service.current_price_list(session)
    priced = billing_service.price(price_list, frames=frames, object_frames=object_frames, review_frames=review,
                                   qc_frames=qc)
    return Quote(frames=frames, frames_exact=exact, objects=objects, object_frames=object_frames,
                 review_frames=review, qc_frames=qc, attribute_frames=attribute_frames, from_preview=previewed is not None,
                 **priced)


def _previewed_object_frames(dataset: Dataset, seeds: dict, options: DatasetOptions, video: Video) -> int | None:
    """Object-frames where the stored preview of these very keyframes has the objects present
    (on the frames the sampling keeps); None without such a preview. The charge never exceeds
    the quote, so a preview that misses an object only lowers the price."""
    import json

    from src.datasets import preview

    key = preview.preview_key(seeds, budget=options.review_budget, engine=preview.engine_id())
    storage = get_storage()
    if not objects_in(seeds) or not storage.exists(preview.store_key(dataset.id, key)):
        return None
    with storage.open(preview.store_key(dataset.id, key)) as f:
        doc = json.load(f)
    step = options.sampling.every_n if options.sampling.mode == "every_n" else 1
    return sum(1 for t in doc["tracks"] for i, box in enumerate(t["boxes"]) if box is not None and i % step == 0)


def objects_in(seeds: dict) -> bool:
    return any(not o.get("gone") for objs in seeds.values() for o in objs)


async def confirm(
    session: AsyncSession, redis, *, dataset: Dataset, options: DatasetOptions | None = None,
    expected_total_cents: int | None = None,
) -> Dataset:
    """Check quota and balance, reserve the quote and queue the dataset (the job is enqueued
    once the transaction has committed). A dataset already past draft is returned as it is,
    so a double click does not reserve or enqueue twice."""
    locked = await session.get(Dataset, dataset.id, with_for_update=True, populate_existing=True)
    if locked.state != DatasetState.draft:
        return locked
    if options is not None:
        locked.options = options.model_dump()
    await drafts.check_ready_to_create(session, dataset=locked)
    check_backend(options_of(locked))
    await check_action_attribute(session, dataset=locked, options=options_of(locked))
    priced = await quote(session, dataset=locked)
    if expected_total_cents is not None and expected_total_cents != priced.total_cents:
        raise PriceChanged("The price changed since the quote you saw; review the new quote and confirm again.")
    await quota_service.check_dataset_confirm(session, user_id=locked.owner_id, frames=priced.frames, usage=usage)
    await billing_service.reserve(session, user_id=locked.owner_id, dataset_id=locked.id, amount_cents=priced.total_cents)
    locked.options = options_of(locked).model_dump()
    locked.quote = priced.model_dump()
    locked.quoted_cents = priced.total_cents
    locked.state = DatasetState.queued
    locked.confirmed_at = utcnow()
    locked.progress = {"stage": "queued", "percent": 0}
    locked.error = None
    await session.flush()
    enqueue(session, redis, locked)
    return locked


async def check_action_attribute(session: AsyncSession, *, dataset: Dataset, options: DatasetOptions) -> None:
    """`ava_action_attribute`, when set, names a one-of or several-of attribute of the draft
    (its values become the AVA actions); InvalidOptions says what is wrong otherwise."""
    name = options.ava_action_attribute
    if name is None:
        return
    specs = await drafts.attribute_specs(session, dataset_id=dataset.id)
    lists = [s for s in specs if s.kind in ("select", "multi")]
    if not any(s.name == name for s in lists):
        other = next((s for s in specs if s.name == name), None)
        known = ", ".join(f"{s.name} ({s.class_name})" for s in lists) or "none yet"
        if other is not None:
            raise InvalidOptions(
                f"The AVA action attribute must be a one-of or several-of list; '{name}' of {other.class_name} is a "
                f"{other.kind} attribute (list attributes: {known}).")
        raise InvalidOptions(f"The AVA action attribute '{name}' is not an attribute of this draft's classes "
                             f"(list attributes: {known}).")


def review_backends() -> list[str]:
    """The review backends this instance can run: CVAT only when it is configured."""
    from src.config import get_settings

    return ["builtin", "cvat"] if get_settings().cvat_url else ["builtin"]


def check_backend(options: DatasetOptions) -> None:
    if options.review_budget > 0 and options.review_backend not in review_backends():
        raise InvalidOptions("CVAT is not configured on this instance: choose the built-in review page.")
    if options.review_by == "me" and options.review_backend != "builtin":
        raise InvalidOptions("Reviewing your own dataset is done on the built-in review page: choose it, or the team.")


async def quote_warnings(session: AsyncSession, *, dataset: Dataset) -> list[str]:
    """Sentences for the quote: classes with tracks that never share a keyframe (likely one
    object drawn twice as two tracks)."""
    seeds = await drafts.seeds_for_engine(session, dataset_id=dataset.id)
    frames_of: dict[tuple[str, int], set[int]] = {}
    for frame, objects in seeds.items():
        for o in objects:
            if not o.get("gone"):
                frames_of.setdefault((o["class"], o["track_id"]), set()).add(frame)
    warnings = []
    for name in sorted({c for c, _ in frames_of}):
        tracks = sorted((min(f), max(f), t) for (c, t), f in frames_of.items() if c == name)
        if len(tracks) > 1 and all(a[1] < b[0] for a, b in zip(tracks, tracks[1:])):
            ids = ", ".join(f"#{t}" for *_, t in tracks)
            warnings.append(f"The {name} tracks {ids} are never on the same keyframe: if they are one object, "
                            "draw it over its ghost box in the editor so it stays one track.")
    return warnings


def enqueue(session: AsyncSession, redis, dataset: Dataset) -> None:
    """Enqueue the build job once the transaction has committed (the job must see the row).
    The dataset is handed to that job id (any earlier run's token is void: see runs.claim)."""
    name, key = str(dataset.id), job_id(dataset.id, dataset.attempts)
    dataset.run_job_id, dataset.run_token = key, None
    on_commit(session, lambda: redis.enqueue_job("build_dataset", name, _job_id=key))


async def enter_review(session: AsyncSession, redis, *, dataset: Dataset, frames: int, percent: float) -> None:
    """The job opened the dataset's review (in this transaction) and lets go of it: in review
    until the review's end resumes it (`resume_after_review` enqueues the run that claims it
    afresh); `dataset.needs_review` webhooks after the commit."""
    dataset.state = DatasetState.in_review
    dataset.progress = {"stage": "in_review", "percent": percent, "frames_total": frames}
    dataset.heartbeat_at, dataset.run_job_id, dataset.run_token = utcnow(), None, None
    await webhook_service.emit_dataset(session, redis, dataset=dataset, event=WebhookEvent.dataset_needs_review)


def resume_job_id(dataset_id: uuid.UUID) -> str:
    """The job that resumes a dataset after its review."""
    return f"dataset:{dataset_id}:review"


async def resume_after_review(session: AsyncSession, redis, *, dataset_id: uuid.UUID) -> bool:
    """The dataset's review is over (every job accepted): the dataset goes on to build, and the
    run that re-propagates with the corrections and builds is enqueued once this transaction
    commits (it claims the dataset afresh). False when the dataset is no longer in review
    (cancelled meanwhile)."""
    dataset = await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True)
    if dataset is None or dataset.state != DatasetState.in_review:
        return False
    dataset.state = DatasetState.building
    dataset.progress = {"stage": "building", "percent": 75}
    await session.flush()
    key = resume_job_id(dataset_id)
    on_commit(session, lambda: redis.enqueue_job("build_dataset", str(dataset_id), _job_id=key))
    return True


async def settle_ready(
    session: AsyncSession, redis, *, dataset: Dataset, frames: int, object_frames: int, review_frames: int,
    qc_reviewed: int, size_bytes: int, splits: dict[str, int],
) -> None:
    """Charge the actual quantities at the quote's price list and mark the dataset ready, in
    the caller's transaction (billing.settle is idempotent besides); `dataset.ready` webhooks
    after the commit."""
    version = (dataset.quote or {}).get("price_list_version")
    price_list = await billing_service.get_price_list(session, version=version) if version else None
    price_list = price_list or await billing_service.current_price_list(session)
    final = billing_service.price(price_list, frames=frames, object_frames=object_frames,
                                  review_frames=review_frames, qc_frames=qc_reviewed)
    dataset.charged_cents = await billing_service.settle(session, dataset_id=dataset.id, final_cents=final["total_cents"])
    dataset.delivered_frames, dataset.size_bytes = frames, size_bytes
    dataset.state, dataset.finished_at = DatasetState.ready, utcnow()
    dataset.progress = {"stage": "ready", "percent": 100, "splits": splits}
    await webhook_service.emit_dataset(session, redis, dataset=dataset, event=WebhookEvent.dataset_ready)


async def cancel(session: AsyncSession, redis=None, *, dataset_id: uuid.UUID) -> Dataset:
    """Cancel until building starts; the reservation is released. Cancelling twice is harmless."""
    dataset = await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True)
    if dataset.state == DatasetState.cancelled:
        return dataset
    if dataset.state not in CANCELLABLE:
        raise DatasetNotReady(f"A dataset that is {dataset.state.value} can no longer be cancelled.")
    dataset.state = DatasetState.cancelled
    dataset.finished_at = utcnow()
    dataset.progress = {**(dataset.progress or {}), "stage": "cancelled"}
    await billing_service.release(session, dataset_id=dataset.id)
    await session.flush()
    return dataset


async def retry(session: AsyncSession, redis, *, dataset_id: uuid.UUID) -> Dataset:
    """Queue a failed dataset again (reserving its quote again)."""
    dataset = await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True)
    if dataset.state != DatasetState.failed:
        raise DatasetNotReady(f"Only failed datasets can be retried; this one is {dataset.state.value}.")
    await billing_service.reserve(session, user_id=dataset.owner_id, dataset_id=dataset.id, amount_cents=dataset.quoted_cents or 0)
    dataset.state, dataset.error, dataset.finished_at = DatasetState.queued, None, None
    dataset.attempts += 1  # a fresh job id: arq keeps the failed job's result under the old one
    dataset.progress = {"stage": "queued", "percent": 0}
    await session.flush()
    if redis is not None:
        enqueue(session, redis, dataset)
    return dataset


async def fail(session: AsyncSession, *, dataset_id: uuid.UUID, message: str, redis=None) -> None:
    """Mark failed with a message the user understands; release the reservation; announce it
    (`dataset.failed` webhooks, sent after the commit when `redis` is given)."""
    dataset = await session.get(Dataset, dataset_id, with_for_update=True, populate_existing=True)
    if dataset is None or dataset.state in (DatasetState.ready, DatasetState.cancelled, DatasetState.failed):
        return
    dataset.state, dataset.error, dataset.finished_at = DatasetState.failed, message, utcnow()
    dataset.progress = {**(dataset.progress or {}), "stage": "failed"}
    await billing_service.release(session, dataset_id=dataset.id)
    await session.flush()
    await webhook_service.emit_dataset(session, redis, dataset=dataset, event=WebhookEvent.dataset_failed)


def downloads(dataset: Dataset) -> dict[str, str]:
    if dataset.state != DatasetState.ready:
        return {}
    formats = (dataset.options or {}).get("formats", [])
    return {fmt: f"/api/v1/datasets/{dataset.id}/download?format={fmt}" for fmt in formats}


async def to_read(session: AsyncSession, *, dataset: Dataset) -> DatasetRead:
    draft = await drafts.read_draft(session, dataset=dataset)
    return DatasetRead(
        **draft.model_dump(exclude={"state"}), state=dataset.state,
        options=dataset.options or {}, quote=dataset.quote, quoted_cents=dataset.quoted_cents,
        charged_cents=dataset.charged_cents, delivered_frames=dataset.delivered_frames,
        progress=Progress.model_validate(dataset.progress or {}), error=dataset.error,
        created_at=dataset.created_at, confirmed_at=dataset.confirmed_at, finished_at=dataset.finished_at,
        downloads=downloads(dataset),
    )


def download_key(dataset: Dataset, fmt: str) -> str:
    """The stored key of the dataset's zip in `fmt` (the route answers it from the store)."""
    if fmt not in FORMAT_NAMES:
        raise InvalidOptions(f"Unknown format {fmt!r}; choose one of {', '.join(FORMAT_NAMES)}.")
    if dataset.state != DatasetState.ready:
        raise DatasetNotReady("The dataset is not ready yet.")
    storage = get_storage()
    key = zip_key(dataset.id, fmt)
    if not storage.exists(key):
        raise DownloadNotFound(f"This dataset was not exported as {FORMAT_NAMES[fmt]}.")
    return key


def read_artifact(dataset: Dataset, name: str) -> Any | None:
    import json

    storage = get_storage()
    key = artifact_key(dataset.id, name)
    if not storage.exists(key):
        return None
    with storage.open(key) as f:
        return json.load(f)
