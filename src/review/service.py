"""Review of hard frames, the same for CVAT and the built-in page.

`open_review` turns the hard frames of a dataset into a task of jobs (dealt to the annotators
with the fewest jobs waiting, `deal`); a job goes annotation -> validation -> acceptance; accepted jobs yield
corrections; when every job is accepted the dataset goes back to the worker, which
re-propagates with the reviewed frames as extra keyframes (`corrections`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.auth.models import Role, User
from src.database import on_commit, utcnow
from src.datasets import service as dataset_service
from src.datasets.models import Dataset, DatasetState
from src.review import agreement
from src.review.exceptions import InvalidCorrection, NotYourJob, ReviewJobNotFound, WrongStage
from src.review.models import FrameDecision, JobStage, ReviewBackend, ReviewFrame, ReviewJob, ReviewTask, TaskState

DEFAULT_JOB_SIZE = 20


async def reviewers(session: AsyncSession) -> list[User]:
    """Active annotators, or the active admins when there is no annotator."""
    for role in (Role.annotator, Role.admin):
        users = (await session.scalars(
            select(User).where(User.role == role, User.is_active).order_by(User.created_at, User.id)
        )).all()
        if users:
            return list(users)
    return []


async def waiting_jobs(session: AsyncSession, people: Sequence[uuid.UUID], *, besides: int | None = None,
                       ) -> dict[uuid.UUID, int]:
    """How many jobs each of ``people`` has waiting for them to annotate (outside task ``besides``)."""
    query = (select(ReviewJob.assignee_id, func.count()).where(ReviewJob.assignee_id.in_(list(people)),
                                                               ReviewJob.stage == JobStage.annotation)
             .group_by(ReviewJob.assignee_id))
    if besides is not None:
        query = query.where(ReviewJob.task_id != besides)
    return {who: count for who, count in (await session.execute(query)).all()}


def deal(people: Sequence[uuid.UUID], jobs: int, waiting: dict[uuid.UUID, int]) -> list[uuid.UUID]:
    """Who gets each of ``jobs`` new jobs: the person with the fewest jobs waiting (``waiting``,
    counting the ones dealt here), the longest-standing account first among equals. So a fresh
    annotator gets work while the first one still has some, and equals take turns."""
    load = {who: waiting.get(who, 0) for who in people}
    dealt = []
    for _ in range(jobs if people else 0):
        who = min(people, key=load.__getitem__)  # the first of the least loaded, in account order
        dealt.append(who)
        load[who] += 1
    return dealt


async def get_task(session: AsyncSession, *, dataset_id: uuid.UUID) -> ReviewTask | None:
    return await session.scalar(select(ReviewTask).where(ReviewTask.dataset_id == dataset_id))


async def open_review(
    session: AsyncSession, *, dataset: Dataset, proposed: dict[int, list[dict[str, Any]]],
    backend: ReviewBackend, job_size: int = DEFAULT_JOB_SIZE, double_review_share: float = 0.0,
    auto_accept_agreement: float | None = None, by_owner: bool = False, attribute_checks: Collection[int] = frozenset(),
) -> ReviewTask:
    """Create the review task for `proposed` ({hard frame: boxes}); idempotent per dataset.
    `attribute_checks`: the frames of `proposed` picked to check attribute values (marked so).

    With `double_review_share` > 0 (at least two reviewers) that share of the hard frames is
    also put in QC jobs for a second annotator (`_add_qc_jobs`; on CVAT, jobs of their own in
    the same CVAT task)."""
    task = await get_task(session, dataset_id=dataset.id)
    if task is not None:
        return task
    task = ReviewTask(dataset_id=dataset.id, backend=backend, auto_accept_agreement=auto_accept_agreement,
                      state=TaskState.creating if backend == ReviewBackend.cvat else TaskState.open)
    session.add(task)
    await session.flush()
    people = [await session.get(User, dataset.owner_id)] if by_owner else await reviewers(session)
    frames = sorted(proposed)
    starts = range(0, len(frames), job_size)
    ids = [u.id for u in people]
    assignees = deal(ids, len(starts), await waiting_jobs(session, ids, besides=task.id)) if ids else [None] * len(starts)
    primaries: list[tuple[ReviewJob, list[int]]] = []
    for start, assignee in zip(starts, assignees):
        job = ReviewJob(task_id=task.id, assignee_id=assignee, stage=JobStage.annotation, updated_at=utcnow())
        session.add(job)
        await session.flush()
        primaries.append((job, frames[start : start + job_size]))
        for offset, frame in enumerate(frames[start : start + job_size]):
            session.add(ReviewFrame(job_id=job.id, video_frame=frame, task_frame=start + offset, proposed=proposed[frame],
                                    attribute_check=frame in attribute_checks))
    if double_review_share > 0 and len(people) >= 2:
        await _add_qc_jobs(session, task=task, primaries=primaries, proposed=proposed, people=people,
                           picked=set(dataset_service.qc_frames(frames, double_review_share)), attribute_checks=attribute_checks)
    await session.flush()
    return task


async def _add_qc_jobs(
    session: AsyncSession, *, task: ReviewTask, primaries: list[tuple[ReviewJob, list[int]]],
    proposed: dict[int, list[dict[str, Any]]], people: list[User], picked: set[int], attribute_checks: Collection[int],
) -> None:
    """One QC job per primary job with picked frames, for the reviewer after that job's annotator
    (so never the same person). QC frames are numbered after the primary ones."""
    task_frame = sum(len(f) for _, f in primaries)
    ids = [u.id for u in people]
    for primary, frames in primaries:
        shared = [f for f in frames if f in picked]
        if not shared:
            continue
        second = ids[(ids.index(primary.assignee_id) + 1) % len(ids)]
        job = ReviewJob(task_id=task.id, assignee_id=second, stage=JobStage.annotation, qc=True, updated_at=utcnow())
        session.add(job)
        await session.flush()
        for frame in shared:
            session.add(ReviewFrame(job_id=job.id, video_frame=frame, task_frame=task_frame, proposed=proposed[frame],
                                    attribute_check=frame in attribute_checks))
            task_frame += 1


async def jobs_of_task(session: AsyncSession, *, task_id: int) -> list[ReviewJob]:
    return list((await session.scalars(select(ReviewJob).where(ReviewJob.task_id == task_id).order_by(ReviewJob.id))).all())


async def frames_of_job(session: AsyncSession, *, job_id: int) -> list[ReviewFrame]:
    query = select(ReviewFrame).where(ReviewFrame.job_id == job_id).order_by(ReviewFrame.task_frame)
    return list((await session.scalars(query)).all())


def can_annotate(job: ReviewJob, user: User) -> bool:
    return user.role == Role.admin or job.assignee_id == user.id


def can_validate(job: ReviewJob, user: User) -> bool:
    """A second person: an admin, or the annotator designated as the job's reviewer
    (`designate_reviewer`, or an admin's assignment); never the job's own annotator."""
    if user.role == Role.admin:
        return True
    return user.role == Role.annotator and job.reviewer_id == user.id and job.assignee_id != user.id


async def designate_reviewer(session: AsyncSession, *, job: ReviewJob) -> uuid.UUID | None:
    """The annotator who validates `job`: the active annotators other than its annotator take
    turns by job id; None (admins validate) when there is no other annotator."""
    others = [u.id for u in (await session.scalars(
        select(User).where(User.role == Role.annotator, User.is_active).order_by(User.created_at, User.id)
    )).all() if u.id != job.assignee_id]
    return others[job.id % len(others)] if others else None


async def get_job_for(session: AsyncSession, *, job_id: int, user: User) -> ReviewJob:
    """The job, if `user` may see it: the person it is dealt to, its designated reviewer once
    it has left annotation, an admin; 404 for everyone else, so job ids reveal nothing. What
    they may do with it is checked by each action (`can_annotate`, `can_validate`)."""
    job = await session.get(ReviewJob, job_id)
    if job is None or not (can_annotate(job, user) or (job.stage != JobStage.annotation and can_validate(job, user))):
        raise ReviewJobNotFound()
    return job


MOTION_CONTEXT = 3  # frames either side of a hard frame a reviewer may see, to see the motion


async def frame_of_job(session: AsyncSession, *, job: ReviewJob, video_frame: int) -> tuple[uuid.UUID, int]:
    """(video id, frame) when `video_frame` is one of the job's frames or within MOTION_CONTEXT
    of one: what its reviewers may see of the owner's video, and nothing else."""
    near = await session.scalar(select(ReviewFrame.id).where(
        ReviewFrame.job_id == job.id, func.abs(ReviewFrame.video_frame - video_frame) <= MOTION_CONTEXT).limit(1))
    if near is None:
        raise ReviewJobNotFound()
    task = await session.get(ReviewTask, job.task_id)
    dataset = await session.get(Dataset, task.dataset_id)
    return dataset.video_id, video_frame


def self_reviewed(job: ReviewJob, dataset: Dataset) -> bool:
    """The owner reviews their own dataset: their completion is the acceptance."""
    return job.assignee_id is not None and job.assignee_id == dataset.owner_id


async def jobs_for_user(session: AsyncSession, *, user: User) -> list[tuple[ReviewJob, ReviewTask, Dataset, int]]:
    """"My review jobs": jobs to annotate (mine) and jobs waiting for a second person's validation."""
    counts = select(ReviewFrame.job_id, func.count().label("n")).group_by(ReviewFrame.job_id).subquery()
    query = (
        select(ReviewJob, ReviewTask, Dataset, counts.c.n)
        .join(ReviewTask, ReviewJob.task_id == ReviewTask.id)
        .join(Dataset, ReviewTask.dataset_id == Dataset.id)
        .join(counts, counts.c.job_id == ReviewJob.id)
        .where(Dataset.state == DatasetState.in_review)
        .order_by(ReviewJob.id)
    )
    rows = (await session.execute(query)).all()
    return [
        (job, task, dataset, n) for job, task, dataset, n in rows
        if (job.stage == JobStage.annotation and can_annotate(job, user))
        or (job.stage == JobStage.validation and can_validate(job, user))
    ]


async def own_review_jobs(session: AsyncSession, *, dataset_id: uuid.UUID, user: User) -> list[tuple[ReviewJob, int]]:
    """(job, frames) of `dataset_id` that `user` is to annotate now: an owner's self-review."""
    return [(job, n) for job, _, dataset, n in await jobs_for_user(session, user=user)
            if dataset.id == dataset_id and job.stage == JobStage.annotation and job.assignee_id == user.id]


def _clean_boxes(objects: Sequence[dict[str, Any]], *, width: int, height: int, classes: set[str],
                 specs: Sequence[Any] = ()) -> list[dict]:
    """Checked corrections; a box's `attributes` are checked against the class's schemas
    (src.vision.attributes) and kept."""
    from src.vision.attributes import InvalidAttribute, check_values

    out, seen = [], set()
    for o in objects:
        try:
            track_id, name, box = o.get("track_id"), o["class"], [float(v) for v in o["box"]]
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidCorrection("Each box needs a class and [x1, y1, x2, y2].") from error
        if name not in classes:
            raise InvalidCorrection(f"Unknown class {name!r}.")
        x1, y1, x2, y2 = max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3])
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise InvalidCorrection("Boxes must be at least 2×2 pixels inside the frame.")
        if track_id is not None and track_id in seen:
            raise InvalidCorrection(f"Track {track_id} appears twice on one frame.")
        seen.add(track_id)
        item = {"track_id": track_id, "class": name, "box": [round(v, 2) for v in (x1, y1, x2, y2)]}
        try:
            values = check_values(specs, name, o.get("attributes"))
        except InvalidAttribute as error:
            raise InvalidCorrection(f"Track {track_id}: {error}") from error
        if values:
            item["attributes"] = values
        out.append(item)
    return out


