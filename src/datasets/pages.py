"""Dataset pages: the cabinet (all datasets, balance, quota), the create page (options +
live quote + confirm) and the dataset page (progress, downloads, preview, timeline)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from src.datasets.draft import service as drafts
from src.auth.dependencies import PageUser
from src.billing import service as billing_service
from src.database import SessionDep
from src.datasets import service
from src.datasets.dependencies import PageDataset
from src.datasets.models import ACTIVE_STATES, DatasetState
from src.datasets.schemas import DatasetOptions
from src.exceptions import Unprocessable
from src.pages import attempt
from src.quotas import service as quota_service
from src.templating import path_for, redirect_to, render

router = APIRouter(include_in_schema=False)
GALLERY_PAGE = 36
LOW_CONFIDENCE = 0.5


def options_from_form(form: dict[str, Any]) -> DatasetOptions:
    """The create form's fields -> DatasetOptions (raises ValidationError with readable messages)."""
    return DatasetOptions.model_validate({
        "sampling": {"mode": form.get("sampling_mode", "all"), "every_n": form.get("every_n") or 5,
                     "ssim_threshold": form.get("ssim_threshold") or 0.95},
        "split": {"train": float(form.get("train") or 0) / 100, "valid": float(form.get("valid") or 0) / 100,
                  "test": float(form.get("test") or 0) / 100, "seed": form.get("seed") or 0},
        "formats": form.getlist("formats") if hasattr(form, "getlist") else form.get("formats", []),
        "review_budget": float(form.get("review_budget") or 0) / 100,
        "review_backend": form.get("review_backend", "builtin"),
        "review_by": form.get("review_by", "team"),
        "double_review_share": float(form.get("double_review_share") or 0) / 100,
        "auto_accept_agreement": float(form["auto_accept_agreement"]) / 100 if form.get("auto_accept_agreement") else None,
        "keep_empty": form.get("keep_empty") == "on",
        "model_id": form.get("model_id") or None,
        "ava_rate": form.get("ava_rate") or 1.0,
        "ava_action_attribute": form.get("ava_action_attribute") or None,
        "review_attribute_share": float(form.get("review_attribute_share") or 0) / 100,
    })


def _errors(error: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors()]


async def _cabinet_context(session, user) -> dict:
    datasets = await service.list_for_owner(session, user=user)
    return {
        "datasets": datasets,
        "polling": any(d.state in ACTIVE_STATES for d in datasets),
        "balance": await billing_service.balance_cents(session, user_id=user.id),
        "currency": (await billing_service.current_price_list(session)).currency,
        "quota": await quota_service.effective_quota(session, user_id=user.id),
        "usage": await service.usage(session, user_id=user.id),
        "ledger": await billing_service.ledger(session, user_id=user.id, limit=10),
    }


@router.get("/datasets", name="datasets_cabinet")
async def cabinet(request: Request, session: SessionDep, user: PageUser):
    return render(request, "datasets/cabinet.html", await _cabinet_context(session, user), block="dataset_list")


@router.get("/datasets/{dataset_id}/create", name="dataset_create_page")
async def create_page(request: Request, dataset: PageDataset, session: SessionDep, user: PageUser):
    if dataset.state != DatasetState.draft:
        return redirect_to(request, "dataset_overview", dataset_id=dataset.id)
    context = await _create_context(session, dataset, user, options=service.options_of(dataset))
    models = await request.app.state.dataset_ports.model_choices(session, user=user)
    return render(request, "datasets/create.html", {**context, "models": models})


