"""What the video pages and API need from the domains above them, as they see them.

Datasets are made from videos, so they sit above them: a video's page lists its datasets,
and a video is deleted with its datasets, which have their say first. Videos never import
datasets; they name what they need here, and the web app plugs the real ones in
(`app.state.video_ports`, src.main.create_app). The quota usage an upload counts against
comes the same way (`app.state.usage`, see src.quotas.service).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class DatasetsOf(Protocol):
    async def __call__(self, session: AsyncSession, *, video_id: uuid.UUID) -> Sequence[Any]:
        """The datasets made from the video, oldest first (each with `id`, `name` and `state`),
        for the video page; the caller has checked the user may see the video."""


class BeforeDelete(Protocol):
    async def __call__(self, session: AsyncSession, *, video_id: uuid.UUID) -> list[str]:
        """Before the video is deleted, which takes its datasets with it: refuses (VideoInUse)
        while one of them is being made, otherwise answers the storage prefixes of their files."""


@dataclass(frozen=True)
class VideoPorts:
    datasets_of: DatasetsOf
    before_delete: BeforeDelete
