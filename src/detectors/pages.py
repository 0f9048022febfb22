"""Model pages: `/models` (the user's models and their metrics on each master dataset version)
and `/models/{id}` (state, training progress polled with HTMX, metrics)."""

from __future__ import annotations

import uuid

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from src.auth.dependencies import PageUser
from src.database import SessionDep
from src.datasets import service as dataset_service
from src.datasets.models import DatasetState
from src.detectors import extras, service
from src.detectors.models import DetectorState
from src.detectors.schemas import TrainRequest
from src.exceptions import DomainError
from src.pages import attempt, form_model
from src.templating import redirect_to, render

router = APIRouter(include_in_schema=False)
ACTIVE = (DetectorState.validating, DetectorState.training)


async def _list_context(session, user) -> dict:
    detectors = await service.list_for_user(session, user=user)
    masters, evaluations = await service.evaluations(session, user=user)
    datasets = [d for d in await dataset_service.list_for_owner(session, user=user) if d.state == DatasetState.ready]
    no_common = {(d.id, m.id) for d in detectors for m in masters if not service.common_classes(d.classes, m.classes)}
    return {"detectors": detectors, "masters": masters, "evaluations": evaluations, "datasets": datasets,
            "no_common": no_common, "polling": any(d.state in ACTIVE for d in detectors), **_extras()}


def _extras() -> dict:
    """Without torch + ultralytics the pages say how to get them and offer no upload, Train or Evaluate."""
    return {"ml_missing": extras.missing(), "ml_hint": extras.INSTALL_HINT}


@router.get("/models", name="models_page")
async def models_page(request: Request, session: SessionDep, user: PageUser):
    return render(request, "detectors/list.html", await _list_context(session, user), block="model_list")


@router.get("/models/{model_id}", name="model_page")
async def model_page(model_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser):
    detector = await service.get_for_user(session, detector_id=model_id, user=user)
    masters, evaluations = await service.evaluations(session, user=user)
    rows = [(m, evaluations[(detector.id, m.id)]) for m in masters if (detector.id, m.id) in evaluations]
    return render(request, "detectors/detail.html", {
        "detector": detector, "rows": rows, "polling": detector.state in ACTIVE, **_extras(),
    }, block="status")


async def _list_with_error(request: Request, session, user, error: DomainError, field: str, prefix: str = ""):
    context = {**await _list_context(session, user), "polling": False, field: prefix + error.message}
    return render(request, "detectors/list.html", context, status_code=error.status_code)


@router.post("/models/upload", name="model_upload_submit")
async def upload_submit(
    request: Request, session: SessionDep, user: PageUser, file: Annotated[UploadFile, File()],
    name: Annotated[str, Form()] = "", classes: Annotated[str, Form()] = "",
):
    """Plain multipart form (the CSRF token travels in the action's query string)."""
    call = service.upload(session, request.app.state.redis, user=user, file=file, name=name, classes=classes or None)
    if error := (await attempt(session, call)).error:
        return await _list_with_error(request, session, user, error, "upload_error")
    return redirect_to(request, "models_page")


@router.post("/models/train", name="model_train_submit")
async def train_submit(request: Request, session: SessionDep, user: PageUser):
    form = await request.form()

    async def train():  # the form is checked by the API's schema (TrainRequest)
        body = form_model(TrainRequest, {"dataset_ids": form.getlist("dataset_ids"), "name": form.get("name", ""),
                                         "epochs": form.get("epochs") or 20, "imgsz": form.get("imgsz") or 640,
                                         "base": form.get("base") or "yolov8n.yaml"})
        return await service.request_training(session, request.app.state.redis, user=user, body=body)

    trained = await attempt(session, train())
    if error := trained.error:
        return await _list_with_error(request, session, user, error, "train_error")
    return redirect_to(request, "model_page", model_id=trained.value.id)


@router.post("/models/{model_id}/evaluate", name="model_evaluate_submit")
async def evaluate_submit(model_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser):
    """The "Evaluate on the latest version" button of /models."""
    detector = await service.get_for_user(session, detector_id=model_id, user=user)
    call = service.request_evaluation(session, request.app.state.redis, detector=detector, user=user)
    if error := (await attempt(session, call)).error:
        return await _list_with_error(request, session, user, error, "evaluate_error", prefix=f"{detector.name}: ")
    return redirect_to(request, "models_page")
