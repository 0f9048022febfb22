"""HTML pages of dataset drafts: the new-dataset form, the draft page (classes, keyframes)
and the box editor. Forms work without JavaScript; HTMX swaps the `classes` and `create`
blocks of the draft page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request

from src.datasets.draft import service
from src.datasets.dependencies import PageDataset
from src.datasets.draft.exceptions import ClassInUse, InvalidDraft
from src.auth.dependencies import PageUser
from src.database import SessionDep
from src.datasets.models import Dataset, DatasetState
from src.pages import attempt
from src.templating import is_htmx, redirect_to, render
from src.videos import service as video_service
from src.vision import attributes as attrs

router = APIRouter(include_in_schema=False)


def _classes_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


@router.get("/videos/{video_id}/new-dataset", name="new_dataset_form")
async def new_dataset_form(request: Request, video_id: uuid.UUID, session: SessionDep, user: PageUser):
    video = await video_service.get_for_user(session, video_id=video_id, user=user)
    return render(request, "datasets/draft/new_dataset.html", {"video": video, "name": video.display_name, "classes": ""})


@router.post("/videos/{video_id}/new-dataset", name="new_dataset_submit")
async def new_dataset_submit(
    request: Request,
    video_id: uuid.UUID,
    session: SessionDep,
    user: PageUser,
    name: Annotated[str, Form()] = "",
    classes: Annotated[str, Form()] = "",
):
    video = await video_service.get_for_user(session, video_id=video_id, user=user)
    made = await attempt(session, service.create_draft(
        session, user=user, video_id=video.id, name=name, classes=_classes_list(classes)))
    if error := made.error:
        context = {"video": video, "name": name, "classes": classes, "error": error.message}
        return render(request, "datasets/draft/new_dataset.html", context, block="form", status_code=error.status_code)
    dataset = made.value
    return redirect_to(request, "draft_editor", dataset_id=dataset.id)


async def _draft_context(session, dataset: Dataset, **extra) -> dict:
    classes = await service.list_classes(session, dataset_id=dataset.id)
    return {
        "dataset": dataset,
        "video": await service.get_video(session, dataset=dataset),
        "classes": classes,
        "colors": {c.name: c.color for c in classes},
        "keyframes": await service.list_keyframes(session, dataset=dataset),
        "editable": dataset.state == DatasetState.draft,
        "attributes": [service.read_attribute(row, label)
                       for row, label in await service.list_attributes(session, dataset_id=dataset.id)],
        "attribute_kinds": attrs.KINDS,
        **extra,
    }


@router.get("/datasets/{dataset_id}", name="draft_page")
async def draft_page(request: Request, dataset: PageDataset, session: SessionDep):
    return render(request, "datasets/draft/draft.html", await _draft_context(session, dataset))


async def _classes_answer(request: Request, session, dataset: Dataset, *, status_code: int = 200, **extra):
    if not is_htmx(request) and status_code == 200 and not extra:
        return redirect_to(request, "draft_page", dataset_id=dataset.id)
    context = await _draft_context(session, dataset, **extra)
    return render(request, "datasets/draft/draft.html", context, block="classes", status_code=status_code)


@router.post("/datasets/{dataset_id}/classes", name="page_add_class")
async def add_class(
    request: Request, dataset: PageDataset, session: SessionDep,
    name: Annotated[str, Form()] = "", color: Annotated[str, Form()] = "",
):
    if error := (await attempt(session, service.add_class(session, dataset=dataset, name=name, color=color or None))).error:
        return await _classes_answer(request, session, dataset, status_code=error.status_code, class_error=error.message)
    return await _classes_answer(request, session, dataset)


@router.post("/datasets/{dataset_id}/classes/{class_id}", name="page_update_class")
async def update_class(
    request: Request, class_id: int, dataset: PageDataset, session: SessionDep,
    name: Annotated[str, Form()] = "", color: Annotated[str, Form()] = "",
):
    call = service.update_class(session, dataset=dataset, class_id=class_id, name=name, color=color or None)
    if error := (await attempt(session, call)).error:
        return await _classes_answer(request, session, dataset, status_code=error.status_code, class_error=error.message)
    return await _classes_answer(request, session, dataset)


@router.post("/datasets/{dataset_id}/classes/{class_id}/delete", name="page_remove_class")
async def remove_class(
    request: Request, class_id: int, dataset: PageDataset, session: SessionDep,
    force: Annotated[bool, Form()] = False,
):
    error = (await attempt(session, service.remove_class(session, dataset=dataset, class_id=class_id, force=force))).error
    if isinstance(error, ClassInUse):
        confirm = {"class_id": class_id, "message": error.message.split(" Confirm")[0]}
        return await _classes_answer(request, session, dataset, confirm=confirm)
    if error:
        return await _classes_answer(request, session, dataset, status_code=error.status_code, class_error=error.message)
    return await _classes_answer(request, session, dataset)


async def _attributes_answer(request: Request, session, dataset: Dataset, *, status_code: int = 200, **extra):
    if not is_htmx(request) and status_code == 200 and not extra:
        return redirect_to(request, "draft_page", dataset_id=dataset.id)
    context = await _draft_context(session, dataset, **extra)
    return render(request, "datasets/draft/draft.html", context, block="attributes", status_code=status_code)


def _form_values(kind: str, raw: str) -> list:
    """The form's comma-separated values: choices, or min, max, step of a number."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if kind != "number":
        return parts
    try:
        return [float(p) if "." in p else int(p) for p in parts]
    except ValueError:
        raise InvalidDraft("A number attribute's values are numbers: min, max[, step].") from None