async def _create_context(session, dataset, user, *, options: DatasetOptions | None, errors: list[str] = ()) -> dict:
    """What the quote block shows: the quote for `options`, the balance and what is missing,
    the review backends this instance offers, and `errors` (each a sentence for the user)."""
    quote = await service.quote(session, dataset=dataset, options=options) if options is not None else None
    balance = await billing_service.balance_cents(session, user_id=user.id)
    specs = await drafts.attribute_specs(session, dataset_id=dataset.id)
    return {
        "list_attributes": [s for s in specs if s.kind in ("select", "multi")],
        "mutable_attributes": any(s.mutable for s in specs),
        "dataset": dataset, "options": options or service.options_of(dataset), "quote": quote,
        "errors": list(errors), "balance": balance,
        "missing": max(0, quote.total_cents - balance) if quote else 0,
        "backends": service.review_backends(), "warnings": await service.quote_warnings(session, dataset=dataset),
    }


@router.post("/datasets/{dataset_id}/quote", name="dataset_quote_fragment")
async def quote_fragment(request: Request, dataset: PageDataset, session: SessionDep, user: PageUser):
    """The live quote for the options on the create page; valid options are kept on the draft."""
    form = await request.form()
    try:
        options = options_from_form(form)
    except ValidationError as error:
        context = await _create_context(session, dataset, user, options=None, errors=_errors(error))
        return render(request, "datasets/create.html", context, block="quote")

    async def quoted():
        # kept as the draft's options (what the editor's preview picks its review frames by),
        # so a later visit and the preview see what the user chose here
        await service.set_options(session, dataset=dataset, options=options)
        return await _create_context(session, dataset, user, options=options)

    outcome = await attempt(session, quoted())
    if error := outcome.error:
        context = await _create_context(session, dataset, user, options=None, errors=[error.message])
    else:
        context = outcome.value
    return render(request, "datasets/create.html", context, block="quote")


@router.post("/datasets/{dataset_id}/confirm", name="dataset_confirm_submit")
async def confirm_submit(request: Request, dataset: PageDataset, session: SessionDep, user: PageUser):
    """Confirm; any refusal (balance, quota, price changed, state, bad input) is shown in the
    quote block with the quote for what the user chose, and nothing is changed."""
    form = await request.form()
    dataset_id = dataset.id
    try:
        options = options_from_form(form)
    except ValidationError as error:
        context = await _create_context(session, dataset, user, options=None, errors=_errors(error))
        return render(request, "datasets/create.html", context, block="quote", status_code=422)

    async def confirm():
        try:
            expected = int(form["expected_total_cents"]) if form.get("expected_total_cents") else None
        except ValueError:
            raise Unprocessable("The quote on the page is not a number; reload it.") from None
        return await service.confirm(session, request.app.state.redis, dataset=dataset, options=options,
                                     expected_total_cents=expected)

    if error := (await attempt(session, confirm())).error:
        dataset = await service.get_for_user(session, dataset_id=dataset_id, user=user)
        await session.refresh(dataset)  # as it is now, whatever the refused call read
        if dataset.state != DatasetState.draft:  # confirmed meanwhile (another tab): show it
            return redirect_to(request, "dataset_overview", dataset_id=dataset.id)
        context = await _create_context(session, dataset, user, options=options, errors=[error.message])
        return render(request, "datasets/create.html", context, block="quote", status_code=error.status_code)
    return redirect_to(request, "dataset_overview", dataset_id=dataset_id)