async def decide_frame(
    session: AsyncSession, *, job: ReviewJob, user: User, video_frame: int, decision: FrameDecision,
    corrected: Sequence[dict[str, Any]] | None, width: int, height: int, classes: set[str],
    specs: Sequence[Any] = (),
) -> ReviewFrame:
    """Accept, fix (with corrected boxes) or reject one frame of a job in annotation."""
    if job.stage != JobStage.annotation:
        raise WrongStage("This job is no longer in annotation.")
    if not can_annotate(job, user):
        raise NotYourJob("Only the job's annotator can change its frames.")
    frame = await session.scalar(select(ReviewFrame).where(ReviewFrame.job_id == job.id, ReviewFrame.video_frame == video_frame))
    if frame is None:
        raise ReviewJobNotFound()
    if decision == FrameDecision.fixed:
        frame.corrected = _clean_boxes(corrected or [], width=width, height=height, classes=classes, specs=specs)
    elif decision == FrameDecision.accepted and frame.decision == FrameDecision.fixed:
        decision = FrameDecision.fixed  # accepting a fixed frame accepts the fix; only a revert drops it
    elif decision == FrameDecision.pending:
        frame.corrected = None  # revert: back to the proposed boxes, undecided
    frame.decision = decision
    job.updated_at = utcnow()
    await session.flush()
    return frame


