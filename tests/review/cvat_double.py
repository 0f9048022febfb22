"""A small in-memory CVAT server (REST API 2.20) for tests, driven by the real cvat-sdk.

It serves the endpoints the review flow uses on a real port, checks every request and
every response against ../shared/cvat/schema.yml with openapi-core (a mismatch is
recorded in `errors` and answered with 500, and the fixture fails the test), and lets a
test act in CVAT: change boxes, complete, reject with an issue, accept, send webhooks.

Not in the schema, so not validated: the TUS chunk requests (HEAD/PATCH
`/api/tasks/{id}/annotations/<file id>`), which the schema describes only in prose.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.validation.request.validators import V30RequestParametersValidator
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.conftest import SHARED_DATA

SCHEMA = SHARED_DATA.parent / "cvat" / "schema.yml"  # ../shared/cvat/schema.yml, or beside FORGE_SHARED_DATA
JSON = "application/vnd.cvat+json"
NOW = "2024-09-01T12:00:00Z"
# headers the SDK sends empty although the schema types them boolean (CVAT only checks presence)
FLAG_HEADERS = ("Upload-Start", "Upload-Multiple", "Upload-Finish")
_OPENAPI: OpenAPI | None = None


def openapi() -> OpenAPI:
    global _OPENAPI
    if _OPENAPI is None:
        config = Config(extra_media_type_deserializers={JSON: json.loads})
        _OPENAPI = OpenAPI.from_file_path(str(SCHEMA), config=config)
    return _OPENAPI


def _validate_request(request: _Req, *, full: bool) -> None:
    """The whole request, or (`full=False`) its path, query and headers only."""
    if full:
        return openapi().validate_request(request)
    V30RequestParametersValidator(openapi().spec).validate(request)


@dataclass
class _Req:
    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    body: bytes | None
    content_type: str


@dataclass
class _Resp:
    status_code: int
    data: bytes | None
    content_type: str
    headers: Headers = field(default_factory=Headers)


class _Cookies(dict):
    """Extra headers that are Set-Cookie lines, one per cookie."""

    def items(self):
        return [("Set-Cookie", f"{k}={v}; Path=/") for k, v in super().items()]


class Down(Exception):
    """Raised by a route to answer 503, as a CVAT behind a failing proxy would."""


class CvatDouble:
    def __init__(self, *, username: str = "forge-bot", password: str = "bot-password-1"):
        self.username, self.password = username, password
        self.token = uuid.uuid4().hex
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.users: dict[int, dict] = {}
        self.projects: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.jobs: dict[int, dict] = {}
        self.shapes: dict[int, list[dict]] = {}  # task id -> LabeledShape dicts (absolute frames)
        self.webhooks: dict[int, dict] = {}
        self.issues: dict[int, dict] = {}
        self.comments: dict[int, dict] = {}
        self.uploads: dict[str, dict] = {}  # TUS file id -> {"length", "data", "filename"}
        self.requests_rq: dict[str, dict] = {}
        self.label_ids: dict[int, dict] = {}
        self._ids: dict[str, int] = {}
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        for name in (username, "anna", "rob", "boss"):
            self.add_user(name)

    # ---- life cycle ---------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                double._handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_HEAD = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _next(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_user(self, username: str) -> dict:
        uid = self._next("user")
        self.users[uid] = {"url": f"/api/users/{uid}", "id": uid, "username": username, "first_name": "",
                           "last_name": "", "email": f"{username}@cvat.local", "groups": ["user"],
                           "is_staff": False, "is_superuser": False, "is_active": True,
                           "last_login": NOW, "date_joined": NOW}
        return self.users[uid]

    def user(self, username: str) -> dict:
        return next(u for u in self.users.values() if u["username"] == username)

    # ---- the HTTP plumbing --------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        method = h.command.lower()
        with self.lock:
            self.requests.append((h.command, parts.path))
            self._path = parts.path
            headers = Headers([(k, v) for k, v in h.headers.items()])
            for flag in FLAG_HEADERS:
                if flag in headers and headers[flag] == "":
                    headers[flag] = "true"
            cookies = {}
            for chunk in (h.headers.get("Cookie") or "").split(";"):
                if "=" in chunk:
                    k, v = chunk.strip().split("=", 1)
                    cookies[k] = v
            query = parse_qs(parts.query, keep_blank_values=True)
            request = _Req(self.url, parts.path, method,
                           RequestParameters(query=ImmutableMultiDict([(k, v) for k, vs in query.items() for v in vs]),
                                             header=headers, cookie=ImmutableMultiDict(cookies)),
                           body or None, (h.headers.get("Content-Type") or "").lower())
            tus_chunk = re.fullmatch(r"/api/tasks/\d+/annotations/[0-9a-f-]{36}", parts.path)
            # TUS steps: the schema describes them in prose only (no 200 for Upload-Multiple,
            # no empty 202 for Upload-Start, no Location for Upload-Length), so their answers
            # are not validated; multipart form fields arrive as strings, so only parameters are.
            tus_step = tus_chunk or any(k in h.headers for k in ("Upload-Start", "Upload-Multiple", "Upload-Length"))
            # CVAT >= 2.3 answers /server/about anonymously (the SDK relies on it); the schema lists auth
            full = parts.path != "/api/server/about" and "Upload-Multiple" not in h.headers
            if not tus_chunk:
                try:
                    _validate_request(request, full=full)
                except Exception as error:  # noqa: BLE001 - any validation failure is a test failure
                    self._fail(f"request {h.command} {h.path}: {error!r} {_detail(error)}")
                    return self._send(h, 500, {"detail": "invalid request"}, validate=None)
            if h.headers.get("Authorization") != f"Token {self.token}" and parts.path not in (
                    "/api/server/about", "/api/auth/login"):
                return self._send(h, 401, {"detail": "Authentication credentials were not provided."}, validate=None)
            q = {k: v[-1] for k, v in query.items()}
            try:
                status, payload, extra = self._route(method, parts.path, q, h.headers, body)
            except Down:
                return self._send(h, 503, {"detail": "unavailable"}, validate=None)
            self._send(h, status, payload, validate=None if tus_step else request, extra=extra)

    def _send(self, h, status: int, payload: Any, *, validate: _Req | None, extra: dict | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        ctype = JSON if payload is not None else ""
        headers = Headers(([("Content-Type", ctype)] if ctype else []) + list((extra or {}).items()))
        if validate is not None:
            try:
                openapi().validate_response(validate, _Resp(status, data or None, ctype, headers))
            except Exception as error:  # noqa: BLE001
                self._fail(f"response {validate.method} {validate.path} {status}: {error!r} {_detail(error)}")
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _fail(self, message: str) -> None:
        self.errors.append(message)

    # ---- routes -------------------------------------------------------------------------
    def _route(self, method: str, path: str, q: dict, headers, body: bytes):
        routes = [
            ("get", r"/api/server/about", self._about),
            ("post", r"/api/auth/login", self._login),
            ("get", r"/api/users/self", lambda: (200, self.user(self.username), None)),
            ("get", r"/api/users", lambda: self._page([u for u in self.users.values()
                                                       if q.get("username") in (None, u["username"])], q)),
            ("get", r"/api/projects", lambda: self._page([self._project(p) for p in self.projects.values()
                                                          if q.get("name") in (None, p["name"])], q)),
            ("post", r"/api/projects", lambda: self._create_project(json.loads(body))),
            ("get", r"/api/projects/(\d+)", lambda i: (200, self._project(self.projects[int(i)]), None)),
            ("get", r"/api/labels", lambda: self._page(self._labels(q), q)),
            ("get", r"/api/tasks", lambda: self._page([self._task(t) for t in self.tasks.values()
                                                       if q.get("name") in (None, t["name"])
                                                       and str(t["project_id"]) == q.get("project_id", str(t["project_id"]))], q)),
            ("post", r"/api/tasks", lambda: self._create_task(json.loads(body))),
            ("get", r"/api/tasks/(\d+)", lambda i: (200, self._task(self.tasks[int(i)]), None)),
            ("delete", r"/api/tasks/(\d+)", lambda i: self._delete_task(int(i))),
            ("post", r"/api/tasks/(\d+)/data/", lambda i: self._data(int(i), headers, body)),
            ("post", r"/api/tasks/(\d+)/annotations/", lambda i: self._tus_post(int(i), q, headers)),
            ("head", r"/api/tasks/\d+/annotations/([0-9a-f-]{36})", lambda f: (200, None, {
                "Upload-Offset": str(len(self.uploads[f]["data"])), "Tus-Resumable": "1.0.0"})),
            ("patch", r"/api/tasks/\d+/annotations/([0-9a-f-]{36})", lambda f: self._tus_patch(f, headers, body)),
            ("get", r"/api/requests/([^/]+)", lambda rq: (200, self.requests_rq[rq], None)),
            ("get", r"/api/jobs", lambda: self._page([self._job(j) for j in self.jobs.values()
                                                      if str(j["task_id"]) == q.get("task_id", str(j["task_id"]))], q)),
            ("get", r"/api/jobs/(\d+)", lambda i: (200, self._job(self.jobs[int(i)]), None)),
            ("patch", r"/api/jobs/(\d+)", lambda i: self._patch_job(int(i), json.loads(body))),
            ("get", r"/api/jobs/(\d+)/annotations/", lambda i: (200, self._job_annotations(int(i)), None)),
            ("get", r"/api/issues", lambda: self._page([self._issue(x) for x in self.issues.values()
                                                        if str(x["job"]) == q.get("job_id", str(x["job"]))], q)),
            ("get", r"/api/comments", lambda: self._page([c for c in self.comments.values()
                                                          if str(c["issue"]) == q.get("issue_id", str(c["issue"]))], q)),
            ("get", r"/api/webhooks", lambda: self._page([w for w in self.webhooks.values()
                                                          if str(w["project_id"]) == q.get("project_id", str(w["project_id"]))], q)),
            ("post", r"/api/webhooks", lambda: self._create_webhook(json.loads(body))),
        ]
        for verb, pattern, fn in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                try:
                    return fn(*match.groups())
                except KeyError:
                    return 404, {"detail": "Not found."}, None
        self._fail(f"no route for {method.upper()} {path}")
        return 404, {"detail": "Not found."}, None

    def _page(self, items: list, q: dict):
        size, page = int(q.get("page_size", 10)), int(q.get("page", 1))
        more = page * size < len(items)
        nxt = f"{self.url}{self._path}?{urlencode({**q, 'page': page + 1, 'page_size': size})}" if more else None
        return 200, {"count": len(items), "next": nxt, "previous": None,
                     "results": items[(page - 1) * size: page * size]}, None

    def _about(self):
        return 200, {"name": "Computer Vision Annotation Tool", "description": "test double", "version": "2.20.0"}, None

    def _login(self):
        return 200, {"key": self.token}, _Cookies(sessionid="s1", csrftoken="c1")

    def _basic(self, user: dict) -> dict:
        return {k: user[k] for k in ("url", "id", "username", "first_name", "last_name")}

    def _create_project(self, data: dict):
        pid = self._next("project")
        labels = []
        for label in data.get("labels", []):
            lid = self._next("label")
            attributes = []
            for spec in label.get("attributes", []):  # CVAT gives every attribute spec an id
                attributes.append({"id": self._next("attribute"), **{k: spec[k] for k in (
                    "name", "mutable", "input_type", "default_value", "values") if k in spec}})
            self.label_ids[lid] = {"id": lid, "name": label["name"], "color": label.get("color", "#ff0000"),
                                   "attributes": attributes, "type": "rectangle", "svg": "", "sublabels": [],
                                   "project_id": pid, "task_id": None, "parent_id": None, "has_parent": False}
            labels.append(lid)
        self.projects[pid] = {"id": pid, "name": data["name"], "labels": labels}
        return 201, self._project(self.projects[pid]), None

    def _project(self, p: dict) -> dict:
        return {"url": f"{self.url}/api/projects/{p['id']}", "id": p["id"], "name": p["name"],
                "owner": self._basic(self.user(self.username)), "guide_id": None,
                "bug_tracker": "", "task_subsets": [], "created_date": NOW, "updated_date": NOW,
                "status": "annotation", "dimension": "2d", "organization": None, "assignee_updated_date": None,
                "tasks": {"count": sum(t["project_id"] == p["id"] for t in self.tasks.values()),
                          "url": f"{self.url}/api/tasks?project_id={p['id']}"},
                "labels": {"url": f"{self.url}/api/labels?project_id={p['id']}"}}

    def _labels(self, q: dict) -> list[dict]:
        project_id = q.get("project_id")
        if "job_id" in q:
            project_id = str(self.tasks[self.jobs[int(q["job_id"])]["task_id"]]["project_id"])
        elif "task_id" in q:
            project_id = str(self.tasks[int(q["task_id"])]["project_id"])
        return [label for label in self.label_ids.values() if project_id in (None, str(label["project_id"]))]

    def _create_task(self, data: dict):
        tid = self._next("task")
        self.tasks[tid] = {"id": tid, "name": data["name"], "project_id": data.get("project_id"),
                           "segment_size": data.get("segment_size") or 0, "images": [], "size": 0,
                           "sorting_method": None}
        self.shapes[tid] = []
        return 201, self._task(self.tasks[tid]), None

    def _delete_task(self, tid: int):
        del self.tasks[tid]
        for jid in [j for j, job in self.jobs.items() if job["task_id"] == tid]:
            del self.jobs[jid]
        return 204, None, None

    def _task(self, t: dict) -> dict:
        jobs = [j for j in self.jobs.values() if j["task_id"] == t["id"]]
        return {"url": f"{self.url}/api/tasks/{t['id']}", "id": t["id"], "name": t["name"],
                "project_id": t["project_id"], "mode": "annotation" if t["size"] else "",
                "owner": self._basic(self.user(self.username)), "bug_tracker": "",
                "created_date": NOW, "updated_date": NOW, "overlap": 0, "segment_size": t["segment_size"],
                "status": "annotation", "data_chunk_size": 36, "data_compressed_chunk_type": "imageset",
                "guide_id": None, "data_original_chunk_type": "imageset", "size": t["size"], "image_quality": 70,
                "data": t["id"], "dimension": "2d", "subset": "", "organization": None, "assignee_updated_date": None,
                "jobs": {"count": len(jobs), "completed": sum(j["state"] == "completed" for j in jobs),
                         "validation": sum(j["stage"] == "validation" for j in jobs),
                         "url": f"{self.url}/api/jobs?task_id={t['id']}"},
                "labels": {"url": f"{self.url}/api/labels?task_id={t['id']}"}}

    def _data(self, tid: int, headers, body: bytes):
        task = self.tasks[tid]
        if "Upload-Multiple" in headers:
            form = _multipart(headers, body)
            for name, (filename, content) in sorted(form["files"].items(), key=lambda kv: int(kv[0][13:-1])):
                task["images"].append((Path(filename).name, content))
            return 200, None, None
        if "Upload-Finish" in headers:
            fields = json.loads(body) if body else {}
            order = fields.get("upload_file_order") or [name for name, _ in task["images"]]
            by_name = dict(task["images"])
            task["images"] = [(name, by_name[name]) for name in order]
            task["sorting_method"] = fields.get("sorting_method")
            task["size"] = len(task["images"])
            size = task["segment_size"] or task["size"]
            segments = [(start, min(start + size, task["size"]) - 1) for start in range(0, task["size"], size)]
            if fields.get("job_file_mapping"):
                # one job per list of files; here the lists must follow the images' order
                # (what the platform sends), cover every image once, and not repeat a file
                index = {name: i for i, (name, _) in enumerate(task["images"])}
                segments = []
                for files in fields["job_file_mapping"]:
                    positions = [index.get(name, -1) for name in files]
                    if not files or positions != list(range(positions[0], positions[0] + len(files))) or -1 in positions:
                        self._fail(f"job_file_mapping: {files} are not consecutive task images")
                        return 400, {"detail": "bad job_file_mapping"}, None
                    segments.append((positions[0], positions[-1]))
                if sorted(i for a, b in segments for i in range(a, b + 1)) != list(range(task["size"])):
                    self._fail("job_file_mapping does not cover every image once")
                    return 400, {"detail": "bad job_file_mapping"}, None
            for start, stop in segments:
                jid = self._next("job")
                self.jobs[jid] = {"id": jid, "task_id": tid, "start_frame": start, "stop_frame": stop,
                                  "stage": "annotation", "state": "new", "assignee": None}
            return 202, self._finished_rq("create", "task", task_id=tid), None
        return 202, None, None  # Upload-Start

    def _finished_rq(self, kind: str, target: str, **ids) -> dict:
        rq = f"{kind}-{target}-{uuid.uuid4().hex[:8]}"
        self.requests_rq[rq] = {"status": "finished", "message": "", "id": rq, "progress": 1.0,
                                "operation": {"type": f"{kind}:{target}", "target": target, "project_id": None,
                                              "task_id": None, "job_id": None, "format": None, "function_id": None,
                                              **ids},
                                "created_date": NOW, "started_date": NOW, "finished_date": NOW,
                                "expiry_date": NOW, "owner": {"id": 1, "username": self.username},
                                "result_url": None, "result_id": None}
        return {"rq_id": rq}

    def _tus_post(self, tid: int, q: dict, headers):
        if "Upload-Length" in headers:  # TUS: create an upload
            fid = str(uuid.uuid4())
            self.uploads[fid] = {"length": int(headers["Upload-Length"]), "data": b""}
            return 201, None, {"Location": f"/api/tasks/{tid}/annotations/{fid}",
                               "Upload-Filename": q.get("filename", "annotations.xml"), "Tus-Resumable": "1.0.0"}
        if "Upload-Finish" in headers:
            upload = next(u for u in self.uploads.values() if len(u["data"]) == u["length"] and not u.get("used"))
            upload["used"] = True
            if q.get("format") != "CVAT 1.1":
                raise KeyError(q.get("format"))
            self._import_cvat_xml(tid, upload["data"])
            return 202, self._finished_rq("import", "task", task_id=tid), None
        return 202, None, None  # Upload-Start

    def _tus_patch(self, fid: str, headers, body: bytes):
        upload = self.uploads[fid]
        assert int(headers["Upload-Offset"]) == len(upload["data"])
        upload["data"] += body
        return 204, None, {"Upload-Offset": str(len(upload["data"])), "Tus-Resumable": "1.0.0"}

    def _import_cvat_xml(self, tid: int, data: bytes) -> None:
        task = self.tasks[tid]
        frames = {name: i for i, (name, _) in enumerate(task["images"])}
        labels = {label["name"]: lid for lid, label in self.label_ids.items() if label["project_id"] == task["project_id"]}
        shapes = []
        for image in ET.fromstring(data).iter("image"):
            frame = frames[image.get("name")]
            for box in image.iter("box"):
                values = {a.get("name"): a.text or "" for a in box.iter("attribute")}
                shapes.append(self._shape(frame, labels[box.get("label")],
                                          [float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")],
                                          int(box.get("group_id") or 0), values))
        self.shapes[tid] = shapes

    def _shape(self, frame: int, label_id: int, points: list[float], group: int,
               values: dict[str, str] | None = None) -> dict:
        """As CVAT keeps a shape: each attribute of its label by spec id, the default where the
        import (or the person) gave none; a name the label does not declare is refused."""
        specs = {a["name"]: a for a in self.label_ids[label_id]["attributes"]}
        unknown = set(values or {}) - set(specs)
        assert not unknown, f"attributes {sorted(unknown)} are not declared on label {self.label_ids[label_id]['name']}"
        attributes = [{"spec_id": a["id"], "value": (values or {}).get(name, a.get("default_value", ""))}
                      for name, a in specs.items()]
        return {"type": "rectangle", "occluded": False, "outside": False, "z_order": 0, "rotation": 0.0,
                "points": points, "id": self._next("shape"), "frame": frame, "label_id": label_id,
                "group": group, "source": "manual", "attributes": attributes, "elements": []}

    def _job(self, j: dict) -> dict:
        task = self.tasks[j["task_id"]]
        # (nullable references are left out when empty: openapi-core rejects null for allOf+nullable)
        assignee = {"assignee": self._basic(self.users[j["assignee"]])} if j["assignee"] else {}
        return {"url": f"{self.url}/api/jobs/{j['id']}", "id": j["id"], "task_id": j["task_id"],
                "project_id": task["project_id"], **assignee, "guide_id": None, "dimension": "2d",
                "bug_tracker": None, "status": {"acceptance": "completed"}.get(j["stage"], j["stage"]), "stage": j["stage"], "state": j["state"],
                "mode": "annotation", "frame_count": j["stop_frame"] - j["start_frame"] + 1,
                "start_frame": j["start_frame"], "stop_frame": j["stop_frame"], "data_chunk_size": 36,
                "data_compressed_chunk_type": "imageset", "data_original_chunk_type": "imageset",
                "created_date": NOW, "updated_date": NOW, "type": "annotation", "organization": None,
                "assignee_updated_date": None,
                "issues": {"url": f"{self.url}/api/issues?job_id={j['id']}",
                           "count": sum(x["job"] == j["id"] for x in self.issues.values())},
                "labels": {"url": f"{self.url}/api/labels?job_id={j['id']}"}}

    def _patch_job(self, jid: int, data: dict):
        job = self.jobs[jid]
        for key in ("assignee", "stage", "state"):
            if key in data:
                job[key] = data[key]
        if "stage" in data and "state" not in data:
            job["state"] = "new"
        return 200, self._job(job), None

    def _job_annotations(self, jid: int) -> dict:
        job = self.jobs[jid]
        shapes = [s for s in self.shapes[job["task_id"]] if job["start_frame"] <= s["frame"] <= job["stop_frame"]]
        return {"version": 0, "tags": [], "shapes": shapes, "tracks": []}

    def _issue(self, x: dict) -> dict:
        return {**x, "comments": {"url": f"{self.url}/api/comments?issue_id={x['id']}",
                                  "count": sum(c["issue"] == x["id"] for c in self.comments.values())}}

    def _create_webhook(self, data: dict):
        wid = self._next("webhook")
        self.webhooks[wid] = {"id": wid, "url": f"{self.url}/api/webhooks/{wid}", "target_url": data["target_url"],
                              "description": data.get("description", ""), "type": data["type"],
                              "content_type": data.get("content_type", "application/json"),
                              "is_active": data.get("is_active", True), "enable_ssl": data.get("enable_ssl", True),
                              "created_date": NOW, "updated_date": NOW,
                              "owner": self._basic(self.user(self.username)), "project_id": data.get("project_id"),
                              "organization": None, "events": data["events"], "last_status": 0,
                              "last_delivery_date": NOW, "secret": data.get("secret", "")}
        return 201, {k: v for k, v in self.webhooks[wid].items() if k != "secret"}, None

    # ---- what a person does in CVAT -----------------------------------------------------
    def task_frames(self, tid: int) -> list[str]:
        return [name for name, _ in self.tasks[tid]["images"]]

    def boxes(self, jid: int) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for s in self._job_annotations(jid)["shapes"]:
            names = {a["id"]: a["name"] for a in self.label_ids[s["label_id"]]["attributes"]}
            out.setdefault(s["frame"], []).append(
                {"label": self.label_ids[s["label_id"]]["name"], "points": s["points"], "group": s["group"],
                 "attributes": {names[a["spec_id"]]: a["value"] for a in s["attributes"]}})
        return out

    def set_boxes(self, jid: int, frame: int, boxes: list[tuple]) -> None:
        """Replace the boxes of one (task) frame: [(label, [x1, y1, x2, y2], group)] or
        [(label, box, group, {attribute name: text})]."""
        with self.lock:
            job = self.jobs[jid]
            assert job["start_frame"] <= frame <= job["stop_frame"]
            task = self.tasks[job["task_id"]]
            labels = {v["name"]: k for k, v in self.label_ids.items() if v["project_id"] == task["project_id"]}
            kept = [s for s in self.shapes[task["id"]] if s["frame"] != frame]
            self.shapes[task["id"]] = kept + [self._shape(frame, labels[b[0]], list(b[1]), b[2], *b[3:])
                                              for b in boxes]

    def set_job(self, jid: int, *, stage: str | None = None, state: str | None = None) -> None:
        with self.lock:
            job = self.jobs[jid]
            job["stage"], job["state"] = stage or job["stage"], state or job["state"]

    def add_issue(self, jid: int, message: str) -> None:
        with self.lock:
            iid = self._next("issue")
            job = self.jobs[jid]
            self.issues[iid] = {"id": iid, "frame": job["start_frame"], "position": [10.0, 10.0, 40.0, 40.0],
                                "job": jid, "owner": self._basic(self.user("rob")),
                                "created_date": NOW, "updated_date": NOW, "resolved": False}
            cid = self._next("comment")
            self.comments[cid] = {"id": cid, "issue": iid, "owner": self._basic(self.user("rob")),
                                  "message": message, "created_date": NOW, "updated_date": NOW}

    def webhook_delivery(self, jid: int, *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers CVAT would POST for `update:job` (signed with the webhook's secret)."""
        job = self.jobs[jid]
        hook = next(w for w in self.webhooks.values() if w["project_id"] == self.tasks[job["task_id"]]["project_id"])
        body = json.dumps({"event": "update:job", "job": self._job(job), "before_update": {"state": "in progress"},
                           "webhook_id": hook["id"], "sender": self._basic(self.user("anna"))}).encode()
        key = (secret if secret is not None else hook["secret"]).encode()
        signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Signature-256": signature, "X-Webhook-Id": str(hook["id"])}


def _multipart(headers, body: bytes) -> dict:
    head = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    files = {}
    for part in message.iter_parts():
        if part.get_filename():
            files[part.get_param("name", header="content-disposition")] = (part.get_filename(), part.get_payload(decode=True))
    return {"files": files}


def _detail(error: Exception) -> str:
    cause = error.__cause__ or error.__context__
    details = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None) or []
    return "; ".join(str(d.message) for d in details)[:2000] or repr(cause)
