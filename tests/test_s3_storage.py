"""S3-compatible storage (STORAGE_URL=s3://...) against a real S3-protocol server: moto's
server mode on loopback, spoken to over HTTP by boto3 exactly as MinIO or AWS would be.

The whole path runs with the store set: upload (streamed, then a multipart upload), probe,
thumbnail and frames, a dataset job in a real worker, every export, downloads (presigned
redirect, and streamed through the web), deletion; and nothing lands in the local storage
folder, only in this machine's read cache and scratch folder (emptied after each job).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest

from src.config import get_settings
from tests.conftest import SHARED_DATA
from tests.datasets.conftest import CROSSING, OPTIONS, make_draft, run_worker, top_up
from tests.videos.conftest import stored_files, upload

BUCKET = "forge-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test-key", aws_secret_access_key="test-secret")


@pytest.fixture
def s3_settings(s3_endpoint, tmp_path):
    """STORAGE_URL and friends set for this test (the app and the worker read them per call)."""
    s3 = _client(s3_endpoint)
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    env = {
        "STORAGE_URL": f"s3://{BUCKET}/forge", "S3_ENDPOINT_URL": s3_endpoint, "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "test-key", "S3_SECRET_ACCESS_KEY": "test-secret",
        "STORAGE_CACHE_DIR": str(tmp_path / "cache"),
    }
    saved = {k: os.environ.get(k) for k in [*env, "STORAGE_DOWNLOADS", "STORAGE_CACHE_BYTES"]}
    os.environ.update(env)
    get_settings.cache_clear()
    yield s3
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    get_settings.cache_clear()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


def _objects(s3, prefix: str = "forge/") -> dict[str, int]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return found


def _set(**env: str) -> None:
    os.environ.update(env)
    get_settings.cache_clear()


async def test_whole_flow_with_s3_storage_writes_nothing_locally(app, user_client, services, s3_settings, tmp_path):
    source = CROSSING / "video.mp4"
    if not source.exists():
        pytest.skip(f"shared data missing: {source}")
    s3 = s3_settings
    local_root = get_settings().storage_path
    from src.storage import S3Storage, get_storage

    assert isinstance(get_storage(), S3Storage)

    # Upload and probe: the file is in the bucket, under the prefix, byte for byte
    response = await upload(user_client, source)
    assert response.status_code == 201, response.text
    video = response.json()
    assert video["status"] == "ready" and video["frame_count"] == 120 and (video["width"], video["height"]) == (360, 240)
    objects = _objects(s3)
    source_key = f"forge/videos/{video['id']}/source"
    assert objects[source_key] == source.stat().st_size == video["size_bytes"]
    body = s3.get_object(Bucket=BUCKET, Key=source_key)["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert objects[f"forge/videos/{video['id']}/thumb.jpg"] > 0

    # Thumbnail: a presigned redirect the browser follows to the store; frames come from the cache
    thumb = await user_client.get(f"/api/v1/videos/{video['id']}/thumbnail")
    assert thumb.status_code == 307, thumb.text
    async with httpx.AsyncClient() as outside:
        image = await outside.get(thumb.headers["location"])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    frame = await user_client.get(f"/api/v1/videos/{video['id']}/frames/60")
    assert frame.status_code == 200 and frame.content[:2] == b"\xff\xd8"
    cached = [p for p in (tmp_path / "cache").rglob("source") if p.is_file()]
    assert cached and cached[0].stat().st_size == video["size_bytes"]
    shutil.rmtree(tmp_path / "cache")  # the worker, as if on another machine, starts with no copy

    # A dataset job in a real worker: it reads the video through its cache, writes exports to the store
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client, video=video)
    formats = ["yolo", "coco", "mot"]
    assert (await user_client.put(f"/api/v1/datasets/{dataset['id']}/options",
                                  json={**OPTIONS, "formats": formats, "review_budget": 0.0})).status_code == 200
    quote = (await user_client.get(f"/api/v1/datasets/{dataset['id']}/quote")).json()
    confirm = await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm",
                                     json={"expected_total_cents": quote["total_cents"]})
    assert confirm.status_code == 202, confirm.text
    await run_worker(services[1])
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready", done
    assert [p for p in (tmp_path / "cache").rglob("source") if p.is_file()]  # fetched again by the worker
    objects = _objects(s3)
    for fmt in formats:
        assert objects[f"forge/datasets/{dataset['id']}/{fmt}.zip"] > 0

    # The dataset page reads the manifest and timeline from the store
    page = await user_client.get(f"/datasets/{dataset['id']}/overview")
    assert page.status_code == 200 and 'id="timeline"' in page.text

    # Download: a presigned redirect, the zip straight from the store
    redirect = await user_client.get(f"/api/v1/datasets/{dataset['id']}/download", params={"format": "yolo"})
    assert redirect.status_code == 307, redirect.text
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(redirect.headers["location"])
    assert fetched.status_code == 200 and "attachment" in fetched.headers.get("content-disposition", "")
    headers = await user_client.head(f"/api/v1/datasets/{dataset['id']}/download", params={"format": "yolo"})
    assert headers.status_code == 200 and headers.content == b""  # from the store: a presigned GET takes no HEAD
    assert int(headers.headers["content-length"]) == len(fetched.content) == objects[f"forge/datasets/{dataset['id']}/yolo.zip"]
    assert headers.headers["etag"] and "attachment" in headers.headers["content-disposition"]
    yolo = zipfile.ZipFile(io.BytesIO(fetched.content))
    labels = [n for n in yolo.namelist() if n.startswith("labels/") and n.endswith(".txt")]
    assert len(labels) == done["delivered_frames"] > 0
    # ... or streamed through the web when the store is private to the servers' network
    _set(STORAGE_DOWNLOADS="stream")
    streamed = await user_client.get(f"/api/v1/datasets/{dataset['id']}/download", params={"format": "yolo"})
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "application/zip"
    assert streamed.content == fetched.content
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}/download",
                                  params={"format": "cvat"})).status_code == 404

    # Nothing in the local storage folder; scratch files of the upload and the job are gone
    assert not local_root.exists() or stored_files(local_root) == []
    scratch = get_settings().scratch_path
    assert not scratch.exists() or [p for p in scratch.rglob("*") if p.is_file()] == []

    # Deleting the video removes its objects and its datasets' from the bucket
    assert (await user_client.delete(f"/api/v1/videos/{video['id']}")).status_code == 204
    assert not [k for k in _objects(s3) if video["id"] in k or dataset["id"] in k]


async def test_put_file_uploads_in_parts_and_the_cache_evicts_by_size(s3_settings, tmp_path):
    """A file above the part size goes up as a multipart upload; the read cache keeps at most
    its cap, dropping the least recently used copy, and fetches again a key that changed."""
    from src.storage import S3Storage

    s = get_settings()
    storage = S3Storage(bucket=BUCKET, prefix="parts", endpoint_url=s.s3_endpoint_url, region="us-east-1",
                        access_key_id="test-key", secret_access_key="test-secret", public_endpoint_url=None,
                        downloads="redirect", presign_seconds=60, scratch_dir=tmp_path / "scratch",
                        cache_dir=tmp_path / "small-cache", cache_bytes=13 << 20, part_bytes=5 << 20)
    payloads = {}
    for name in ("a", "b"):
        temp = storage.temp_file()
        payloads[name] = os.urandom(6 << 20) + name.encode() * 1000
        temp.write_bytes(payloads[name])
        assert storage.put_file(f"videos/{name}/source", temp) == len(payloads[name])
        assert not temp.exists()  # taken away: it is now this machine's cached copy
    head = s3_settings.head_object(Bucket=BUCKET, Key="parts/videos/a/source")
    assert head["ETag"].strip('"').endswith("-2")  # two parts of 5 MiB and the rest
    assert storage.local_path("videos/a/source").read_bytes() == payloads["a"]  # a is now the most recent

    big = storage.temp_file()
    big.write_bytes(os.urandom(4 << 20))
    storage.put_file("videos/c/source", big)  # 6 + 6 + 4 MiB > 13 MiB: the oldest (b) goes
    cached = {p.parent.name: p for p in (tmp_path / "small-cache").rglob("source")}
    assert storage.cache.usage() <= 13 << 20 and len(cached) == 2
    assert storage.cache.lookup("videos/b/source", s3_settings.head_object(
        Bucket=BUCKET, Key="parts/videos/b/source")["ETag"], "source") is None
    assert storage.local_path("videos/b/source").read_bytes() == payloads["b"]  # fetched again from the store

    # Overwritten in the store by another machine: the stale copy is not served
    s3_settings.put_object(Bucket=BUCKET, Key="parts/videos/b/source", Body=b"new content")
    assert storage.local_path("videos/b/source").read_bytes() == b"new content"

    # Folders (a detector's master dataset) go up and come back whole
    folder = storage.temp_file()
    folder.unlink()
    (folder / "images" / "train").mkdir(parents=True)
    (folder / "data.yaml").write_text("train: images/train\n")
    (folder / "images" / "train" / "x.jpg").write_bytes(b"jpeg")
    storage.put_dir("detectors/masters/m1", folder)
    assert not folder.exists() and storage.exists("detectors/masters/m1/data.yaml")
    storage.cache.forget("detectors/masters/m1")
    back = storage.local_dir("detectors/masters/m1")
    assert (back / "images" / "train" / "x.jpg").read_bytes() == b"jpeg"
    assert (back / "data.yaml").read_text() == "train: images/train\n"
    storage.delete_prefix("detectors/masters/m1")
    assert not storage.exists("detectors/masters/m1/data.yaml")
    with pytest.raises(FileNotFoundError):
        storage.local_path("videos/nothing/source")
    with pytest.raises(ValueError):
        storage.exists("../etc/passwd")


def test_bad_storage_url_is_refused_with_its_reason():
    from src.storage import parse_storage_url

    assert parse_storage_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_storage_url("s3://bucket") == ("bucket", "")
    for bad in ("bucket/x", "s3:///x", "gs://bucket"):
        with pytest.raises(ValueError, match="s3://bucket"):
            parse_storage_url(bad)


def test_tracker_files_pushed_to_the_store_reach_a_worker_through_its_cache(s3_settings, tmp_path, capsys):
    """`forge tracker push DIR` copies the learned tracker's files into the store; a worker with
    TRACKER_MODEL_DIR=store:models/nanotrack-v2 gets a local folder of the same bytes."""
    from src.cli import main
    from src.storage import resolve_model_dir
    from src.vision.nanotrack import MODEL_FILES

    shared = SHARED_DATA.parent / "models" / "nanotrack-v2"
    if not all((shared / name).exists() for name in MODEL_FILES.values()):
        pytest.skip(f"shared model files missing: {shared}")
    assert main(["tracker", "push", str(tmp_path / "empty")]) == 2
    assert "lacks" in capsys.readouterr().err
    assert main(["tracker", "push", str(shared)]) == 0
    assert "TRACKER_MODEL_DIR=store:models/nanotrack-v2" in capsys.readouterr().out
    assert sorted(k.rsplit("/", 1)[1] for k in _objects(s3_settings, "forge/models/")) == sorted(MODEL_FILES.values())
    folder = Path(resolve_model_dir("store:models/nanotrack-v2"))
    assert folder.is_relative_to(tmp_path / "cache")
    for name in MODEL_FILES.values():
        assert hashlib.sha256((folder / name).read_bytes()).digest() == hashlib.sha256((shared / name).read_bytes()).digest()
    assert resolve_model_dir("/some/local/dir") == "/some/local/dir" and resolve_model_dir(None) is None


def test_empty_storage_settings_mean_unset(monkeypatch):
    """`STORAGE_ROOT=` and `STORAGE_URL=` as .env-example writes them: the default local store
    under VAR_DIR, not the current folder nor an S3 endpoint named ''."""
    from src.config import Settings

    for name in ("STORAGE_ROOT", "STORAGE_URL", "S3_ENDPOINT_URL", "STORAGE_CACHE_DIR"):
        monkeypatch.setenv(name, "")
    settings = Settings(_env_file=None)
    assert settings.storage_path == settings.var_dir / "storage"
    assert settings.storage_url is None and settings.s3_endpoint_url is None
    assert settings.storage_cache_path == (settings.var_dir / "cache").resolve()


_UPLOAD_SCRIPT = """
import os, resource, sys
from pathlib import Path
from src.storage import S3Storage
endpoint, scratch, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
storage = S3Storage(bucket="forge-test", prefix="memory", endpoint_url=endpoint, region="us-east-1",
                    access_key_id="test-key", secret_access_key="test-secret", public_endpoint_url=None,
                    downloads="redirect", presign_seconds=60, scratch_dir=scratch, cache_dir=scratch / "cache",
                    cache_bytes=0, part_bytes=5 << 20)