async def complete_annotation(session: AsyncSession, *, job: ReviewJob, user: User | None) -> ReviewJob:
    """annotation -> validation. Frames left pending count as accepted."""
    if job.stage != JobStage.annotation:
        raise WrongStage("This job is not in annotation.")
    if user is not None and not can_annotate(job, user):
        raise NotYourJob("Only the job's annotator can complete it.")
    for frame in await frames_of_job(session, job_id=job.id):
        if frame.decision == FrameDecision.pending:
            frame.decision = FrameDecision.accepted
    job.stage, job.updated_at = JobStage.validation, utcnow()
    job.reviewer_id = await designate_reviewer(session, job=job)
    await session.flush()
    return job


async def pending_count(session: AsyncSession, *, job: ReviewJob) -> int:
    return sum(f.decision == FrameDecision.pending for f in await frames_of_job(session, job_id=job.id))


async def complete(session: AsyncSession, redis, *, job: ReviewJob, user: User | None) -> bool:
    """`complete_annotation`, then the QC check of the task (agreement, auto-accept).

    Returns True when an automatic acceptance completed the whole task (the dataset then
    resumes once this commits: `finish_if_complete`)."""
    await complete_annotation(session, job=job, user=user)
    task = await session.get(ReviewTask, job.task_id)
    if self_reviewed(job, await session.get(Dataset, task.dataset_id)):
        job.stage, job.imported, job.reviewer_id = JobStage.acceptance, True, job.assignee_id
        await session.flush()
        return await finish_if_complete(session, redis, task_id=job.task_id)
    return await check_agreement(session, redis, task_id=job.task_id)


