"""Detector models: upload + validation, training from ready datasets, one-frame predictions,
evaluations per master dataset version. Files live under `detectors/<id>/model.<kind>` and
`masters/<id>/`; the heavy work happens in the worker (tasks.py) or a thread (predict)."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import UploadFile
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from src import pagination
from src.auth.models import Role, User
from src.config import get_settings
from src.database import on_commit, utcnow
from src.datasets import service as dataset_service
from src.datasets.models import Dataset, DatasetState
from src.datasets.ports import ModelChoice
from src.detectors import extras
from src.detectors.exceptions import (DetectorNotFound, InvalidModel, InvalidTraining, ModelNotReady,
                                      WorkerUnavailable)
from src.detectors.master import common_classes
from src.detectors.models import Detector, DetectorEvaluation, DetectorKind, DetectorState, MasterDataset
from src.detectors.schemas import PredictRequest, TrainRequest
from src.detectors.training import ARCHITECTURE
from src.exceptions import Forbidden, PayloadTooLarge
from src.pagination import PageParams
from src.storage import get_storage
from src.units import human_bytes

MAX_MODEL_BYTES = 512_000_000  # 512 MB (decimal, as every size in Data Forge: src/units.py)
MAX_CLASSES = 1000


def model_key(detector: Detector) -> str:
    return f"detectors/{detector.id}/model.{detector.kind.value}"


def master_key(master_id: uuid.UUID) -> str:
    return f"masters/{master_id}"


def parse_classes(raw: str | None) -> list[str]:
    """`a, b, c` or `["a", "b"]` -> unique stripped names (may be empty: the model's own names)."""
    raw = (raw or "").strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            values = json.loads(raw)
        except ValueError as error:
            raise InvalidModel("classes: not valid JSON; send a JSON list of names or comma-separated names.") from error
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidModel("classes: a JSON list of strings is expected.")
    else:
        values = raw.split(",")
    names = [v.strip() for v in values]
    if any(not n or len(n) > 100 for n in names):
        raise InvalidModel("classes: every class name must be 1 to 100 characters.")
    if any("\x00" in n for n in names):
        raise InvalidModel("classes: class names must not contain NUL characters.")
    if len(set(names)) != len(names):
        raise InvalidModel("classes: class names must be unique.")
    if len(names) > MAX_CLASSES:
        raise InvalidModel(f"classes: at most {MAX_CLASSES} classes.")
    return names


def kind_of(filename: str | None, head: bytes) -> DetectorKind:
    """The model kind from the extension, refusing files whose first bytes cannot be that kind."""
    name = (filename or "").lower()
    if name.endswith(".pt"):
        # torch.save writes a zip (PK) or, in the legacy format, a pickle (0x80 protocol byte)
        if not (head.startswith(b"PK") or head[:1] == b"\x80"):
            raise InvalidModel("This .pt file is not a PyTorch checkpoint (it is not a torch.save zip or pickle). "
                               "Upload the best.pt / last.pt written by ultralytics training.")
        return DetectorKind.pt
    if name.endswith(".onnx"):
        if head[:1] != b"\x08":  # an ONNX ModelProto starts with field 1 (ir_version), varint
            raise InvalidModel("This .onnx file is not an ONNX model. Export one with `yolo export format=onnx`.")
        return DetectorKind.onnx
    raise InvalidModel("Upload an ultralytics detector: a .pt checkpoint or an .onnx export.")


async def upload(
    session: AsyncSession, redis, *, user: User, file: UploadFile, name: str, classes: str | None, shared: bool = False,
) -> Detector:
    """Store the file as a `validating` model and enqueue its validation (job `validate-model:<id>`)."""
    extras.require()
    if shared and user.role != Role.admin:
        raise Forbidden("Only administrators can share a model with everyone.")
    if "\x00" in (name or "") + (file.filename or ""):  # multipart fields skip the middleware's check
        raise InvalidModel("The model name must not contain NUL characters.")
    name = (name or "").strip()[:200] or (file.filename or "model")
    names = parse_classes(classes)
    head = await file.read(16)
    kind = kind_of(file.filename, head)
    await file.seek(0)
    storage = get_storage()
    temp = storage.temp_file(f".{kind.value}")
    size = 0
    try:
        with temp.open("wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > MAX_MODEL_BYTES:
                    raise PayloadTooLarge(f"Model files are limited to {human_bytes(MAX_MODEL_BYTES)}.")
                out.write(chunk)
        detector = Detector(owner_id=user.id, name=name, kind=kind, classes=names, shared=shared,
                            state=DetectorState.validating, progress={})
        session.add(detector)
        await session.flush()
        detector.storage_key = model_key(detector)
        await asyncio.to_thread(storage.put_file, detector.storage_key, temp)  # an upload when the store is S3
        await session.flush()
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    on_commit(session, lambda: redis.enqueue_job("validate_detector", str(detector.id), _job_id=f"validate-model:{detector.id}"))
    return detector



async def get_for_user(session: AsyncSession, *, detector_id: uuid.UUID, user: User) -> Detector:
    """The model if the user owns it, it is shared, or the user is an admin; 404 otherwise."""
    detector = await session.get(Detector, detector_id)
    if detector is None or not (detector.owner_id == user.id or detector.shared or user.role == Role.admin):
        raise DetectorNotFound()
    return detector


async def get_ready_for_user(session: AsyncSession, *, detector_id: uuid.UUID, user: User) -> Detector:
    detector = await get_for_user(session, detector_id=detector_id, user=user)
    if detector.state != DetectorState.ready or detector.storage_key is None:
        raise ModelNotReady()
    return detector


async def list_for_user(session: AsyncSession, *, user: User) -> list[Detector]:
    query = select(Detector).where(or_(Detector.owner_id == user.id, Detector.shared.is_(True)))
    return list((await session.scalars(query.order_by(Detector.created_at.desc()))).all())


async def model_choices(session: AsyncSession, *, user: User) -> list[ModelChoice]:
    """The ready models `user` may apply to a dataset (src.datasets.ports.ModelChoices: the
    dataset create page's list)."""
    return [ModelChoice(d.id, d.name) for d in await list_for_user(session, user=user) if d.state == DetectorState.ready]


async def search_for_user(
    session: AsyncSession, *, user: User, page: PageParams, state: DetectorState | None = None, q: str | None = None,
) -> tuple[list[Detector], int]:
    """A page of the models I may use (mine and shared ones, newest first), by state and part of the name."""
    query = select(Detector).where(or_(Detector.owner_id == user.id, Detector.shared.is_(True)))
    if state is not None:
        query = query.where(Detector.state == state)
    if q:
        query = query.where(pagination.contains(Detector.name, q))
    return await pagination.fetch(session, query.order_by(Detector.created_at.desc(), Detector.id), page)


async def has_ready_models(session: AsyncSession, *, user: User) -> bool:
    query = select(Detector.id).where(or_(Detector.owner_id == user.id, Detector.shared.is_(True)),
                                      Detector.state == DetectorState.ready).limit(1)
    return (await session.scalar(query)) is not None


async def delete(session: AsyncSession, *, detector: Detector, user: User) -> str:
    """Delete a model (owner or admin); returns the storage prefix to remove after the commit."""
    if detector.owner_id != user.id and user.role != Role.admin:
        raise DetectorNotFound()
    if detector.state == DetectorState.training:
        raise ModelNotReady("This model is still training; wait for it to finish.")
    await session.delete(detector)
    await session.flush()
    return f"detectors/{detector.id}"


def delete_files(prefix: str) -> None:
    get_storage().delete_prefix(prefix)


# ---------------------------------------------------------------- training

async def request_training(session: AsyncSession, redis, *, user: User, body: TrainRequest) -> Detector:
    """Check the datasets and base, create a `training` model and enqueue `train:<id>`."""
    extras.require()
    if body.imgsz % 32:
        raise InvalidTraining("imgsz must be a multiple of 32 (e.g. 320, 640).")
    datasets = []
    for dataset_id in dict.fromkeys(body.dataset_ids):
        dataset = await session.get(Dataset, dataset_id)
        if dataset is None or (dataset.owner_id != user.id and user.role != Role.admin):
            raise DetectorNotFound(f"Dataset {dataset_id} not found.")
        if dataset.state != DatasetState.ready or not get_storage().exists(dataset_service.zip_key(dataset.id, "yolo")):
            raise InvalidTraining(f"Dataset '{dataset.name}' is not ready with a YOLO export; only ready datasets "
                                  "made with the yolo format can be trained on.")
        datasets.append(dataset)
    base = body.base.strip()
    if not ARCHITECTURE.match(base):
        try:
            base_id = uuid.UUID(base)
        except ValueError as error:
            raise InvalidTraining("base must be an architecture yaml such as yolov8n.yaml or yolo11n.yaml, or the id "
                                  "of one of your ready .pt models (pretrained weights are not downloaded).") from error
        base_model = await get_ready_for_user(session, detector_id=base_id, user=user)
        if base_model.kind != DetectorKind.pt:
            raise InvalidTraining("Only a .pt checkpoint can be the base of a training; ONNX exports cannot be trained.")
        base = str(base_model.id)
    detector = Detector(
        owner_id=user.id, name=body.name.strip(), kind=DetectorKind.pt, state=DetectorState.training, classes=[],
        training={"dataset_ids": [str(d.id) for d in datasets], "epochs": body.epochs, "imgsz": body.imgsz,
                  "base": base},
        progress={"stage": "queued", "percent": 0}, imgsz=body.imgsz,
    )
    session.add(detector)
    await session.flush()
    on_commit(session, lambda: redis.enqueue_job("train_detector", str(detector.id), _job_id=f"train:{detector.id}"))
    return detector


async def new_master(session: AsyncSession, *, owner_id: uuid.UUID, dataset_ids: list[str]) -> MasterDataset:
    """The next master dataset version of this owner (reused when the same datasets were merged last)."""
    last = await session.scalar(select(MasterDataset).where(MasterDataset.owner_id == owner_id)
                                .order_by(MasterDataset.version.desc()).limit(1).with_for_update())
    if last is not None and sorted(last.dataset_ids) == sorted(dataset_ids) and \
            get_storage().exists(f"{master_key(last.id)}/data.yaml"):
        return last
    master = MasterDataset(owner_id=owner_id, version=(last.version + 1) if last else 1, dataset_ids=dataset_ids)
    session.add(master)
    await session.flush()
    return master


async def class_counts(session: AsyncSession, *, owner_id: uuid.UUID) -> dict[str, int]:
    """Objects per class name over the owner's ready datasets (from their manifests)."""
    counts: dict[str, int] = {}
    datasets = (await session.scalars(select(Dataset).where(Dataset.owner_id == owner_id,
                                                            Dataset.state == DatasetState.ready))).all()
    for dataset in datasets:
        manifest = dataset_service.read_artifact(dataset, "manifest.json") or {}
        names = {c["id"]: c["name"] for c in manifest.get("classes", [])}
        for frame in manifest.get("frames", []):
            for obj in frame.get("objects", []):
                name = obj.get("class") or obj.get("class_name") or names.get(obj.get("class_id"))
                if name:
                    counts[name] = counts.get(name, 0) + 1
    return counts


async def evaluations(session: AsyncSession, *, user: User) -> tuple[list[MasterDataset], dict]:
    """The user's master versions and `{(detector_id, master_id): DetectorEvaluation}`."""
    masters = list((await session.scalars(select(MasterDataset).where(MasterDataset.owner_id == user.id)
                                          .order_by(MasterDataset.version))).all())
    rows = (await session.scalars(select(DetectorEvaluation).where(
        DetectorEvaluation.master_id.in_([m.id for m in masters])))).all() if masters else []
    return masters, {(r.detector_id, r.master_id): r for r in rows}


async def latest_master_version(session: AsyncSession, *, owner_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(MasterDataset.version), 0))
                                    .where(MasterDataset.owner_id == owner_id)))


