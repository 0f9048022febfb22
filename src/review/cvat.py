"""A small synchronous adapter over cvat-sdk: the only module that talks to CVAT.

The worker calls these functions off the event loop (`call`, with a timeout and a few
retries). Frames are CVAT task frames (`ReviewFrame.task_frame`); boxes are
`{"track_id": int | None, "class": str, "box": [x1, y1, x2, y2]}` in pixels, and a box's
track id travels through CVAT as the shape's group id (0 = none). The dataset's attributes go
into the labels' specs (`attributes`: CVAT's name / mutable / input_type / default_value /
values, from src.vision.formats.cvat.cvat_attributes), the pre-annotations carry a box's
values as `<attribute>` elements, and `job_annotations` answers each box's values by name
(`"cvat_attributes": {name: text}`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3.exceptions
from cvat_sdk import Client
from cvat_sdk.api_client import exceptions as api_exceptions
from cvat_sdk.api_client import models
from cvat_sdk.core.client import Config
from cvat_sdk.core.helpers import get_paginated_collection

log = logging.getLogger("forge.review.cvat")
T = TypeVar("T")
WEBHOOK_PATH = "/api/v1/review/cvat/webhook"
WEBHOOK_EVENTS = ["update:job", "update:task"]


class CvatUnavailable(Exception):
    """CVAT could not be reached or answered with a server error: try again later."""


@dataclass(frozen=True)
class CvatConfig:
    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    org: str | None = None
    webhook_secret: str = ""
    base_url: str = "http://127.0.0.1:8000"
    timeout_s: float = 120.0
    retries: int = 3
    backoff_s: float = 1.0
    status_check_period: float = 1.0

    @classmethod
    def from_settings(cls, settings=None) -> CvatConfig | None:
        from src.config import get_settings

        s = settings or get_settings()
        if not s.cvat_url:
            return None
        secret = lambda v: v.get_secret_value() if v else None  # noqa: E731
        return cls(url=s.cvat_url, username=s.cvat_username, password=secret(s.cvat_password),
                   token=secret(s.cvat_token), org=s.cvat_org, webhook_secret=secret(s.cvat_webhook_secret) or "",
                   base_url=s.base_url)

    @property
    def webhook_url(self) -> str:
        return self.base_url.rstrip("/") + WEBHOOK_PATH


def _transient(error: BaseException) -> bool:
    if isinstance(error, (urllib3.exceptions.HTTPError, OSError, TimeoutError, CvatUnavailable)):
        return True
    return isinstance(error, api_exceptions.ApiException) and (error.status or 0) >= 500


async def call(config: CvatConfig, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(config, ...)` in a thread with a timeout, retrying transient failures with backoff.
    Raises CvatUnavailable when CVAT stays unreachable."""
    delay = config.backoff_s
    for attempt in range(1, config.retries + 1):
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, config, *args, **kwargs), config.timeout_s)
        except Exception as error:  # noqa: BLE001 - sorted just below
            if not _transient(error):
                raise
            log.warning("CVAT call %s failed (try %s/%s): %r", fn.__name__, attempt, config.retries, error)
            if attempt == config.retries:
                raise CvatUnavailable(str(error)) from error
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


@contextmanager
def client(config: CvatConfig) -> Iterator[Client]:
    cache = Path(tempfile.gettempdir()) / "forge-cvat-cache"
    with Client(config.url, config=Config(status_check_period=config.status_check_period, cache_dir=cache)) as c:
        if config.org:
            c.organization_slug = config.org
        if config.username and config.password:
            c.login((config.username, config.password))
        elif config.token:
            c.api_client.set_default_header("Authorization", f"Token {config.token}")
        yield c