async def validate(session: AsyncSession, redis, *, job: ReviewJob, user: User | None, accept: bool,
                   issue: str = "") -> bool:
    """validation -> acceptance, or back to annotation with the reviewer's issue text.

    Returns True when this acceptance completed the whole task (the dataset then resumes once
    this commits: `finish_if_complete`)."""
    if job.stage != JobStage.validation:
        raise WrongStage("This job is not waiting for validation.")
    if user is not None and not can_validate(job, user):
        raise NotYourJob("A job is validated by someone other than its annotator.")
    job.reviewer_id = user.id if user is not None else job.reviewer_id
    job.updated_at = utcnow()
    if not accept:
        if not issue.strip():
            raise InvalidCorrection("Say what is wrong, so the annotator can fix it.")
        job.stage, job.issue = JobStage.annotation, issue.strip()
        await session.flush()
        return await check_agreement(session, redis, task_id=job.task_id)  # its QC figures wait for the redo
    job.stage, job.issue, job.imported = JobStage.acceptance, None, True
    await session.flush()
    return await finish_if_complete(session, redis, task_id=job.task_id)


async def finish_if_complete(session: AsyncSession, redis, *, task_id: int) -> bool:
    """When every job is accepted: close the task and hand the dataset back to the worker
    (datasets.service.resume_after_review: the run after the review is enqueued once this
    transaction commits). True when that happened."""
    task = await session.get(ReviewTask, task_id, with_for_update=True)
    if task.state == TaskState.done:
        return False
    if any(j.stage != JobStage.acceptance for j in await jobs_of_task(session, task_id=task_id)):
        return False
    task.state, task.completed_at, task.message = TaskState.done, utcnow(), None
    return await dataset_service.resume_after_review(session, redis, dataset_id=task.dataset_id)


