"""The CVAT backend of review: create the CVAT task, and keep each job in step with CVAT.

`create_in_cvat` is retried (cron, every minute) while CVAT is unreachable; the task stays
`creating` with a message users see, and nothing is lost. `sync_job` reads a job's stage
and state in CVAT and applies it through the same service functions as the built-in page:

    CVAT annotation + completed          -> complete_annotation; CVAT job moved to validation
    CVAT validation + rejected           -> validate(accept=False, issue=<CVAT issue text>);
      (or back in annotation, not done)     CVAT job moved back to annotation
    CVAT acceptance, validation+completed -> import the job's boxes, validate(accept=True)

It always reads CVAT's current state, so a webhook, its replay and the poll do the same
harmless thing.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.datasets.draft import service as drafts
from src.auth.models import Role, User
from src.datasets.models import Dataset
from src.review import cvat, service
from src.review.cvat import CvatConfig, CvatUnavailable
from src.review.models import FrameDecision, JobStage, ReviewBackend, ReviewFrame, ReviewJob, ReviewTask, TaskState
from src.videos.models import Video
from src.vision.attributes import AttributeSpec
from src.vision.formats.cvat import cvat_attributes, cvat_values, from_cvat_values

log = logging.getLogger("forge.review")
UNREACHABLE = "CVAT is unreachable; retrying every minute."
BOX_TOLERANCE = 0.5  # pixels: a box moved less than this is the proposed box


def frame_name(video_frame: int, qc: bool = False) -> str:
    """The CVAT image name of a hard frame (a QC job's copy of it gets its own name)."""
    return f"frame_{video_frame:06d}{'_qc' if qc else ''}.jpg"


def render_frames(video_path: str, frames: list[int], out_dir: str, names: list[str] | None = None) -> list[str]:
    """Write one JPEG per frame (full resolution, in the given order, named ``names`` or
    ``frame_name``); runs in the process pool."""
    import cv2

    from src.vision.video import read_frame

    paths = []
    for i, n in enumerate(frames):
        path = Path(out_dir) / (names[i] if names else frame_name(n))
        ok, data = cv2.imencode(".jpg", read_frame(video_path, n), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise ValueError(f"frame {n} could not be encoded")
        path.write_bytes(data.tobytes())
        paths.append(str(path))
    return paths


async def task_frames(session: AsyncSession, *, task_id: int) -> list[ReviewFrame]:
    query = (select(ReviewFrame).join(ReviewJob, ReviewFrame.job_id == ReviewJob.id)
             .where(ReviewJob.task_id == task_id).order_by(ReviewFrame.task_frame))
    return list((await session.scalars(query)).all())


async def cvat_people(session: AsyncSession) -> list[User]:
    """Reviewers who have a CVAT account, in the order jobs are dealt out."""
    return [u for u in await service.reviewers(session) if u.cvat_username]


async def create_in_cvat(session: AsyncSession, *, task_id: int, config: CvatConfig, render) -> str:
    """Create the CVAT task of a review task in `creating` (locked; skipped if another worker has it).

    `render(video_path, frames, out_dir)` makes the JPEGs (the worker passes its process pool)."""
    task = await session.scalar(select(ReviewTask).where(ReviewTask.id == task_id).with_for_update(skip_locked=True))
    if task is None or task.backend != ReviewBackend.cvat:
        return "skipped"
    if task.state != TaskState.creating:
        return "exists"
    dataset = await session.get(Dataset, task.dataset_id)
    video = await session.get(Video, dataset.video_id)
    classes = await drafts.list_classes(session, dataset_id=dataset.id)
    specs = await drafts.attribute_specs(session, dataset_id=dataset.id)
    frames = await task_frames(session, task_id=task.id)  # in task-frame order: each job's frames are consecutive
    jobs = await service.jobs_of_task(session, task_id=task.id)
    qc = {j.id for j in jobs if j.qc}
    names = [frame_name(f.video_frame, qc=f.job_id in qc) for f in frames]
    mapping: dict[int, list[str]] = {}  # our job -> its image names, jobs in task-frame order
    for f, name in zip(frames, names):
        mapping.setdefault(f.job_id, []).append(name)
    from src.storage import get_storage

    with tempfile.TemporaryDirectory() as tmp:
        images = await render(str(get_storage().local_path(video.storage_key)), [f.video_frame for f in frames], tmp, names)
        xml = cvat.annotations_xml([{"name": name, "width": video.width, "height": video.height,
                                     "boxes": [_with_cvat_values(o, specs) for o in f.proposed]}
                                    for f, name in zip(frames, names)])
        try:
            created = await cvat.call(
                config, cvat.create_task, name=f"forge-review-{task.id}", project_name=f"Data Forge · {dataset.name}",
                labels=[(c.name, c.color) for c in classes], images=[Path(p) for p in images], annotations=xml,
                jobs=list(mapping.values()), project_id=task.cvat_project_id,
                attributes={c.name: [item for a in specs if a.class_name == c.name for item in cvat_attributes(a)]
                            for c in classes})
        except CvatUnavailable:
            task.message = UNREACHABLE
            return "retry"
        except Exception as error:  # noqa: BLE001 - a refusal is shown and retried like an outage
            log.exception("CVAT refused review task %s", task.id)
            task.message = f"CVAT refused the task ({error.__class__.__name__}); retrying every minute."
            return "retry"
    task.cvat_project_id, task.cvat_task_id = created["project_id"], created["task_id"]
    by_frame = {f.task_frame: f.job_id for f in frames}
    ours = {j.id: j for j in jobs}
    for remote in created["jobs"]:
        ours[by_frame[remote["start_frame"]]].cvat_job_id = remote["id"]
    people = await cvat_people(session)
    _deal_jobs(jobs, frames, people, await service.waiting_jobs(session, [u.id for u in people], besides=task.id))
    task.state, task.message = TaskState.open, None
    await session.flush()
    for job in jobs:
        await push_assignee(session, job=job, config=config)
    return "open"


def _deal_jobs(jobs: list[ReviewJob], frames: list[ReviewFrame], people: list[User], waiting: dict) -> None:
    """Primary jobs to the reviewers with a CVAT account, the fewest jobs waiting first
    (src.review.service.deal); a QC job to the one after the annotator of the primary job
    holding its frames (never the same person)."""
    if not people:
        return
    ids = [u.id for u in people]
    ours = {j.id: j for j in jobs}
    primaries = [j for j in jobs if not j.qc]
    for job, who in zip(primaries, service.deal(ids, len(primaries), waiting)):
        job.assignee_id = who
    holder = {f.video_frame: f.job_id for f in frames if not ours[f.job_id].qc}  # frame -> its primary job
    for job in jobs:
        if job.qc and len(ids) >= 2:
            first = next(f.video_frame for f in frames if f.job_id == job.id)
            annotator = ours[holder[first]].assignee_id
            job.assignee_id = ids[(ids.index(annotator) + 1) % len(ids)]


async def push_accepted(jobs: list[ReviewJob], *, config: CvatConfig) -> None:
    """Move the CVAT jobs of jobs accepted here (QC agreement, or an admin) to acceptance too,
    so nobody validates them again in CVAT."""
    for job in jobs:
        if job.cvat_job_id is not None:
            await cvat.call(config, cvat.update_job, job.cvat_job_id, stage="acceptance", state="completed")


async def push_assignee(session: AsyncSession, *, job: ReviewJob, config: CvatConfig) -> bool:
    """Assign the CVAT job to the job's annotator (validation: its reviewer) by CVAT username."""
    person_id = job.reviewer_id if job.stage == JobStage.validation else job.assignee_id
    person = await session.get(User, person_id) if person_id else None
    if job.cvat_job_id is None or person is None or not person.cvat_username:
        return False
    try:
        await cvat.call(config, cvat.assign_job, job.cvat_job_id, person.cvat_username)
    except CvatUnavailable:
        log.warning("CVAT job %s not assigned to %s yet (CVAT unreachable)", job.cvat_job_id, person.cvat_username)
        return False
    return True


async def pick_reviewer(session: AsyncSession, *, job: ReviewJob) -> User | None:
    """A second annotator with a CVAT account, else an admin with one."""
    people = [u for u in await cvat_people(session) if u.id != job.assignee_id]
    if not people:
        admins = (await session.scalars(select(User).where(User.role == Role.admin, User.is_active))).all()
        people = [u for u in admins if u.cvat_username and u.id != job.assignee_id]
    return people[job.id % len(people)] if people else None


def _with_cvat_values(o: dict[str, Any], specs: list[AttributeSpec]) -> dict[str, Any]:
    """A proposed box with its attribute values as CVAT attributes (`cvat_attributes`)."""
    own = {a.name: a for a in specs if a.class_name == o["class"]}
    values = {}
    for name, value in (o.get("attributes") or {}).items():
        if name in own:
            values.update(cvat_values(own[name], value))
    return {**o, "cvat_attributes": values} if values else o


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(o):
        return (o.get("track_id") or 0, o["class"])

    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key)):
        if key(x) != key(y) or any(abs(p - q) > BOX_TOLERANCE for p, q in zip(x["box"], y["box"])):
            return False
        if (x.get("attributes") or {}) != (y.get("attributes") or {}):  # an annotator changed a value
            return False
    return True


