"""The dataset domain's arq functions, as the worker lists them: adapters over the flows.

The job's stages are in flow.py, who holds a dataset in runs.py, the editor's preview in
preview_job.py. The web enqueues these by name (`"build_dataset"`, `"preview_dataset"`); the dataset run
enqueues `"propagate_segment"` for a long video (segment_jobs.py).
"""

from __future__ import annotations

import uuid

from src.datasets import flow, preview_job, runs, segment_jobs


async def build_dataset(ctx: dict, dataset_id: str) -> str:
    """propagate -> sample -> hard frames -> review (ends the job; review resumes it) -> build -> settle."""
    return await flow.build_dataset(ctx, uuid.UUID(dataset_id))


async def preview_dataset(ctx: dict, dataset_id: str, key: str, base: str | None = None) -> str:
    """The editor's preview of a draft's keyframes."""
    return await preview_job.run_preview(ctx, uuid.UUID(dataset_id), key, base)


async def propagate_segment(ctx: dict, task: segment_jobs.SegmentTask) -> str:
    """One segment of a long video's propagation, on whichever worker takes it."""
    return await segment_jobs.propagate_segment(ctx, task)


async def requeue_stale(ctx: dict) -> int:
    """The sweep: datasets whose worker stopped sending heartbeats go to a fresh job."""
    return await runs.requeue_stale(ctx)
