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


from src.datasets import service as dataset_service
from src.datasets.models import Dataset
from src.detectors import inference, master, service, steps, training
from src.detectors.exceptions import InvalidModel, OfflineDownload
from src.detectors.models import Detector, DetectorEvaluation, DetectorState, MasterDataset
from src.storage import get_storage
from src.worker import job_session, run_cpu

log = logging.getLogger("forge.detectors")


async def validate_detector(ctx: dict, detector_id: str) -> str:
    """Load the uploaded file and run it on one frame: `validating -> ready | invalid`."""
    did = uuid.UUID(detector_id)
    async with job_session(ctx) as session:
        detector = await session.get(Detector, did)
        if detector is None or detector.state != DetectorState.validating:
            return "skipped"
        path, kind, classes = str(get_storage().local_path(detector.storage_key)), detector.kind.value, detector.classes
    try:
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
            if done:
                return future.result()
            try:
                report = json.loads(progress_path.read_text() or "{}")
            except (FileNotFoundError, ValueError):
                report = {}
            if report:
                share = float(report.get("percent", 0)) / 100
                await _set_progress(ctx, detector_id, {**report, "stage": stage,
                                                       "percent": round(lo + (hi - lo) * share, 1)})
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
        sources = []
        for dataset_id in options["dataset_ids"]:
            dataset = await session.get(Dataset, uuid.UUID(dataset_id))
            if dataset is None:
                continue
            sources.append(master.Source(str(dataset.id), str(dataset.video_id),
                                         str(storage.local_path(dataset_service.zip_key(dataset.id, "yolo")))))
        base = options["base"]
        if not training.ARCHITECTURE.match(base):
            base_model = await session.get(Detector, uuid.UUID(base))
            base = str(storage.local_path(base_model.storage_key)) if base_model and base_model.storage_key else ""
        the_master = await service.new_master(session, owner_id=detector.owner_id, dataset_ids=options["dataset_ids"])
        master_id = the_master.id
        detector.master_id = master_id
    master_dir = storage.local_path(service.master_key(master_id))
    run_dir = storage.temp_file(".train")
    run_dir.unlink()
    try:
        if not base:
            raise InvalidModel("The base model was deleted.")
        if not (master_dir / "data.yaml").exists():
            stats = await _poll(ctx, did, steps.merge, sources, str(master_dir), stage="merging", lo=0, hi=5)
            async with job_session(ctx) as session:
                row = await session.get(MasterDataset, master_id, with_for_update=True)
                row.classes, row.stats = stats["classes"], stats
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
            split = "val" if (row.stats or {}).get("val_split", "val") == "val" else "train"
            session.add(DetectorEvaluation(detector_id=did, master_id=master_id, split=split, **result["metrics"]))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return "ready"


async def _fail(ctx: dict, detector_id: uuid.UUID, message: str) -> None:
    async with job_session(ctx) as session:
        detector = await session.get(Detector, detector_id, with_for_update=True, populate_existing=True)
        if detector is not None:
            detector.state, detector.error = DetectorState.failed, message


# ---------------------------------------------------------------- the dataset job's model step

async def model_scores(ctx: dict, *, dataset: Dataset, video_path: str, result, classes: list[str]) -> list[float] | None:
    """The dataset's `model_id` option -> disagreement scores per frame (None when no model is set)."""
    options = dataset_service.options_of(dataset)
    model_id = getattr(options, "model_id", None)
    if model_id is None or options.review_budget <= 0:
        return None
    from src.auth.models import User
    from src.exceptions import DomainError

    async with job_session(ctx) as session:
        user = await session.get(User, dataset.owner_id)
        try:
            detector = await service.get_ready_for_user(session, detector_id=model_id, user=user)
        except DomainError as error:  # the dataset job reports ValueErrors to the user
            raise ValueError(f"the model chosen to rank hard frames cannot be used ({error.message})") from error
        counts = await service.class_counts(session, owner_id=dataset.owner_id)
        model_path = str(get_storage().local_path(detector.storage_key))
        kind, model_classes, imgsz = detector.kind.value, list(detector.classes), detector.imgsz
    started = time.monotonic()
    scores = await run_cpu(ctx, steps.run_model_scores, model_path, kind, model_classes, imgsz, video_path,
                           result.tracks, classes, counts)
    log.info("dataset %s: model %s scored %d frames in %.1fs", dataset.id, model_id, len(scores),
             time.monotonic() - started)
    return scores



