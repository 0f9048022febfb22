"""JSON API of dataset drafts: create one, its label classes and its keyframes.

`GET /api/v1/datasets/{id}` lives in src/datasets/router.py: `DatasetRead` extends `DraftRead`
with the job's state, progress and price."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from src.datasets.draft import service
from src.datasets.dependencies import OwnedDataset
from src.datasets.draft.schemas import (
    AttributeCreate,
    AttributeList,
    AttributeRead,
    DraftCreate,
    DraftRead,
    KeyframeList,
    KeyframePut,
    KeyframeRead,
    LabelClassCreate,
    LabelClassRead,
    LabelClassUpdate,
    TrackMerge,
    TrackSplit,
)
from src.auth.dependencies import CurrentUser
from src.database import SessionDep

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DraftRead)
async def create_draft(body: DraftCreate, session: SessionDep, user: CurrentUser):
    dataset = await service.create_draft(
        session, user=user, video_id=body.video_id, name=body.name, classes=body.classes
    )
    return await service.read_draft(session, dataset=dataset)


@router.post("/{dataset_id}/classes", status_code=status.HTTP_201_CREATED, response_model=LabelClassRead)
async def add_class(body: LabelClassCreate, dataset: OwnedDataset, session: SessionDep):
    return await service.add_class(session, dataset=dataset, name=body.name, color=body.color)


@router.patch("/{dataset_id}/classes/{class_id}", response_model=LabelClassRead)
async def update_class(class_id: int, body: LabelClassUpdate, dataset: OwnedDataset, session: SessionDep):
    return await service.update_class(session, dataset=dataset, class_id=class_id, name=body.name, color=body.color)


@router.delete("/{dataset_id}/classes/{class_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_class(class_id: int, dataset: OwnedDataset, session: SessionDep, force: bool = False):
    await service.remove_class(session, dataset=dataset, class_id=class_id, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{dataset_id}/keyframes", response_model=KeyframeList)
async def list_keyframes(dataset: OwnedDataset, session: SessionDep):
    return {"keyframes": await service.list_keyframes(session, dataset=dataset)}


@router.put("/{dataset_id}/keyframes/{frame}", response_model=KeyframeRead)
async def put_keyframe(frame: int, body: KeyframePut, dataset: OwnedDataset, session: SessionDep):
    objects = await service.put_keyframe(session, dataset=dataset, frame=frame, objects=body.objects)
    return {"frame": frame, "objects": objects}


@router.delete("/{dataset_id}/keyframes/{frame}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_keyframe(frame: int, dataset: OwnedDataset, session: SessionDep):
    await service.delete_keyframe(session, dataset=dataset, frame=frame)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{dataset_id}/attributes", status_code=status.HTTP_201_CREATED, response_model=AttributeRead)
async def add_attribute(body: AttributeCreate, dataset: OwnedDataset, session: SessionDep):
    return await service.add_attribute(
        session, dataset=dataset, class_name=body.class_name, name=body.name, kind=body.kind, values=body.values,
        default=body.default, mutable=body.mutable,
    )


@router.get("/{dataset_id}/attributes", response_model=AttributeList)
async def list_attributes(dataset: OwnedDataset, session: SessionDep):
    rows = await service.list_attributes(session, dataset_id=dataset.id)
    return {"attributes": [service.read_attribute(row, label) for row, label in rows]}


@router.delete("/{dataset_id}/attributes/{attribute_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_attribute(attribute_id: int, dataset: OwnedDataset, session: SessionDep):
    await service.remove_attribute(session, dataset=dataset, attribute_id=attribute_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{dataset_id}/tracks/{track_id}/split", response_model=KeyframeList)
async def split_track(track_id: int, body: TrackSplit, dataset: OwnedDataset, session: SessionDep):
    """From `frame` on, the track is another object (a new track id); returns the keyframes."""
    await service.split_track(session, dataset=dataset, track_id=track_id, frame=body.frame)
    return {"keyframes": await service.list_keyframes(session, dataset=dataset)}


@router.post("/{dataset_id}/tracks/{track_id}/merge", response_model=KeyframeList)
async def merge_tracks(track_id: int, body: TrackMerge, dataset: OwnedDataset, session: SessionDep):
    """The track is the same object as `into`: its keyframes join that track; returns the keyframes."""
    await service.merge_tracks(session, dataset=dataset, track_id=track_id, into=body.into)
    return {"keyframes": await service.list_keyframes(session, dataset=dataset)}