def _clean(objects: list[dict[str, Any]], *, width: int, height: int, classes: set[str],
           specs: list[AttributeSpec] = ()) -> list[dict[str, Any]]:
    """CVAT's boxes as corrections: inside the frame, known classes, values read back from the
    CVAT attributes (src.vision.formats.cvat.from_cvat_values)."""
    out, seen = [], set()
    for o in objects:
        x1, y1, x2, y2 = o["box"]
        box = [round(max(0.0, x1), 2), round(max(0.0, y1), 2), round(min(float(width), x2), 2), round(min(float(height), y2), 2)]
        if o["class"] not in classes or box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        track_id = o.get("track_id") if o.get("track_id") not in seen else None  # a copied box is a new object
        seen.add(track_id)
        item = {"track_id": track_id, "class": o["class"], "box": box}
        values = from_cvat_values(list(specs), o["class"], o.get("cvat_attributes") or {})
        if values:
            item["attributes"] = values
        out.append(item)
    return out


async def import_annotations(session: AsyncSession, *, job: ReviewJob, boxes: dict[int, list[dict[str, Any]]]) -> None:
    """CVAT boxes -> ReviewFrame.corrected: `fixed` where they differ from the proposal, else `accepted`."""
    task = await session.get(ReviewTask, job.task_id)
    dataset = await session.get(Dataset, task.dataset_id)
    video = await session.get(Video, dataset.video_id)
    classes = {c.name for c in await drafts.list_classes(session, dataset_id=dataset.id)}
    specs = await drafts.attribute_specs(session, dataset_id=dataset.id)
    for frame in await service.frames_of_job(session, job_id=job.id):
        objects = _clean(boxes.get(frame.task_frame, []), width=video.width, height=video.height, classes=classes,
                         specs=specs)
        proposed = [{"track_id": o.get("track_id"), "class": o["class"], "box": o["box"],
                     **({"attributes": o["attributes"]} if o.get("attributes") else {})} for o in frame.proposed]
        if _same(objects, proposed):
            frame.decision, frame.corrected = FrameDecision.accepted, None
        else:
            frame.decision, frame.corrected = FrameDecision.fixed, objects
    await session.flush()


