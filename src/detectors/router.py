"""Detector models JSON API: upload, list, read, delete, train, predict on a frame."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, Response, UploadFile

from src.auth.dependencies import CurrentUser
from src.database import SessionDep
from src.detectors.models import DetectorState
from src.pagination import LIST_RESPONSES, PageDep, SearchQuery
from src.pagination import set_headers as set_page_headers
from src.detectors import service
from src.detectors.schemas import (DetectorRead, EvaluateRequest, EvaluationQueued, EvaluationRead, PredictRequest,
                                   Prediction, TrainRequest)

router = APIRouter(prefix="/api/v1/models", tags=["models"])


@router.post("", status_code=202, response_model=DetectorRead)
async def upload_model(
    request: Request, session: SessionDep, user: CurrentUser, file: Annotated[UploadFile, File()],
    name: Annotated[str, Form()] = "", classes: Annotated[str | None, Form()] = None,
    shared: Annotated[bool, Form()] = False,
):
    """Upload an ultralytics `.pt` or `.onnx` detector; the worker validates it (state `validating`
    -> `ready` | `invalid` with `error`). `classes`: comma-separated or a JSON list, in class-id order."""
    return await service.upload(session, request.app.state.redis, user=user, file=file, name=name,
                                classes=classes, shared=shared)


@router.get("", response_model=list[DetectorRead], responses=LIST_RESPONSES)
async def list_models(request: Request, response: Response, session: SessionDep, user: CurrentUser, page: PageDep,
                      state: DetectorState | None = None, q: SearchQuery = None):
    """Models I may use (mine and shared), newest first; `?page=&per_page=`, filtered by `state` and `q`."""
    items, total = await service.search_for_user(session, user=user, page=page, state=state, q=q)
    set_page_headers(request, response, page, total)
    return items


@router.post("/train", status_code=202, response_model=DetectorRead)
async def train_model(body: TrainRequest, request: Request, session: SessionDep, user: CurrentUser):
    """Train a YOLO model on one or more ready datasets (merged into the next master dataset version)."""
    return await service.request_training(session, request.app.state.redis, user=user, body=body)


@router.get("/{model_id}", response_model=DetectorRead)
async def read_model(model_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    return await service.get_for_user(session, detector_id=model_id, user=user)


@router.get("/{model_id}/evaluations", response_model=list[EvaluationRead])
async def model_evaluations(model_id: uuid.UUID, session: SessionDep, user: CurrentUser):
    detector = await service.get_for_user(session, detector_id=model_id, user=user)
    _, rows = await service.evaluations(session, user=user)
    return [row for (d, _), row in rows.items() if d == detector.id]


@router.post("/{model_id}/evaluate", status_code=202, response_model=EvaluationQueued)
async def evaluate_model(model_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser,
                         body: EvaluateRequest | None = None):
    """Measure a ready model on the valid split of one of your master dataset versions (the latest by
    default), classes mapped by name; the metrics appear in `/evaluations` once the worker is done.
    422 when the model shares no class with that version."""
    detector = await service.get_for_user(session, detector_id=model_id, user=user)
    the_master = await service.request_evaluation(session, request.app.state.redis, detector=detector, user=user,
                                                  master_id=body.master_id if body else None)
    return EvaluationQueued(model_id=detector.id, master_id=the_master.id, version=the_master.version)


@router.delete("/{model_id}", status_code=204)
async def delete_model(model_id: uuid.UUID, session: SessionDep, user: CurrentUser, background: BackgroundTasks):
    detector = await service.get_for_user(session, detector_id=model_id, user=user)
    prefix = await service.delete(session, detector=detector, user=user)
    background.add_task(service.delete_files, prefix)


@router.post("/{model_id}/predict", response_model=Prediction)
async def predict(model_id: uuid.UUID, body: PredictRequest, request: Request, session: SessionDep,
                  user: CurrentUser):
    """Boxes (pixels) of the model on one frame of a video; with `dataset_id`, class names are
    mapped onto that draft's classes by name (`class_name` None when the draft has no such class)."""
    detector = await service.get_ready_for_user(session, detector_id=model_id, user=user)
    return await service.predict(session, request.app.state.redis, detector=detector, user=user, body=body)