async def corrections(session: AsyncSession, *, dataset_id: uuid.UUID) -> tuple[dict[int, list[dict]], list[int], list[int]]:
    """The accepted review as engine seeds: ({frame: objects}, reviewed frames, dropped frames).

    Only the primary jobs count (QC jobs are a second opinion). A fixed frame's boxes replace the proposed ones; a box the annotator deleted becomes a
    `gone` marker; a box without a track id gets a new one; an accepted frame keeps the
    proposed boxes. Every reviewed frame becomes a keyframe."""
    task = await get_task(session, dataset_id=dataset_id)
    if task is None:
        return {}, [], []
    frames = (await session.scalars(
        select(ReviewFrame).join(ReviewJob, ReviewFrame.job_id == ReviewJob.id)
        .where(ReviewJob.task_id == task.id, ReviewJob.stage == JobStage.acceptance, ReviewJob.qc.is_(False))
        .order_by(ReviewFrame.video_frame)
    )).all()  # QC jobs are a second opinion on these frames, not corrections
    next_id = 1 + max([o.get("track_id") or 0 for f in frames for o in (f.proposed + (f.corrected or []))] + [0])
    seeds: dict[int, list[dict]] = {}
    reviewed, dropped = [], []
    for f in frames:
        if f.decision == FrameDecision.rejected:
            dropped.append(f.video_frame)
            continue
        reviewed.append(f.video_frame)
        if f.decision != FrameDecision.fixed:
            seeds[f.video_frame] = [dict(o) for o in f.proposed]
            continue
        objects = []
        for o in f.corrected or []:
            track_id = o.get("track_id")
            if track_id is None:
                track_id, next_id = next_id, next_id + 1
            objects.append({"track_id": track_id, "class": o["class"], "box": o["box"],
                            **({"attributes": o["attributes"]} if o.get("attributes") else {})})
        kept = {o["track_id"] for o in objects}
        objects += [{"track_id": o["track_id"], "gone": True} for o in f.proposed if o["track_id"] not in kept]
        seeds[f.video_frame] = objects
    return seeds, reviewed, dropped


async def qc_reviewed_count(session: AsyncSession, *, dataset_id: uuid.UUID) -> int:
    """Frames of the dataset's accepted QC jobs: reviewed a second time, and charged as such."""
    task = await get_task(session, dataset_id=dataset_id)
    if task is None:
        return 0
    return int(await session.scalar(
        select(func.count(ReviewFrame.id)).join(ReviewJob, ReviewFrame.job_id == ReviewJob.id)
        .where(ReviewJob.task_id == task.id, ReviewJob.stage == JobStage.acceptance, ReviewJob.qc.is_(True))
    ) or 0)


async def decide(
    session: AsyncSession, *, job: ReviewJob, user: User, video_frame: int, decision: FrameDecision,
    corrected: Sequence[dict[str, Any]] | None,
) -> ReviewFrame:
    """`decide_frame` with the frame size and classes of the job's dataset."""
    from src.datasets.draft import service as drafts
    from src.videos.models import Video

    task = await session.get(ReviewTask, job.task_id)
    dataset = await session.get(Dataset, task.dataset_id)
    video = await session.get(Video, dataset.video_id)
    classes = {c.name for c in await drafts.list_classes(session, dataset_id=dataset.id)}
    specs = await drafts.attribute_specs(session, dataset_id=dataset.id)
    return await decide_frame(session, job=job, user=user, video_frame=video_frame, decision=decision,
                              corrected=corrected, width=video.width, height=video.height, classes=classes,
                              specs=specs)


def job_url(job: ReviewJob, task: ReviewTask) -> str:
    """Where "Open" leads: the CVAT job, or the built-in review page."""
    from src.config import get_settings

    base = (get_settings().cvat_url or "").rstrip("/")
    if task.backend == ReviewBackend.cvat and job.cvat_job_id and base:
        return f"{base}/tasks/{task.cvat_task_id}/jobs/{job.cvat_job_id}"
    return f"/review/jobs/{job.id}"