def annotations_xml(frames: list[dict[str, Any]]) -> bytes:
    """CVAT for images 1.1 from [{"name", "width", "height", "boxes": [...]}], one entry per task frame;
    a box's `"cvat_attributes": {name: text}` become its `<attribute>` elements."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    for number, frame in enumerate(frames):
        image = ET.SubElement(root, "image", id=str(number), name=frame["name"],
                              width=str(frame["width"]), height=str(frame["height"]))
        for o in frame["boxes"]:
            x1, y1, x2, y2 = o["box"]
            box = ET.SubElement(image, "box", label=o["class"], source="auto", occluded="0", z_order="0",
                                xtl=f"{x1:.2f}", ytl=f"{y1:.2f}", xbr=f"{x2:.2f}", ybr=f"{y2:.2f}",
                                group_id=str(o.get("track_id") or 0))
            for name, text in (o.get("cvat_attributes") or {}).items():
                ET.SubElement(box, "attribute", name=name).text = text
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _label(name: str, color: str, attributes: list[dict[str, Any]]):
    specs = [models.AttributeRequest(name=a["name"], mutable=bool(a["mutable"]), input_type=models.InputTypeEnum(a["input_type"]),
                                     default_value=a["default_value"], values=list(a["values"])) for a in attributes]
    return models.PatchedLabelRequest(name=name, color=color, attributes=specs) if specs else \
        models.PatchedLabelRequest(name=name, color=color)


def _project(c: Client, *, project_id: int | None, name: str, labels: list[tuple[str, str]],
             attributes: dict[str, list[dict[str, Any]]] | None = None):
    if project_id:
        try:
            return c.projects.retrieve(project_id)
        except api_exceptions.NotFoundException:
            log.warning("CVAT project %s is gone; creating a new one", project_id)
    attributes = attributes or {}
    spec = models.ProjectWriteRequest(name=name, labels=[_label(n, col, attributes.get(n, [])) for n, col in labels])
    return c.projects.create(spec)


def _webhook(c: Client, config: CvatConfig, project_id: int) -> None:
    api = c.api_client.webhooks_api
    existing = get_paginated_collection(api.list_endpoint, project_id=project_id)
    if any(w.target_url == config.webhook_url for w in existing):
        return
    api.create(models.WebhookWriteRequest(
        target_url=config.webhook_url, type=models.WebhookType("project"), project_id=project_id,
        content_type=models.WebhookContentType("application/json"), secret=config.webhook_secret,
        events=WEBHOOK_EVENTS, is_active=True, enable_ssl=config.webhook_url.startswith("https"),
        description="Data Forge review sync"))


def create_task(
    config: CvatConfig, *, name: str, labels: list[tuple[str, str]], images: list[Path], annotations: bytes,
    jobs: list[list[str]], project_id: int | None = None, project_name: str | None = None,
    attributes: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Create (or find, after a crash) the task of `images` in predefined order, split into
    `jobs` (file names per job, consecutive in that order: CVAT's job_file_mapping), with
    pre-annotations and a project webhook. `attributes`: label name -> CVAT attribute specs.
    Returns {"project_id", "task_id", "jobs": [{"id", "start_frame", "stop_frame"}]}."""
    with client(config) as c:
        project = _project(c, project_id=project_id, name=project_name or name, labels=labels, attributes=attributes)
        _webhook(c, config, project.id)
        task = None
        for found in get_paginated_collection(c.api_client.tasks_api.list_endpoint, name=name, project_id=project.id):
            if found.size == len(images) and task is None:
                task = c.tasks.retrieve(found.id)  # an earlier attempt got this far
            else:
                c.tasks.remove_by_ids([found.id])  # half-made by an earlier attempt
        if task is None:
            with tempfile.TemporaryDirectory() as tmp:
                xml = Path(tmp) / "annotations.xml"
                xml.write_bytes(annotations)
                task = c.tasks.create_from_data(
                    models.TaskWriteRequest(name=name, project_id=project.id),
                    resources=images,
                    data_params={"sorting_method": "predefined", "image_quality": 95, "job_file_mapping": jobs},
                    annotation_path=str(xml), annotation_format="CVAT 1.1",
                    status_check_period=config.status_check_period)
        made = [{"id": j.id, "start_frame": j.start_frame, "stop_frame": j.stop_frame} for j in task.get_jobs()]
        return {"project_id": project.id, "task_id": task.id, "jobs": sorted(made, key=lambda j: j["start_frame"])}


def _text(value: Any) -> str:
    """SDK enums come back as model objects or plain strings depending on the call."""
    return str(getattr(value, "value", value))


def _user_id(c: Client, username: str) -> int | None:
    users = get_paginated_collection(c.api_client.users_api.list_endpoint, username=username)
    return users[0].id if users else None


def update_job(config: CvatConfig, job_id: int, *, stage: str | None = None, state: str | None = None,
               assignee: str | None = None) -> None:
    """Move a job to a stage/state and (re)assign it to a CVAT username (unknown names are skipped)."""
    with client(config) as c:
        values: dict[str, Any] = {}
        if assignee:
            user_id = _user_id(c, assignee)
            if user_id is None:
                log.warning("CVAT has no user %r; job %s left unassigned", assignee, job_id)
            else:
                values["assignee"] = user_id
        if stage:
            values["stage"] = models.JobStage(stage)
        if state:
            values["state"] = models.OperationStatus(state)
        if values:
            c.jobs.retrieve(job_id).update(models.PatchedJobWriteRequest(**values))


def assign_job(config: CvatConfig, job_id: int, cvat_username: str) -> None:
    update_job(config, job_id, assignee=cvat_username)


def job_state(config: CvatConfig, job_id: int) -> dict[str, Any]:
    """{"stage", "state", "issue"}: issue is the text of the job's unresolved issues (None if none)."""
    with client(config) as c:
        job = c.jobs.retrieve(job_id)
        texts = []
        for issue in job.get_issues():
            if not issue.resolved:
                texts += [comment.message for comment in issue.get_comments() if comment.message]
        return {"stage": _text(job.stage), "state": _text(job.state), "issue": "\n".join(texts) or None}


def job_annotations(config: CvatConfig, job_id: int) -> dict[int, list[dict[str, Any]]]:
    """{task frame: [{"track_id", "class", "box", "cvat_attributes": {name: text}}]} of the job's
    rectangles, every frame of the job present."""
    with client(config) as c:
        job = c.jobs.retrieve(job_id)
        labels = job.get_labels()
        names = {label.id: label.name for label in labels}
        specs = {a.id: a.name for label in labels for a in (getattr(label, "attributes", None) or [])}
        out: dict[int, list[dict[str, Any]]] = {f: [] for f in range(job.start_frame, job.stop_frame + 1)}
        for shape in job.get_annotations().shapes:
            if _text(shape.type) != "rectangle" or getattr(shape, "outside", False):
                continue
            x1, y1, x2, y2 = (float(v) for v in shape.points[:4])
            out.setdefault(shape.frame, []).append({
                "track_id": shape.group or None, "class": names.get(shape.label_id, "?"),
                "box": [min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)],
                "cvat_attributes": {specs[a.spec_id]: a.value for a in (getattr(shape, "attributes", None) or [])
                                    if a.spec_id in specs}})
        return out
