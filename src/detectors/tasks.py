"""arq jobs: validate an uploaded model, train one from ready datasets; and the model's
part of a dataset job (detections over the video -> disagreement scores for hard frames)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from src.datasets import service as dataset_service
from src.datasets.models import Dataset
from src.datasets.ports import ModelApplied
from src.detectors import inference, master, service, steps, training
from src.detectors.exceptions import InvalidModel, OfflineDownload
from src.detectors.models import Detector, DetectorEvaluation, DetectorState, MasterDataset
from src.storage import get_storage
from src.jobs import job_session, run_cpu

log = logging.getLogger("forge.detectors")


async def validate_detector(ctx: dict, detector_id: str) -> str:
    """Load the uploaded file and run it on one frame: `validating -> ready | invalid`."""
    did = uuid.UUID(detector_id)
    async with job_session(ctx) as session:
        detector = await session.get(Detector, did)
        if detector is None or detector.state != DetectorState.validating:
            return "skipped"
        key, kind, classes = detector.storage_key, detector.kind.value, detector.classes
    try:
        path = str(await asyncio.to_thread(get_storage().local_path, key))  # this worker's copy of the store
        info = await run_cpu(ctx, inference.validate, path, kind, classes)
    except (InvalidModel, OfflineDownload) as error:
        message = error.message if isinstance(error, InvalidModel) else str(error)
        async with job_session(ctx) as session:
            detector = await session.get(Detector, did, with_for_update=True)
            if detector is not None:
                detector.state, detector.error = DetectorState.invalid, message
        return "invalid"
    async with job_session(ctx) as session:
        detector = await session.get(Detector, did, with_for_update=True)
        if detector is None:
            return "deleted"
        service.mark_ready(detector, classes=info.classes, imgsz=info.imgsz)
    return "ready"


def _predict_from_store(model_key: str, kind: str, classes: list[str], imgsz: int | None,
                        video_key: str, frame: int, conf: float) -> list:
    storage = get_storage()  # the model and the video from this worker's copy (docs/storage.md)
    return steps.predict_frame(str(storage.local_path(model_key)), kind, classes, imgsz,
                               str(storage.local_path(video_key)), frame, conf)


async def predict_frame(ctx: dict, model_key: str, kind: str, classes: list[str], imgsz: int | None,
                        video_key: str, frame: int, conf: float) -> dict[str, Any]:
    """The editor's Suggest boxes: `{"boxes": [...]}` or `{"error": message}`.

    Runs on the worker's interactive thread, not in the process pool: a click waits for one
    frame, never behind a long propagation, and the model stays loaded between clicks. The
    model and the video come as storage keys: the web and the worker may share no disk."""
    loop = asyncio.get_running_loop()
    try:
        boxes = await loop.run_in_executor(ctx["interactive"], _predict_from_store, model_key, kind, classes,
                                           imgsz, video_key, frame, conf)
    except InvalidModel as error:
        return {"error": error.message}
    except (OfflineDownload, IndexError) as error:
        return {"error": str(error)}
    return {"boxes": boxes}


async def _set_progress(ctx: dict, detector_id: uuid.UUID, progress: dict[str, Any]) -> None:
    async with job_session(ctx) as session:
        detector = await session.get(Detector, detector_id, with_for_update=True, populate_existing=True)
        if detector is not None:
            detector.progress = progress


async def _poll(ctx: dict, detector_id: uuid.UUID, fn, *args, stage: str, lo: float, hi: float, **kwargs) -> Any:
    """Run `fn(*args, progress_path)` in the pool, mirroring its progress JSON into the row each second."""
    progress_path = get_storage().temp_file(".progress.json")
    await _set_progress(ctx, detector_id, {"stage": stage, "percent": lo})
    future = asyncio.ensure_future(run_cpu(ctx, fn, *args, progress_path=str(progress_path), **kwargs))
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=1.0)
            try:
                report = json.loads(progress_path.read_text() or "{}")
            except (FileNotFoundError, ValueError):
                report = {}
            if report:  # mirrored once more when done, so a fast run's last report is kept
                share = float(report.get("percent", 0)) / 100
                await _set_progress(ctx, detector_id, {**report, "stage": stage,
                                                       "percent": round(lo + (hi - lo) * share, 1)})
            if done:
                return future.result()
    finally:
        progress_path.unlink(missing_ok=True)


async def train_detector(ctx: dict, detector_id: str) -> str:
    """Merge the datasets into the next master version, train, register the weights and metrics."""
    did = uuid.UUID(detector_id)
    storage = get_storage()
    async with job_session(ctx) as session:
        detector = await session.get(Detector, did)
        if detector is None or detector.state != DetectorState.training:
            return "skipped"
        options = dict(detector.training or {})
        source_keys = []
        for dataset_id in options["dataset_ids"]:
            dataset = await session.get(Dataset, uuid.UUID(dataset_id))
            if dataset is None:
                continue
            source_keys.append((str(dataset.id), str(dataset.video_id), dataset_service.zip_key(dataset.id, "yolo")))
        base, base_key = options["base"], None
        if not training.ARCHITECTURE.match(base):
            base_model = await session.get(Detector, uuid.UUID(base))
            base, base_key = "", (base_model.storage_key if base_model and base_model.storage_key else None)
        the_master = await service.new_master(session, owner_id=detector.owner_id, dataset_ids=options["dataset_ids"])
        master_id = the_master.id
        detector.master_id = master_id
    the_master_key = service.master_key(master_id)
    run_dir = storage.temp_file(".train")
    run_dir.unlink()
    build_dir = storage.temp_file(".master")
    build_dir.unlink()
    try:
        # Files come from this worker's copy of the store (fetched off the event loop), and the
        # merged master version goes back into the store as a folder: another worker may train next.
        sources = [master.Source(d, v, str(await asyncio.to_thread(storage.local_path, key)))
                   for d, v, key in source_keys]
        if base_key is not None:
            base = str(await asyncio.to_thread(storage.local_path, base_key))
        if not base:
            raise InvalidModel("The base model was deleted.")
        if not await asyncio.to_thread(storage.exists, f"{the_master_key}/data.yaml"):
            stats = await _poll(ctx, did, steps.merge, sources, str(build_dir), stage="merging", lo=0, hi=5)
            await asyncio.to_thread(storage.put_dir, the_master_key, build_dir)
            async with job_session(ctx) as session:
                row = await session.get(MasterDataset, master_id, with_for_update=True)
                row.classes, row.stats = stats["classes"], stats
        master_dir = await asyncio.to_thread(storage.local_dir, the_master_key)
        result = await _poll(ctx, did, training.train, str(master_dir / "data.yaml"), base, str(run_dir),
                             epochs=int(options["epochs"]), imgsz=int(options["imgsz"]), stage="training", lo=5, hi=100)
    except (InvalidModel, OfflineDownload, ValueError, FileNotFoundError) as error:
        message = error.message if isinstance(error, InvalidModel) else str(error)
        await _fail(ctx, did, f"Training failed: {message}")
        return "failed"
    except Exception as error:  # noqa: BLE001 - reported on the model page, logged in full
        log.exception("model %s: training failed", did)
        await _fail(ctx, did, f"Training failed ({error.__class__.__name__}: {str(error)[:300]}).")
        return "failed"
    try:
        async with job_session(ctx) as session:
            detector = await session.get(Detector, did, with_for_update=True, populate_existing=True)
            if detector is None:
                return "deleted"
            service.copy_weights(Path(result["weights"]), detector)
            service.mark_ready(detector, classes=result["classes"], imgsz=int(options["imgsz"]))
            detector.training = {**options, "device": result["device"]}
            detector.progress = {**(detector.progress or {}), "stage": "ready", "percent": 100}
            row = await session.get(MasterDataset, master_id)
            split = _split_of(row)
            await _store_evaluation(session, did, master_id, split, result["metrics"])
            await service.evaluate_others(session, ctx["redis"], the_master=row, trained_id=did)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(build_dir, ignore_errors=True)
    return "ready"


def _split_of(the_master: MasterDataset) -> str:
    return "val" if (the_master.stats or {}).get("val_split", "val") == "val" else "train"


async def _store_evaluation(session, detector_id: uuid.UUID, master_id: uuid.UUID, split: str,
                            metrics: dict[str, float]) -> None:
    """Insert or replace the (model, master version) metrics row."""
    await session.execute(delete(DetectorEvaluation).where(DetectorEvaluation.detector_id == detector_id,
                                                          DetectorEvaluation.master_id == master_id))
    session.add(DetectorEvaluation(detector_id=detector_id, master_id=master_id, split=split, **metrics))


async def evaluate_detector(ctx: dict, detector_id: str, master_id: str) -> str:
    """A ready model's metrics on a master version's valid split (classes mapped by name)."""
    did, mid = uuid.UUID(detector_id), uuid.UUID(master_id)
    storage = get_storage()
    async with job_session(ctx) as session:
        detector = await session.get(Detector, did)
        the_master = await session.get(MasterDataset, mid)
        if detector is None or the_master is None or detector.state != DetectorState.ready or not detector.storage_key:
            return "skipped"
        if not service.common_classes(detector.classes, the_master.classes):
            log.info("model %s: no class in common with master v%s, not evaluated", did, the_master.version)
            return "no common class"
        model_key, kind, classes, imgsz = detector.storage_key, detector.kind.value, list(detector.classes), detector.imgsz
        split = _split_of(the_master)
    work_dir = storage.temp_file(".eval")
    work_dir.unlink()
    try:
        args = (str(await asyncio.to_thread(storage.local_path, model_key)), kind, classes, imgsz,
                str(await asyncio.to_thread(storage.local_dir, service.master_key(mid))), split)
        metrics = await run_cpu(ctx, steps.evaluate, *args, str(work_dir))
    except (InvalidModel, OfflineDownload, FileNotFoundError, ValueError) as error:
        log.warning("model %s on master %s: evaluation failed: %s", did, mid, error)
        return "failed"
    async with job_session(ctx) as session:
        if await session.get(Detector, did) is None:
            return "deleted"
        await _store_evaluation(session, did, mid, split, metrics)
    return "evaluated"


async def _fail(ctx: dict, detector_id: uuid.UUID, message: str) -> None:
    async with job_session(ctx) as session:
        detector = await session.get(Detector, detector_id, with_for_update=True, populate_existing=True)
        if detector is not None:
            detector.state, detector.error = DetectorState.failed, message


# ---------------------------------------------------------------- the dataset job's model step

def detections_key(dataset_id: uuid.UUID, model_id: uuid.UUID) -> str:
    return dataset_service.artifact_key(dataset_id, f"detections-{model_id}.npz")


async def _detections(ctx: dict, *, dataset: Dataset, model_id: uuid.UUID, video_path: str):
    """The model's tracked detections over the video: run once, kept with the dataset so the build
    after the review fuses the same detections (even if the model was deleted meanwhile)."""
    from src.auth.models import User
    from src.exceptions import DomainError

    storage = get_storage()
    key = detections_key(dataset.id, model_id)
    if await asyncio.to_thread(storage.exists, key):
        return await run_cpu(ctx, steps.load_detections, str(await asyncio.to_thread(storage.local_path, key)))
    async with job_session(ctx) as session:
        user = await session.get(User, dataset.owner_id)
        try:
            detector = await service.get_ready_for_user(session, detector_id=model_id, user=user)
        except DomainError as error:  # the dataset job reports ValueErrors to the user
            raise ValueError(f"the model chosen for this dataset cannot be used ({error.message})") from error
        model_key = detector.storage_key
        kind, model_classes, imgsz = detector.kind.value, list(detector.classes), detector.imgsz
    model_path = str(await asyncio.to_thread(storage.local_path, model_key))
    started = time.monotonic()
    detections = await run_cpu(ctx, steps.run_detections, model_path, kind, model_classes, imgsz, video_path)
    temp = storage.temp_file(".npz")
    await run_cpu(ctx, steps.save_detections, detections, str(temp))
    await asyncio.to_thread(storage.put_file, key, temp)
    log.info("dataset %s: model %s ran over %d frames in %.1fs", dataset.id, model_id, detections.boxes.shape[0],
             time.monotonic() - started)
    return detections


async def apply_model(ctx: dict, *, dataset: Dataset, video_path: str, result, classes: list[str],
                      rank: bool) -> ModelApplied:
    """The dataset's `model_id` option (src.datasets.ports.ModelRunner; the worker plugs it into
    the dataset job): the fused result, the disagreement scores per frame or None, the boxes
    filled. The scores compare the detector with the unfused tracks (only when `rank` and the
    dataset has a review budget); the fused result is what reviewers see and what is exported."""
    options = dataset_service.options_of(dataset)
    model_id = getattr(options, "model_id", None)
    if model_id is None:
        return ModelApplied(result, None, 0)
    detections = await _detections(ctx, dataset=dataset, model_id=model_id, video_path=video_path)
    scores = None
    if rank and options.review_budget > 0:
        async with job_session(ctx) as session:
            counts = await service.class_counts(session, owner_id=dataset.owner_id)
        scores = await run_cpu(ctx, steps.model_scores, detections, result.tracks, classes, counts)
    fused, filled = await run_cpu(ctx, steps.fuse_result, result, detections, classes)
    log.info("dataset %s: model %s filled %d boxes of lost or hesitant tracks", dataset.id, model_id, filled)
    return ModelApplied(fused, scores, filled)