async def job_view(session: AsyncSession, *, job: ReviewJob):
    from src.datasets.draft import service as drafts
    from src.review.schemas import ReviewFrameRead, ReviewJobRead

    task = await session.get(ReviewTask, job.task_id)
    dataset = await session.get(Dataset, task.dataset_id)
    classes = await drafts.list_classes(session, dataset_id=dataset.id)
    frames = await frames_of_job(session, job_id=job.id)
    return ReviewJobRead(
        id=job.id, dataset_id=dataset.id, dataset_name=dataset.name, video_id=dataset.video_id,
        backend=task.backend.value, stage=job.stage, issue=job.issue, assignee_id=job.assignee_id, qc=job.qc,
        frames=[ReviewFrameRead(video_frame=f.video_frame, task_frame=f.task_frame, proposed=f.proposed,
                                corrected=f.corrected, decision=f.decision, attribute_check=f.attribute_check)
                for f in frames],
        classes=[{"id": c.id, "name": c.name, "color": c.color} for c in classes], url=job_url(job, task),
    )


async def assign(session: AsyncSession, *, job: ReviewJob, user_id: uuid.UUID) -> User:
    """Admin: give a job to another reviewer (CVAT is told by the caller, after commit)."""
    from src.exceptions import Unprocessable

    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.role not in (Role.annotator, Role.admin):
        raise Unprocessable("Jobs go to active annotators or admins.")
    if job.stage == JobStage.validation:
        job.reviewer_id = user.id
    else:
        job.assignee_id = user.id
    job.updated_at = utcnow()
    await session.flush()
    return user


async def reviewed_boxes(session: AsyncSession, *, dataset_id: uuid.UUID) -> dict[str, dict[int, list[dict]]]:
    """{"engine": proposals, <annotator email>: final boxes} over the accepted frames (for agreement)."""
    task = await get_task(session, dataset_id=dataset_id)
    out: dict[str, dict[int, list[dict]]] = {"engine": {}}
    if task is None:
        return out
    rows = (await session.execute(
        select(ReviewFrame, User.email).join(ReviewJob, ReviewFrame.job_id == ReviewJob.id)
        .outerjoin(User, User.id == ReviewJob.assignee_id)
        .where(ReviewJob.task_id == task.id, ReviewJob.stage == JobStage.acceptance,
               ReviewFrame.decision != FrameDecision.rejected)
    )).all()
    for frame, email in rows:
        out["engine"][frame.video_frame] = frame.proposed
        final = frame.corrected if frame.decision == FrameDecision.fixed else frame.proposed
        out.setdefault(email or "unassigned", {})[frame.video_frame] = final or []
    return out


# --- QC: double review and agreement -------------------------------------------------------------

DONE_ANNOTATING = (JobStage.validation, JobStage.acceptance)


def final_boxes(frame: ReviewFrame) -> list[dict[str, Any]]:
    """An annotator's answer on a frame: the corrected boxes if fixed, none if rejected, else the proposed."""
    if frame.decision == FrameDecision.rejected:
        return []
    if frame.decision == FrameDecision.fixed:
        return list(frame.corrected or [])
    return list(frame.proposed)


