"""Load a dataset and make sure the caller may see it (another user's dataset is a 404): the
one ownership check of every dataset route, drafts included."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from src.auth.dependencies import CurrentUser, PageUser
from src.database import SessionDep
from src.datasets import service
from src.datasets.models import Dataset


async def valid_dataset_id(dataset_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Dataset:
    return await service.get_for_user(session, dataset_id=dataset_id, user=user)


async def valid_page_dataset_id(dataset_id: uuid.UUID, session: SessionDep, user: PageUser) -> Dataset:
    return await service.get_for_user(session, dataset_id=dataset_id, user=user)


OwnedDataset = Annotated[Dataset, Depends(valid_dataset_id)]
PageDataset = Annotated[Dataset, Depends(valid_page_dataset_id)]