# ---------------------------------------------------------------- evaluations on other versions

def evaluate_job_id(detector_id: uuid.UUID, master_id: uuid.UUID) -> str:
    return f"evaluate:{detector_id}:{master_id}"


async def request_evaluation(session: AsyncSession, redis, *, detector: Detector, user: User,
                             master_id: uuid.UUID | None = None) -> MasterDataset:
    """Check the model can be measured on a master version of the user's (the latest when none
    is given) and enqueue `evaluate_detector` (job `evaluate:<model>:<master>`)."""
    extras.require()
    if detector.state != DetectorState.ready or detector.storage_key is None:
        raise ModelNotReady()
    if master_id is not None:
        the_master = await session.get(MasterDataset, master_id)
        if the_master is None or the_master.owner_id != user.id:
            raise DetectorNotFound("Master dataset not found.")
    else:
        the_master = await session.scalar(select(MasterDataset).where(MasterDataset.owner_id == user.id)
                                          .order_by(MasterDataset.version.desc()).limit(1))
        if the_master is None:
            raise InvalidTraining("You have no master dataset yet: train a model on your ready datasets first.")
    if not get_storage().exists(f"{master_key(the_master.id)}/data.yaml"):
        raise InvalidTraining(f"Master v{the_master.version} has no files yet (its training is still merging "
                              "or failed).")
    if not common_classes(detector.classes, the_master.classes):
        raise InvalidTraining(f"'{detector.name}' has no class in common with master v{the_master.version} "
                              f"({', '.join(the_master.classes[:10])}); there is nothing to measure.")
    master_id = the_master.id
    on_commit(session, lambda: redis.enqueue_job("evaluate_detector", str(detector.id), str(master_id),
                                                 _job_id=evaluate_job_id(detector.id, master_id)))
    return the_master


