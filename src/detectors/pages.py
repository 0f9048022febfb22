"""Model pages: `/models` (the user's models and their metrics on each master dataset version)
and `/models/{id}` (state, training progress polled with HTMX, metrics)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from src.auth.dependencies import PageUser
from src.database import SessionDep
from src.datasets import service as dataset_service
from src.datasets.models import DatasetState
from src.detectors import service
from src.detectors.models import DetectorState
from src.templating import render

router = APIRouter(include_in_schema=False)
ACTIVE = (DetectorState.validating, DetectorState.training)


@router.get("/models")
async def models_page(request: Request, session: SessionDep, user: PageUser):
    detectors = await service.list_for_user(session, user=user)
    masters, evaluations = await service.evaluations(session, user=user)
    datasets = [d for d in await dataset_service.list_for_owner(session, user=user) if d.state == DatasetState.ready]
    return render(request, "detectors/list.html", {
        "detectors": detectors, "masters": masters, "evaluations": evaluations, "datasets": datasets,
        "polling": any(d.state in ACTIVE for d in detectors),
    }, block="model_list")


@router.get("/models/{model_id}")
async def model_page(model_id: uuid.UUID, request: Request, session: SessionDep, user: PageUser):
    detector = await service.get_for_user(session, detector_id=model_id, user=user)
    masters, evaluations = await service.evaluations(session, user=user)
    rows = [(m, evaluations[(detector.id, m.id)]) for m in masters if (detector.id, m.id) in evaluations]
    return render(request, "detectors/detail.html", {
        "detector": detector, "rows": rows, "polling": detector.state in ACTIVE,
    }, block="status")