source = storage.temp_file()
with source.open("wb") as f:
    for _ in range(size >> 20):
        f.write(os.urandom(1 << 20))
storage.exists("videos/x/source")  # the client warmed up before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
storage.put_file(f"videos/{size}/source", source)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_an_upload_holds_a_few_parts_in_memory_not_the_file(s3_settings, s3_endpoint, tmp_path):
    """put_file streams the file up in 5 MiB parts (4 in flight), never reading it whole: a 96 MiB
    upload grows the uploading process (measured apart from the server) by far less than the
    file; reading it into memory first (`put_object(Body=path.read_bytes())`) grows it by more."""
    import subprocess
    import sys

    size = 96 << 20
    out = subprocess.run([sys.executable, "-c", _UPLOAD_SCRIPT, s3_endpoint, str(tmp_path), str(size)],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    grown = int(out.stdout.split()[-1])
    assert grown < size / 3, f"the upload grew the process by {grown >> 20} MiB for a {size >> 20} MiB file"
    assert s3_settings.head_object(Bucket=BUCKET, Key=f"memory/videos/{size}/source")["ContentLength"] == size


def test_two_processes_filling_one_cache_with_the_same_key_both_get_a_whole_copy(tmp_path):
    """The web's processes and a worker on one machine share the cache folder: copies of one key
    admitted at the same time never fail nor leave a torn file (two caches, as two processes)."""
    from concurrent.futures import ThreadPoolExecutor

    from src.storage import ReadCache

    caches = [ReadCache(tmp_path / "cache", 1 << 30) for _ in range(2)]
    payload = os.urandom(256 << 10)

    def fill(i: int) -> bytes:
        source = tmp_path / f"in-{i}"
        source.write_bytes(payload)
        return caches[i % 2].admit("videos/v/source", '"etag"', "source", source).read_bytes()

    with ThreadPoolExecutor(8) as pool:
        assert all(copy == payload for copy in pool.map(fill, range(40)))
    assert caches[0].lookup("videos/v/source", '"etag"', "source").read_bytes() == payload
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == [caches[0].slot("videos/v/source").name]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith((".old-", ".in-"))]


async def test_an_unreachable_store_answers_503_and_keeps_nothing(app, user_client, services, s3_settings):
    """The store down (nothing listens at S3_ENDPOINT_URL): an upload answers 503 naming the file
    store, not a 500, and no video row is left behind."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    _set(S3_ENDPOINT_URL=dead)
    response = await upload(user_client, CROSSING / "video.mp4")
    assert response.status_code == 503, response.text
    assert "file store" in response.json()["detail"] and response.headers["retry-after"]
    assert (await user_client.get("/api/v1/videos")).json() == []
    scratch = get_settings().scratch_path
    assert not scratch.exists() or [p for p in scratch.rglob("*") if p.is_file()] == []