async def sync_job(session: AsyncSession, redis, *, job: ReviewJob, config: CvatConfig) -> bool:
    """Bring one job in step with CVAT. Returns True when this completed the whole review (the
    dataset then resumes once this commits). Raises CvatUnavailable."""
    if job.cvat_job_id is None or job.stage == JobStage.acceptance:
        return False
    remote = await cvat.call(config, cvat.job_state, job.cvat_job_id)
    stage, state = remote["stage"], remote["state"]
    done = stage == "acceptance" or (stage == "validation" and state == "completed")
    if job.stage == JobStage.annotation and (done or stage == "validation" or state == "completed"):
        if stage == "validation" and state == "rejected":
            return False  # our rejection not yet pushed back to CVAT's annotation stage
        await service.complete_annotation(session, job=job, user=None)
        jobs = await service.jobs_of_task(session, task_id=job.task_id)
        if any(j.qc for j in jobs):
            # the agreement compares the two annotations as completed, before any validation
            await import_annotations(session, job=job, boxes=await cvat.call(config, cvat.job_annotations, job.cvat_job_id))
            before = {j.id for j in jobs if j.stage == JobStage.acceptance}
            finished = await service.check_agreement(session, redis, task_id=job.task_id)
            await push_accepted([j for j in jobs if j.stage == JobStage.acceptance and j.id not in before], config=config)
            if job.stage == JobStage.acceptance:
                return finished
        if not done:
            reviewer = await pick_reviewer(session, job=job)
            job.reviewer_id = reviewer.id if reviewer else None
            await session.flush()
            await cvat.call(config, cvat.update_job, job.cvat_job_id, stage="validation", state="new",
                            assignee=reviewer.cvat_username if reviewer else None)
            return False
    if job.stage != JobStage.validation:
        return False
    if done:
        boxes = await cvat.call(config, cvat.job_annotations, job.cvat_job_id)
        await import_annotations(session, job=job, boxes=boxes)
        return await service.validate(session, redis, job=job, user=None, accept=True)
    if (stage == "validation" and state == "rejected") or (stage == "annotation" and state != "completed"):
        await service.validate(session, redis, job=job, user=None, accept=False,
                               issue=remote["issue"] or "Rejected in CVAT (no issue text).")
        annotator = await session.get(User, job.assignee_id) if job.assignee_id else None
        await cvat.call(config, cvat.update_job, job.cvat_job_id, stage="annotation", state="in progress",
                        assignee=annotator.cvat_username if annotator else None)
        return False
    if stage == "annotation" and state == "completed":  # our earlier move to validation did not reach CVAT
        reviewer = await session.get(User, job.reviewer_id) if job.reviewer_id else None
        await cvat.call(config, cvat.update_job, job.cvat_job_id, stage="validation", state="new",
                        assignee=reviewer.cvat_username if reviewer else None)
    return False
