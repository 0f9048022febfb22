"""A small typed client of the JSON API, and the `forge videos|datasets ...` commands over it.

Everything goes over HTTP with a personal API token (the profile page makes one), so it runs
anywhere the site can be reached:

    export FORGE_URL=https://forge.example.com FORGE_TOKEN=df_write_...
    forge datasets create --video street.mp4 --name street --class person --keyframes keyframes.json
    forge datasets confirm <id> [--options options.json] [--expect-total-cents N]
    forge datasets wait <id>               # a progress bar until ready (exit 0), failed or cancelled (exit 1)
    forge datasets download <id> --format yolo [--out DIR]
    forge datasets list [--state ready] | forge datasets delete <id>
    forge videos upload street.mp4 | forge videos list

`keyframes.json`: `{"0": [{"track_id": 1, "class": "person", "box": [x1, y1, x2, y2]}], ...}`
(frame number -> objects, pixels). `options.json`: the `options` of POST .../confirm (docs/api.md).
Each command prints its result as JSON on stdout; progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx

CHUNK = 1 << 20
TERMINAL_STATES = ("ready", "failed", "cancelled")


class ForgeError(Exception):
    """The API refused a request: `status` and the `detail` it answered with."""

    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail
        if isinstance(detail, list):  # a validation error: where and why
            detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in detail)
        super().__init__(f"HTTP {status}: {detail}")


def _bar(total: float | None, desc: str, unit: str = "B", enabled: bool = True):
    from tqdm import tqdm

    scale = unit == "B"
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
                file=sys.stderr, disable=not enabled, leave=True, dynamic_ncols=True)


class _ReadProgress:
    """A file whose reads advance a progress bar (httpx reads multipart files chunk by chunk)."""

    def __init__(self, file: BinaryIO, advance: Callable[[int], Any]):
        self._file, self._advance = file, advance

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._advance(len(data))
        return data

    def __getattr__(self, name: str):
        return getattr(self._file, name)


class ForgeClient:
    """The API with a bearer token. Methods answer the API's JSON; refusals raise ForgeError."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 120.0, progress: bool = True,
                 transport: httpx.BaseTransport | None = None):
        self.progress = progress
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def __enter__(self) -> ForgeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        response = self.http.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text or response.reason_phrase
            raise ForgeError(response.status_code, detail)
        return response

    def _json(self, method: str, url: str, **kwargs) -> Any:
        response = self.request(method, url, **kwargs)
        return response.json() if response.content else None

    # videos
    def upload_video(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        with path.open("rb") as f, _bar(path.stat().st_size, f"upload {path.name}", enabled=self.progress) as bar:
            files = {"file": (path.name, _ReadProgress(f, bar.update), "video/mp4")}
            return self._json("POST", "/api/v1/videos", files=files)

    def videos(self, **filters: Any) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/videos", params=_drop_none(filters))

    # datasets
    def create_dataset(self, *, video_id: str, name: str, classes: list[str],
                       keyframes: dict[int, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """A draft on a video with its classes, and its keyframes (frame -> objects)."""
        draft = self._json("POST", "/api/v1/datasets", json={"video_id": video_id, "name": name, "classes": classes})
        for frame, objects in sorted((keyframes or {}).items(), key=lambda item: int(item[0])):
            self._json("PUT", f"/api/v1/datasets/{draft['id']}/keyframes/{int(frame)}", json={"objects": objects})
        return self.dataset(draft["id"])

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/datasets/{dataset_id}")

    def datasets(self, **filters: Any) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/datasets", params=_drop_none(filters))

    def quote(self, dataset_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/datasets/{dataset_id}/quote")

    def confirm(self, dataset_id: str, *, options: dict[str, Any] | None = None,
                expected_total_cents: int | None = None) -> dict[str, Any]:
        body = _drop_none({"options": options, "expected_total_cents": expected_total_cents})
        return self._json("POST", f"/api/v1/datasets/{dataset_id}/confirm", json=body)

    def wait(self, dataset_id: str, *, timeout: float | None = None, poll_s: float = 2.0) -> dict[str, Any]:
        """Poll until the dataset is ready, failed or cancelled (a progress bar meanwhile)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with _bar(100, "dataset", unit="%", enabled=self.progress) as bar:
            while True:
                dataset = self.dataset(dataset_id)
                progress = dataset.get("progress") or {}
                bar.set_description(f"{dataset['state']}")
                bar.update(max(0.0, min(100.0, float(progress.get("percent") or 0))) - bar.n)
                if dataset["state"] in TERMINAL_STATES:
                    return dataset
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"dataset {dataset_id} is still {dataset['state']} after {timeout:g} s")
                time.sleep(poll_s)

    def download(self, dataset_id: str, fmt: str, out_dir: Path = Path(".")) -> Path:
        """Stream the export zip to `out_dir/<name>-<format>.zip` (a .part file until complete)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # With object storage the site answers a redirect to a presigned URL: followed (httpx drops
        # the Authorization header when the redirect leaves the site's origin).
        with self.http.stream("GET", f"/api/v1/datasets/{dataset_id}/download", params={"format": fmt},
                              follow_redirects=True) as response:
            if response.status_code != 200:
                response.read()
                raise ForgeError(response.status_code, _detail(response))
            target = out_dir / _filename(response, f"{dataset_id}-{fmt}.zip")
            part = target.with_name(target.name + ".part")
            total = int(response.headers.get("content-length") or 0) or None
            with part.open("wb") as f, _bar(total, f"download {fmt}", enabled=self.progress) as bar:
                for chunk in response.iter_bytes(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
        part.replace(target)
        return target

    def delete_dataset(self, dataset_id: str) -> None:
        self.request("DELETE", f"/api/v1/datasets/{dataset_id}")


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except ValueError:
        return response.text


def _filename(response: httpx.Response, fallback: str) -> str:
    """The name from Content-Disposition, reduced to a plain file name."""
    from email.message import Message

    message = Message()
    message["content-disposition"] = response.headers.get("content-disposition", "")
    name = message.get_param("filename", header="content-disposition") or fallback
    name = Path(str(name)).name.strip() or fallback
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in name)


def _read_json_file(path: str | None) -> Any:
    if path is None:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="forge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--url", default=os.environ.get("FORGE_URL", "http://127.0.0.1:8000"),
                     help="the site (FORGE_URL; default http://127.0.0.1:8000)")
    top.add_argument("--token", default=os.environ.get("FORGE_TOKEN"), help="a personal API token (FORGE_TOKEN)")
    top.add_argument("--no-progress", action="store_true", help="no progress bars")
    groups = top.add_subparsers(dest="group", required=True)

    videos = groups.add_parser("videos").add_subparsers(dest="verb", required=True)
    videos.add_parser("upload").add_argument("file")
    listing = videos.add_parser("list")
    listing.add_argument("--status")
    listing.add_argument("--q")

    datasets = groups.add_parser("datasets").add_subparsers(dest="verb", required=True)
    create = datasets.add_parser("create", help="upload (or reuse) a video and draft a dataset on it")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="a video file to upload")
    source.add_argument("--video-id", help="a video already uploaded")
    create.add_argument("--name", required=True)
    create.add_argument("--class", dest="classes", action="append", required=True, help="a label class (repeat)")
    create.add_argument("--keyframes", help="keyframes.json: frame -> objects")
    confirm = datasets.add_parser("confirm", help="reserve the quote and start the job")
    confirm.add_argument("dataset_id")
    confirm.add_argument("--options", help="options.json")
    confirm.add_argument("--expect-total-cents", type=int, help="refuse if the price is not this")
    wait = datasets.add_parser("wait", help="until ready (exit 0), failed or cancelled (exit 1)")
    wait.add_argument("dataset_id")
    wait.add_argument("--timeout", type=float)
    wait.add_argument("--poll", type=float, default=2.0)
    download = datasets.add_parser("download")
    download.add_argument("dataset_id")
    download.add_argument("--format", required=True)
    download.add_argument("--out", default=".")
    listing = datasets.add_parser("list")
    listing.add_argument("--state")
    listing.add_argument("--q")
    datasets.add_parser("delete").add_argument("dataset_id")
    return top


def run(args: argparse.Namespace, client: ForgeClient) -> tuple[Any, int]:
    """(what to print, exit status) of one command."""
    if args.group == "videos":
        if args.verb == "upload":
            return client.upload_video(Path(args.file)), 0
        return client.videos(status=args.status, q=args.q), 0
    if args.verb == "create":
        video_id = args.video_id or client.upload_video(Path(args.video))["id"]
        keyframes = _read_json_file(args.keyframes) or {}
        return client.create_dataset(video_id=video_id, name=args.name, classes=args.classes, keyframes=keyframes), 0
    if args.verb == "confirm":
        return client.confirm(args.dataset_id, options=_read_json_file(args.options),
                              expected_total_cents=args.expect_total_cents), 0
    if args.verb == "wait":
        dataset = client.wait(args.dataset_id, timeout=args.timeout, poll_s=args.poll)
        return dataset, 0 if dataset["state"] == "ready" else 1
    if args.verb == "download":
        return {"path": str(client.download(args.dataset_id, args.format, Path(args.out)))}, 0
    if args.verb == "list":
        return client.datasets(state=args.state, q=args.q), 0
    client.delete_dataset(args.dataset_id)
    return {"deleted": args.dataset_id}, 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury the progress bar
    if not args.token:
        print("forge: no API token: set FORGE_TOKEN or pass --token (make one on the profile page)", file=sys.stderr)
        return 2
    try:
        with ForgeClient(args.url, args.token, progress=not args.no_progress) as client:
            result, status = run(args, client)
    except ForgeError as error:
        print(f"forge: {error}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, OSError, TimeoutError, ValueError) as error:
        print(f"forge: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return status