def _gallery(manifest: dict | None, *, class_id: int | None, source: str | None, low: bool, page: int) -> dict:
    frames = (manifest or {}).get("frames", [])
    if class_id is not None:
        frames = [f for f in frames if any(o["class_id"] == class_id for o in f["objects"])]
    if source:
        frames = [f for f in frames if f["source"] == source]
    if low:
        frames = sorted((f for f in frames if f["confidence"] < LOW_CONFIDENCE), key=lambda f: f["confidence"])
    start = page * GALLERY_PAGE
    return {"items": frames[start : start + GALLERY_PAGE], "total": len(frames), "page": page,
            "pages": max(1, -(-len(frames) // GALLERY_PAGE))}


# the engine names the dataset records (src.vision.propagate.Engine), as the page says them
ENGINE_WORDS = {"nanotrack-v2": "the learned tracker (NanoTrack v2)", "lk-ncc": "the built-in tracker (LK + NCC)"}


def _timeline_points(timeline: dict | None, width: int = 1000, height: int = 80) -> dict | None:
    if not timeline or not timeline.get("confidence"):
        return None
    conf = timeline["confidence"]
    n = len(conf)
    step = max(1, n // width)
    points = " ".join(f"{i * width / max(n - 1, 1):.1f},{(1 - c) * height:.1f}" for i, c in list(enumerate(conf))[::step])

    def x(frame: int) -> float:
        return round(frame * width / max(n - 1, 1), 1)

    return {"points": points, "width": width, "height": height, "n": n,
            "engine": ENGINE_WORDS.get(timeline.get("engine"), timeline.get("engine")),
            "hard": [x(f) for f in timeline.get("hard_frames", [])],
            "reviewed": [x(f) for f in timeline.get("reviewed_frames", [])],
            "keyframes": [x(f) for f in timeline.get("keyframes", [])]}


@router.get("/datasets/{dataset_id}/overview", name="dataset_overview")
async def overview(
    request: Request, dataset: PageDataset, session: SessionDep, user: PageUser,
    class_id: str = "", source: str | None = None, low: bool = False, page: int = 0,
):
    class_id = int(class_id) if class_id.strip().isdigit() else None  # "" is "all classes"
    manifest = service.read_artifact(dataset, "manifest.json") if dataset.state == DatasetState.ready else None
    from src.videos.models import Video

    review = await request.app.state.dataset_ports.review_summary(session, dataset_id=dataset.id, user=user)
    context = {
        "own_jobs": review.own_jobs,
        "review_message": review.message,
        "dataset": dataset, "view": await service.to_read(session, dataset=dataset),
        "video": await session.get(Video, dataset.video_id),
        "active": dataset.state in ACTIVE_STATES,
        "gallery": _gallery(manifest, class_id=class_id, source=source, low=low, page=max(page, 0)),
        "filters": {"class_id": class_id, "source": source, "low": low},
        "classes": (manifest or {}).get("classes", []),
        "timeline": _timeline_points(service.read_artifact(dataset, "timeline.json")),
        "player": _player(request, manifest, video_id=dataset.video_id, start=_first_frame(class_id, source, low, manifest)),
    }
    if context["player"]:
        context["player"]["colors"] = {c.name: c.color for c in context["view"].classes}
    return render(request, "datasets/overview.html", context, block="status")


PLAYER_MAX = 3000  # delivered frames the page's player carries (the first ones)


def _player(request: Request, manifest: dict | None, *, video_id, start: int | None) -> dict | None:
    """The delivered frames and their boxes for the frame player (static/js/player.js)."""
    if not manifest or not manifest.get("frames"):
        return None
    names = {c["id"]: c["name"] for c in manifest.get("classes", [])}
    frames = manifest["frames"][:PLAYER_MAX]
    video = manifest.get("video", {})
    src = path_for(request, "read_frame", video_id=video_id, n="{n}")  # the player puts the frame number in
    return {"src": src, "width": video.get("width"), "height": video.get("height"),
            "fps": video.get("fps"), "frames": [f["frame"] for f in frames], "start": start,
            "boxes": {str(f["frame"]): [[*o["box"], names.get(o["class_id"], "?")] for o in f["objects"]] for f in frames}}


def _first_frame(class_id, source, low, manifest) -> int | None:
    gallery = _gallery(manifest, class_id=class_id, source=source, low=low, page=0)["items"]
    return gallery[0]["frame"] if gallery else None


@router.post("/datasets/{dataset_id}/cancel", name="dataset_cancel_submit")
async def cancel_submit(request: Request, dataset: PageDataset, session: SessionDep):
    await attempt(session, service.cancel(session, request.app.state.redis, dataset_id=dataset.id))
    # a refusal (already building or finished) needs no message: the page it goes back to shows the state
    return redirect_to(request, "dataset_overview", dataset_id=dataset.id)