async def qc_agreement(session: AsyncSession, *, task_id: int) -> dict[str, Any]:
    """Agreement of each QC job with the primary job holding its frames, and per annotator pair.

    `jobs`: one row per (primary job, QC job): the two annotators (`a` primary, `b` QC), the
    frames they share and, once both completed annotation (`ready`), the mean box F1, the label
    kappa and the F1 per frame (`agreement.pair_agreement`). `pairs`: the ready rows pooled
    per annotator pair (`agreement.by_pair`)."""
    jobs = {j.id: j for j in await jobs_of_task(session, task_id=task_id)}
    qc_jobs = [j for j in jobs.values() if j.qc]
    if not qc_jobs:
        return {"jobs": [], "pairs": []}
    frames = (await session.scalars(
        select(ReviewFrame).where(ReviewFrame.job_id.in_(jobs)).order_by(ReviewFrame.video_frame))).all()
    primary_frame = {f.video_frame: f for f in frames if not jobs[f.job_id].qc}
    people = {j.assignee_id for j in jobs.values() if j.assignee_id}
    emails = dict((await session.execute(select(User.id, User.email).where(User.id.in_(people)))).all()) if people else {}
    rows, by_person = [], {}
    for qc in qc_jobs:
        shared: dict[int, list[tuple[ReviewFrame, ReviewFrame]]] = {}
        for f in frames:
            if f.job_id == qc.id and f.video_frame in primary_frame:
                shared.setdefault(primary_frame[f.video_frame].job_id, []).append((primary_frame[f.video_frame], f))
        for job_id, pairs in shared.items():
            primary = jobs[job_id]
            row = {"job_id": primary.id, "qc_job_id": qc.id, "a": emails.get(primary.assignee_id, "unassigned"),
                   "b": emails.get(qc.assignee_id, "unassigned"), "stages": [primary.stage.value, qc.stage.value],
                   "ready": primary.stage in DONE_ANNOTATING and qc.stage in DONE_ANNOTATING,
                   "frames": len(pairs), "box_f1": None, "matched_boxes": 0, "label_kappa": None, "frame_f1": {}}
            if row["ready"]:
                a = {p.video_frame: final_boxes(p) for p, _ in pairs}
                b = {q.video_frame: final_boxes(q) for _, q in pairs}
                row |= agreement.pair_agreement(a, b)
                row["frame_f1"] = {str(f): round(agreement.box_f1(a[f], b[f]), 4) for f in sorted(a)}
                if row["a"] != row["b"]:  # (an admin may have reassigned a job to the other person)
                    by_person.setdefault(row["a"], {}).update(a)
                    by_person.setdefault(row["b"], {}).update(b)
            rows.append(row)
    return {"jobs": rows, "pairs": agreement.by_pair(by_person)}


def meets(row: dict[str, Any], threshold: float) -> bool:
    """Box F1, label kappa and every attribute kappa at least `threshold` (no matched boxes: no
    label to disagree on)."""
    attributes = (row.get("attribute_kappa") or {}).values()
    return (row["box_f1"] is not None and row["box_f1"] >= threshold
            and (row["label_kappa"] is None or row["label_kappa"] >= threshold)
            and all(k is None or k >= threshold for k in attributes))


async def check_agreement(session: AsyncSession, redis, *, task_id: int) -> bool:
    """Store the task's QC figures and, with an auto-accept threshold, accept both jobs of each
    ready pair that meets it (no human validation). True when that completed the task."""
    task = await session.get(ReviewTask, task_id)
    if not any(j.qc for j in await jobs_of_task(session, task_id=task_id)):
        return False
    figures = await qc_agreement(session, task_id=task_id)
    auto = set((task.agreement or {}).get("auto_accepted", []))
    finished = False
    if task.auto_accept_agreement is not None:
        for row in figures["jobs"]:
            if not (row["ready"] and meets(row, task.auto_accept_agreement)):
                continue
            for job_id in (row["job_id"], row["qc_job_id"]):
                job = await session.get(ReviewJob, job_id)
                if job.stage == JobStage.validation:
                    finished = await validate(session, redis, job=job, user=None, accept=True) or finished
                    auto.add(job_id)
        figures = await qc_agreement(session, task_id=task_id)
    task.agreement = {**figures, "auto_accepted": sorted(auto), "checked_at": utcnow().isoformat()}
    await session.flush()
    return finished


@dataclass(frozen=True)
class AcceptedPair:
    """What an admin's "Accept both" did, for the audit row the admin domain writes."""

    dataset_id: uuid.UUID
    qc_job_id: int
    accepted_job_ids: list[int]  # the jobs moved to acceptance (those still in validation)
    agreement: list[dict[str, Any]]  # per pair: job_id, a, b, box_f1, label_kappa
    finished: bool  # that completed the task


