"""Datasets JSON API: options, quote, confirm, cancel, state, downloads."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, BackgroundTasks, Request, Response

from src.auth.dependencies import CurrentUser
from src.database import SessionDep
from src.datasets import service
from src.datasets.dependencies import OwnedDataset
from src.datasets.models import DatasetState
from src.pagination import LIST_RESPONSES, PageDep, SearchQuery
from src.pagination import set_headers as set_page_headers
from src.storage import file_response
from src.datasets.schemas import ConfirmBody, DatasetOptions, DatasetRead, Format, Quote

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetRead], responses=LIST_RESPONSES)
async def list_datasets(request: Request, response: Response, session: SessionDep, user: CurrentUser, page: PageDep,
                        state: DatasetState | None = None, video_id: uuid.UUID | None = None, q: SearchQuery = None):
    """My datasets, newest first; `?page=&per_page=` for one page (unset: all), filtered by `state`,
    `video_id` and `q` (part of the name)."""
    items, total = await service.search_for_owner(session, user=user, page=page, state=state, video_id=video_id, q=q)
    set_page_headers(request, response, page, total)
    return [await service.to_read(session, dataset=d) for d in items]


@router.delete("/{dataset_id}", status_code=204, responses={409: {"description": "its job is running: cancel it first"}})
async def delete_dataset(dataset: OwnedDataset, session: SessionDep, background: BackgroundTasks):
    """Delete a dataset that is not being made (a draft, ready, failed or cancelled): its keyframes,
    review and files go; its ledger rows (reservations, charges) stay."""
    prefix = await service.delete(session, dataset=dataset)
    background.add_task(service.delete_files, prefix)  # after the commit


@router.get("/{dataset_id}", response_model=DatasetRead)
async def read_dataset(dataset: OwnedDataset, session: SessionDep):
    """The draft (classes, keyframes) and the job: state, progress, price, downloads."""
    return await service.to_read(session, dataset=dataset)


@router.put("/{dataset_id}/options", response_model=DatasetRead)
async def set_options(dataset: OwnedDataset, options: DatasetOptions, session: SessionDep):
    """Frame sampling, split, formats, review budget and backend (drafts only)."""
    await service.set_options(session, dataset=dataset, options=options)
    return await service.to_read(session, dataset=dataset)


@router.get("/{dataset_id}/quote", response_model=Quote)
async def get_quote(dataset: OwnedDataset, session: SessionDep):
    """Frames to deliver, objects, expected review frames and the itemised price (integer cents)."""
    if dataset.quote is not None:
        return dataset.quote  # confirmed: the quote that was reserved
    return await service.quote(session, dataset=dataset)


@router.post("/{dataset_id}/confirm", status_code=202, response_model=DatasetRead,
             responses={402: {"description": "the balance does not cover the quote"}})
async def confirm(dataset: OwnedDataset, request: Request, session: SessionDep, body: ConfirmBody | None = None):
    """Check quota and balance, reserve the quote and queue the job. Confirming twice is harmless."""
    body = body or ConfirmBody()
    dataset = await service.confirm(
        session, request.app.state.redis, dataset=dataset, options=body.options,
        expected_total_cents=body.expected_total_cents,
    )
    return await service.to_read(session, dataset=dataset)


@router.post("/{dataset_id}/cancel", response_model=DatasetRead)
async def cancel(dataset: OwnedDataset, request: Request, session: SessionDep):
    dataset = await service.cancel(session, request.app.state.redis, dataset_id=dataset.id)
    return await service.to_read(session, dataset=dataset)


@router.get("/{dataset_id}/download", responses={200: {"content": {"application/zip": {}}}})
async def download(dataset: OwnedDataset, format: Format):
    """The export as a zip: from disk, or a redirect to the object store (docs/storage.md)."""
    return await _zip_response(dataset, format, head=False)


async def _zip_response(dataset, format: str, *, head: bool):
    key = await asyncio.to_thread(service.download_key, dataset, format)
    filename = f"{dataset.name}-{format}.zip".replace('"', "")
    return await asyncio.to_thread(file_response, key, media_type="application/zip", filename=filename, head=head)


@router.head("/{dataset_id}/download", responses={200: {"description": "the zip's headers (Content-Length), no body"}})
async def download_head(dataset: OwnedDataset, format: Format):
    """The download's headers without its body: size (Content-Length), type, name, ETag (from
    the store itself with object storage: a presigned link is signed for GET only)."""
    return await _zip_response(dataset, format, head=True)


@router.post("/{dataset_id}/preview", status_code=202)
async def start_preview(dataset: OwnedDataset, request: Request, session: SessionDep):
    """Propagate the draft's current keyframes for a look before confirming (free, not stored
    as a dataset). Reuses the stored preview of the same keyframes and engine; returns
    `{"key", "state": queued|running|ready|empty, "done", "total"}`; poll GET."""
    from src.datasets import preview

    return await preview.request(session, request.app.state.redis, dataset=dataset)


@router.get("/{dataset_id}/preview")
async def read_preview(dataset: OwnedDataset, request: Request, start: int = 0, stop: int | None = None):
    """The current preview: state and progress, and when `ready` each track's boxes (xyxy
    pixels, null where absent) and confidence on frames [start, stop) (at most 2,000 a page),
    its present ranges, the keyframes and the frames the hard-frame pick would review."""
    from src.datasets import preview

    return await preview.read(request.app.state.redis, dataset=dataset, start=start, stop=stop)