async def evaluate_others(session: AsyncSession, redis, *, the_master: MasterDataset,
                          trained_id: uuid.UUID) -> list[uuid.UUID]:
    """After a training made `the_master`: enqueue the owner's other ready models that share a class
    with it and have no metrics on it yet. Models with no common class are skipped (the /models
    table says "no common class")."""
    done = set((await session.scalars(select(DetectorEvaluation.detector_id)
                                      .where(DetectorEvaluation.master_id == the_master.id))).all())
    others = (await session.scalars(select(Detector).where(
        Detector.owner_id == the_master.owner_id, Detector.state == DetectorState.ready,
        Detector.storage_key.is_not(None), Detector.id != trained_id))).all()
    chosen = [d.id for d in others if d.id not in done and common_classes(d.classes, the_master.classes)]
    master_id = the_master.id

    async def enqueue():
        for detector_id in chosen:
            await redis.enqueue_job("evaluate_detector", str(detector_id), str(master_id),
                                    _job_id=evaluate_job_id(detector_id, master_id))

    on_commit(session, enqueue)
    return chosen


# ---------------------------------------------------------------- predictions

async def predict(session: AsyncSession, redis, *, detector: Detector, user: User,
                  body: PredictRequest) -> dict[str, Any]:
    """The model's boxes on one video frame, class names mapped onto a draft's classes by name.

    The worker runs the model (where the GPU is and the model stays loaded); this waits for it
    up to `predict_timeout_s` and says so when no worker answered."""
    extras.require()
    from src.datasets.draft import service as drafts
    from src.videos import service as video_service

    video = await video_service.get_ready_for_user(session, video_id=body.video_id, user=user)
    if video.frame_count is None or body.frame >= video.frame_count:
        raise InvalidTraining(f"frame must be below {video.frame_count or 0}.")
    draft_classes: list[str] | None = None
    if body.dataset_id is not None:
        dataset = await drafts.get_for_user(session, dataset_id=body.dataset_id, user=user)
        draft_classes = [c.name for c in await drafts.list_classes(session, dataset_id=dataset.id)]
    timeout = get_settings().predict_timeout_s
    await session.commit()  # nothing written: the connection goes back to the pool while the worker runs
    job = await redis.enqueue_job(
        "predict_frame", detector.storage_key, detector.kind.value, detector.classes,  # keys: the worker
        detector.imgsz, video.storage_key, body.frame, body.conf,  # reads them from its own cache of the store
        _expires=timeout)  # a click nobody answered in time is not run later
    try:
        answer = await job.result(timeout=timeout, poll_delay=0.1)
    except asyncio.TimeoutError:
        raise WorkerUnavailable(f"No worker ran the model within {timeout:.0f} s (all busy, or none running); "
                                "try again in a moment.") from None
    if "error" in answer:
        raise InvalidModel(answer["error"])
    lookup = {n.casefold(): n for n in draft_classes} if draft_classes is not None else None
    return {
        "model_id": detector.id, "frame": body.frame, "width": video.width, "height": video.height,
        "boxes": [{"box": b["box"], "model_class": b["class"], "confidence": b["confidence"],
                   "class_name": (lookup.get(b["class"].casefold()) if lookup is not None else b["class"])}
                  for b in answer["boxes"]],
    }


def copy_weights(source: Path, detector: Detector) -> int:
    storage = get_storage()
    temp = storage.temp_file(".pt")
    shutil.copyfile(source, temp)
    detector.storage_key = model_key(detector)
    return storage.put_file(detector.storage_key, temp)


def mark_ready(detector: Detector, *, classes: list[str], imgsz: int | None) -> None:
    detector.state, detector.error, detector.ready_at = DetectorState.ready, None, utcnow()
    detector.classes = classes
    if imgsz:
        detector.imgsz = imgsz