async def accept_pair(session: AsyncSession, redis, *, qc_job_id: int, admin: User) -> AcceptedPair:
    """Admin: accept a QC job and the primary job(s) it shares frames with, whatever the
    agreement (both must have completed annotation). The caller audits it (src.admin.service).
    On CVAT, once committed, the worker moves those CVAT jobs to acceptance too (``redis``)."""
    qc = await session.get(ReviewJob, qc_job_id)
    if qc is None or not qc.qc:
        raise ReviewJobNotFound()
    figures = await qc_agreement(session, task_id=qc.task_id)
    rows = [r for r in figures["jobs"] if r["qc_job_id"] == qc.id]
    if not rows or not all(r["ready"] for r in rows):
        raise WrongStage("Both jobs must have completed annotation first.")
    finished, accepted = False, []
    for job_id in [qc.id, *(r["job_id"] for r in rows)]:
        job = await session.get(ReviewJob, job_id)
        if job.stage == JobStage.validation:
            finished = await validate(session, redis, job=job, user=admin, accept=True) or finished
            accepted.append(job_id)
    task = await session.get(ReviewTask, qc.task_id)
    agreement_rows = [{k: r[k] for k in ("job_id", "a", "b", "box_f1", "label_kappa")} for r in rows]
    await check_agreement(session, redis, task_id=qc.task_id)
    if redis is not None and task.backend == ReviewBackend.cvat and accepted:
        on_commit(session, lambda: redis.enqueue_job("cvat_accept_jobs", accepted))
    return AcceptedPair(dataset_id=task.dataset_id, qc_job_id=qc.id, accepted_job_ids=accepted,
                        agreement=agreement_rows, finished=finished)


async def review_overview(session: AsyncSession, *, recent_days: int = 14, limit: int = 50) -> list[dict[str, Any]]:
    """Admin: datasets in review and those reviewed in the last `recent_days`, newest first, with
    their jobs (stage, annotator, QC or not) and the QC agreement (computed now)."""
    from datetime import timedelta

    since = utcnow() - timedelta(days=recent_days)
    rows = (await session.execute(
        select(ReviewTask, Dataset).join(Dataset, ReviewTask.dataset_id == Dataset.id)
        .where((ReviewTask.state != TaskState.done) | (ReviewTask.completed_at >= since))
        .order_by(ReviewTask.created_at.desc(), ReviewTask.id.desc()).limit(limit)
    )).all()
    counts = dict((await session.execute(
        select(ReviewFrame.job_id, func.count()).join(ReviewJob, ReviewFrame.job_id == ReviewJob.id)
        .where(ReviewJob.task_id.in_([t.id for t, _ in rows] or [0])).group_by(ReviewFrame.job_id))).all())
    out = []
    for task, dataset in rows:
        jobs = await jobs_of_task(session, task_id=task.id)
        ids = {j.assignee_id for j in jobs} | {j.reviewer_id for j in jobs}
        emails = dict((await session.execute(select(User.id, User.email).where(User.id.in_(ids - {None})))).all())
        figures = await qc_agreement(session, task_id=task.id)
        auto = set((task.agreement or {}).get("auto_accepted", []))
        threshold = task.auto_accept_agreement
        for row in figures["jobs"]:
            row["meets_threshold"] = None if threshold is None or not row["ready"] else meets(row, threshold)
            row["can_accept"] = row["ready"] and any(
                j.stage == JobStage.validation for j in jobs if j.id in (row["job_id"], row["qc_job_id"]))
            row["auto_accepted"] = row["qc_job_id"] in auto
        out.append({
            "dataset_id": dataset.id, "dataset_name": dataset.name, "dataset_state": dataset.state.value,
            "task_state": task.state.value, "backend": task.backend.value, "message": task.message,
            "auto_accept_agreement": threshold, "created_at": task.created_at, "completed_at": task.completed_at,
            "stages": {stage.value: sum(j.stage == stage for j in jobs) for stage in JobStage},
            "jobs": [{"id": j.id, "qc": j.qc, "stage": j.stage.value, "frames": counts.get(j.id, 0),
                      "assignee": emails.get(j.assignee_id), "reviewer": emails.get(j.reviewer_id),
                      "auto_accepted": j.id in auto, "issue": j.issue} for j in jobs],
            "agreement": figures,
        })
    return out