def _form_default(kind: str, raw: str):
    raw = raw.strip()
    if not raw:
        return None
    if kind == "multi":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if kind == "checkbox":
        return raw.lower() in ("1", "true", "yes", "on")
    if kind == "number":
        try:
            return float(raw) if "." in raw else int(raw)
        except ValueError:
            raise InvalidDraft(f"The default of a number attribute is a number, got {raw!r}.") from None
    return raw


@router.post("/datasets/{dataset_id}/attributes", name="page_add_attribute")
async def add_attribute(
    request: Request, dataset: PageDataset, session: SessionDep,
    class_name: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "select", values: Annotated[str, Form()] = "",
    default: Annotated[str, Form()] = "", mutable: Annotated[bool, Form()] = False,
):
    async def add():  # the form's values are read inside, so their refusal is shown like the service's
        await service.add_attribute(
            session, dataset=dataset, class_name=class_name, name=name, kind=kind,
            values=_form_values(kind, values), default=_form_default(kind, default), mutable=mutable,
        )

    if error := (await attempt(session, add())).error:
        return await _attributes_answer(request, session, dataset, status_code=error.status_code,
                                        attribute_error=error.message)
    return await _attributes_answer(request, session, dataset)


@router.post("/datasets/{dataset_id}/attributes/{attribute_id}/delete", name="page_remove_attribute")
async def remove_attribute(request: Request, attribute_id: int, dataset: PageDataset, session: SessionDep):
    if error := (await attempt(session, service.remove_attribute(session, dataset=dataset, attribute_id=attribute_id))).error:
        return await _attributes_answer(request, session, dataset, status_code=error.status_code,
                                        attribute_error=error.message)
    return await _attributes_answer(request, session, dataset)


@router.post("/datasets/{dataset_id}/check", name="page_create_dataset")
async def create_dataset(request: Request, dataset: PageDataset, session: SessionDep):
    """"Create dataset": only checks the draft here, then hands over to the options page."""
    if error := (await attempt(session, service.check_ready_to_create(session, dataset=dataset))).error:
        context = await _draft_context(session, dataset, create_error=error.message)
        return render(request, "datasets/draft/draft.html", context, block="create", status_code=error.status_code)
    return redirect_to(request, "dataset_create_page", dataset_id=dataset.id)


@router.get("/datasets/{dataset_id}/editor", name="draft_editor")
async def editor_page(request: Request, dataset: PageDataset, session: SessionDep, frame: int = 0):
    context = await _draft_context(session, dataset)
    video = context["video"]
    frame = min(max(frame, 0), max((video.frame_count or 1) - 1, 0))
    editor = {
        "dataset_id": str(dataset.id),
        "video_id": str(video.id),
        "width": video.width,
        "height": video.height,
        "frame_count": video.frame_count,
        "fps": video.fps,
        "frame": frame,
        "editable": context["editable"],
        "classes": [{"id": c.id, "name": c.name, "color": c.color} for c in context["classes"]],
        "keyframes": context["keyframes"],
        "attributes": context["attributes"],
    }
    return render(request, "datasets/draft/editor.html", {**context, "editor": editor, "frame": frame})
