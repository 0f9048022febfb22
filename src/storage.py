"""File storage behind one small interface, addressed by keys made from database ids.

Keys look like `videos/<video_id>/source`; a user-typed name never becomes a path.

- `LocalStorage` (the default) keeps files under one root (STORAGE_ROOT, default
  var/storage).
- `S3Storage` (STORAGE_URL=s3://bucket/prefix) keeps them in an S3-compatible object store
  (AWS S3, MinIO, Ceph, R2...), so the web and any number of worker machines share nothing
  but the store, PostgreSQL and Redis. Writes upload in parts (`put_file`), reads go through
  a local read-through cache capped at STORAGE_CACHE_BYTES (`local_path`), downloads are
  presigned redirects or streamed (`url`, `iter_chunks`). See docs/storage.md.

Both keep the same contract, so callers never change: scratch files come from `temp_file()`
(local to this machine), finished files go into the store with `put_file` (which takes the
scratch file away), and a path from `local_path` / `local_dir` is for reading only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from src.config import get_settings

log = logging.getLogger("forge.storage")

_KEY = re.compile(r"^[a-z0-9_-]+(/[a-zA-Z0-9_.-]+)*$")


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    def put_file(self, key: str, source: Path) -> int: ...
    def put_dir(self, prefix: str, source: Path) -> int: ...
    def open(self, key: str) -> BinaryIO: ...
    def local_path(self, key: str) -> Path: ...
    def local_dir(self, prefix: str) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def temp_file(self, suffix: str = "") -> Path: ...
    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...
    def url(self, key: str, *, filename: str | None = None, media_type: str | None = None) -> str | None: ...


def _mkstemp(folder: Path, suffix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{uuid.uuid4().hex}-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root.resolve()
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path) -> int:
        """Move `source` (a temp file on the same disk) to `key`; returns its size."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target) if source.stat().st_dev == self.root.stat().st_dev else shutil.move(source, target)
        return target.stat().st_size

    def put_dir(self, prefix: str, source: Path) -> int:
        """Move the folder `source` (made from `temp_file`) to `prefix`, replacing what was there;
        returns the bytes stored."""
        target = self._path(prefix.rstrip("/"))
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return _tree_size(target)

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def local_dir(self, prefix: str) -> Path:
        return self._path(prefix.rstrip("/"))

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix.rstrip("/"))
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()

    def temp_file(self, suffix: str = "") -> Path:
        """A new empty file under <root>/tmp (same disk as the store, so moves are renames)."""
        return _mkstemp(self.root / "tmp", suffix)

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open(key) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def url(self, key: str, *, filename: str | None = None, media_type: str | None = None) -> str | None:
        """No URL of its own: the web process serves the file (`local_path`)."""
        return None


class ReadCache:
    """Files of the store copied to this machine, evicted least recently used past `cap` bytes.

    One folder per key, named by the key's hash, holding one folder per version of the object
    (its ETag, or a listing's digest for a folder of objects), named by the version's hash:
    `<root>/<key hash>/<version hash>/<basename>` (the name keeps its extension, which some
    readers go by). A copy once in place is never replaced, so a path handed to a reader stays
    valid while another process of this machine (the web's, a worker's) admits the same key; a
    new version goes beside it and the older ones are dropped. Use refreshes the key folder's
    mtime, which eviction sorts on.
    """

    def __init__(self, root: Path, cap: int):
        self.root, self.cap = root, cap
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def slot(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()[:32]

    @staticmethod
    def _version_dir(slot: Path, version: str) -> Path:
        return slot / hashlib.sha256(version.encode()).hexdigest()[:16]

    def lookup(self, key: str, version: str, name: str) -> Path | None:
        slot = self.slot(key)
        path = self._version_dir(slot, version) / name
        try:
            if not path.exists():
                return None
            os.utime(slot)
        except FileNotFoundError:  # evicted by another process just now
            return None
        return path

    def admit(self, key: str, version: str, name: str, source: Path) -> Path:
        """Move `source` (a file or folder on this machine) into the cache as `key` at `version`
        (dropped instead when that version is already there)."""
        slot = self.slot(key)
        target = self._version_dir(slot, version)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".in-", dir=self.root))
        try:
            shutil.move(source, staging / name)
            for _ in range(3):
                slot.mkdir(exist_ok=True)
                if (target / name).exists():
                    break  # another process put the same version there first: keep theirs
                try:
                    os.replace(staging, target)
                    break
                except FileNotFoundError:  # the slot was evicted meanwhile: make it again
                    continue
                except OSError:  # another process's copy landed between the check and the rename
                    if (target / name).exists():
                        break
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for other in slot.iterdir() if slot.exists() else ():
            if other != target:
                shutil.rmtree(other, ignore_errors=True)  # older versions of the object
        try:
            os.utime(slot)
        except FileNotFoundError:
            pass
        self.evict(keep=slot)
        return target / name

    def forget(self, key: str) -> None:
        shutil.rmtree(self.slot(key), ignore_errors=True)

    def staging_path(self, suffix: str = "") -> Path:
        return _mkstemp(self.root / ".incoming", suffix)

    def usage(self) -> int:
        if not self.root.exists():
            return 0
        return sum(_tree_size(slot) for slot in self.root.iterdir() if not slot.name.startswith("."))

    def evict(self, keep: Path | None = None) -> None:
        with self._lock:
            if not self.root.exists():
                return
            slots = []
            for slot in self.root.iterdir():
                if slot.name.startswith(".") or slot == keep:
                    continue
                try:
                    slots.append((slot.stat().st_mtime, _tree_size(slot), slot))
                except FileNotFoundError:
                    continue
            total = sum(size for _, size, _ in slots) + (_tree_size(keep) if keep and keep.exists() else 0)
            for _, size, slot in sorted(slots):
                if total <= self.cap:
                    break
                shutil.rmtree(slot, ignore_errors=True)  # a reader that has the file open keeps reading
                total -= size


class S3Storage:
    """An S3-compatible bucket (boto3). Objects are `<prefix>/<key>`; see the module docstring."""

    def __init__(self, *, bucket: str, prefix: str, endpoint_url: str | None, region: str | None,
                 access_key_id: str | None, secret_access_key: str | None, public_endpoint_url: str | None,
                 downloads: str, presign_seconds: int, scratch_dir: Path, cache_dir: Path, cache_bytes: int,
                 part_bytes: int = 8 << 20):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.downloads, self.presign_seconds = downloads, presign_seconds
        self.scratch_dir = scratch_dir
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.cache = ReadCache(cache_dir, cache_bytes)
        # Parts of `part_bytes`, a few in flight: memory stays bounded whatever the file's size.
        self.transfer = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes,
                                       max_concurrency=4, use_threads=True)
        session = boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                                        region_name=region or "us-east-1")
        config = Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "auto"},
                        retries={"max_attempts": 5, "mode": "standard"})
        self.client = session.client("s3", endpoint_url=endpoint_url, config=config)
        # Presigned URLs are signed for the host the browser will use (may differ from the
        # one the servers reach, e.g. http://minio:9000 inside compose).
        self.presigner = (session.client("s3", endpoint_url=public_endpoint_url, config=config)
                          if public_endpoint_url and public_endpoint_url != endpoint_url else self.client)

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix})"

    # -- keys -------------------------------------------------------------------------------
    def _object(self, key: str) -> str:
        check_key(key.rstrip("/"))
        return f"{self.prefix}/{key}" if self.prefix else key

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata (`ETag`, `ContentLength`, ...); None when there is none."""
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        """Objects at `prefix` itself and under `prefix/` (never `prefix-other`)."""
        base = self._object(prefix.rstrip("/"))
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            found += [o for o in page.get("Contents", []) if o["Key"] == base or o["Key"].startswith(base + "/")]
        return found

    # -- writes -----------------------------------------------------------------------------
    def put_file(self, key: str, source: Path) -> int:
        """Upload `source` in parts and take it away (it becomes this machine's cached copy)."""
        size = source.stat().st_size
        self.client.upload_file(str(source), self.bucket, self._object(key), Config=self.transfer)
        head = self.head(key)
        if head is None or size > self.cache.cap:
            source.unlink(missing_ok=True)
        else:
            self.cache.admit(key, head["ETag"], Path(key).name, source)
        return size

    def put_dir(self, prefix: str, source: Path) -> int:
        """Upload every file under the folder `source` to `prefix/<relative path>`, replacing
        what was there, and take the folder away."""
        prefix = prefix.rstrip("/")
        self.delete_prefix(prefix)
        total = 0
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = path.relative_to(source).as_posix()
            self.client.upload_file(str(path), self.bucket, self._object(f"{prefix}/{rel}"), Config=self.transfer)
            total += path.stat().st_size
        self.cache.admit(prefix, self._listing_version(prefix), "dir", source)
        return total

    def delete_prefix(self, prefix: str) -> None:
        keys = [o["Key"] for o in self._list(prefix)]
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                                   "Quiet": True})
        # This machine's copies go too (other machines' are never served again: their ETag check fails).
        self.cache.forget(prefix.rstrip("/"))
        base = f"{self.prefix}/" if self.prefix else ""
        for key in keys:
            self.cache.forget(key[len(base):])

    def temp_file(self, suffix: str = "") -> Path:
        """A new empty scratch file on this machine (never in the store)."""
        return _mkstemp(self.scratch_dir, suffix)

    # -- reads ------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def size(self, key: str) -> int:
        head = self.head(key)
        if head is None:
            raise FileNotFoundError(key)
        return int(head["ContentLength"])

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._object(key))["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(key) from error
            raise

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        body = self.open(key)  # a StreamingBody (its `with` gives the raw response, not the body)
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def local_path(self, key: str) -> Path:
        """A copy on this machine (read-through cache): fetched in parts on a miss or when
        the object changed since it was cached."""
        head = self.head(key)
        if head is None:
            raise FileNotFoundError(key)
        name = Path(key).name
        if (hit := self.cache.lookup(key, head["ETag"], name)) is not None:
            return hit
        staging = self.cache.staging_path()
        try:
            started = time.monotonic()
            self.client.download_file(self.bucket, self._object(key), str(staging), Config=self.transfer)
            log.info("storage cache: fetched %s (%d bytes) in %.1fs", key, staging.stat().st_size,
                     time.monotonic() - started)
            return self.cache.admit(key, head["ETag"], name, staging)
        finally:
            staging.unlink(missing_ok=True)

    def _listing_version(self, prefix: str) -> str:
        listing = sorted((o["Key"], o.get("ETag", ""), o["Size"]) for o in self._list(prefix))
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def local_dir(self, prefix: str) -> Path:
        """Every object under `prefix/` as one folder on this machine (cached like `local_path`)."""
        prefix = prefix.rstrip("/")
        version = self._listing_version(prefix)
        if (hit := self.cache.lookup(prefix, version, "dir")) is not None:
            return hit
        self.cache.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".dir-", dir=self.cache.root))
        try:
            base = self._object(prefix) + "/"
            for obj in self._list(prefix):
                if not obj["Key"].startswith(base):
                    continue
                target = staging / obj["Key"][len(base):]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(self.bucket, obj["Key"], str(target), Config=self.transfer)
            return self.cache.admit(prefix, version, "dir", staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def url(self, key: str, *, filename: str | None = None, media_type: str | None = None) -> str | None:
        """A presigned GET the browser follows (STORAGE_DOWNLOADS=redirect), or None when the
        store is private to the servers' network (STORAGE_DOWNLOADS=stream: the web streams it)."""
        if self.downloads != "redirect":
            return None
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._object(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        if media_type:
            params["ResponseContentType"] = media_type
        return self.presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=self.presign_seconds)


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise ValueError(f"STORAGE_URL must look like s3://bucket or s3://bucket/prefix, not {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


_storage: Storage | None = None
_storage_config: tuple | None = None


def _config() -> tuple:
    s = get_settings()
    secret = s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else None
    return (s.storage_url, s.storage_path.resolve(), s.s3_endpoint_url, s.s3_region, s.s3_access_key_id, secret,
            s.s3_public_endpoint_url, s.storage_downloads, s.storage_presign_seconds, s.scratch_path,
            s.storage_cache_path, s.storage_cache_bytes)


def get_storage() -> Storage:
    """The configured store (one per process; made anew when the settings change)."""
    global _storage, _storage_config
    config = _config()
    if _storage is None or config != _storage_config:
        (url, root, endpoint, region, key_id, secret, public, downloads, presign, scratch, cache_dir,
         cache_bytes) = config
        if url:
            bucket, prefix = parse_storage_url(url)
            _storage = S3Storage(bucket=bucket, prefix=prefix, endpoint_url=endpoint, region=region,
                                 access_key_id=key_id, secret_access_key=secret, public_endpoint_url=public,
                                 downloads=downloads, presign_seconds=presign, scratch_dir=scratch,
                                 cache_dir=cache_dir, cache_bytes=cache_bytes)
        else:
            _storage = LocalStorage(root)
        _storage_config = config
    return _storage


STORE_PREFIX = "store:"


def resolve_model_dir(value: str | None) -> str | None:
    """A model folder setting (TRACKER_MODEL_DIR) as a folder on this machine: a plain path as it
    is, `store:<prefix>` (e.g. `store:models/nanotrack-v2`, put there by `forge tracker push`)
    fetched from the store into this machine's cache, so every worker runs the same files."""
    if not value or not value.startswith(STORE_PREFIX):
        return value
    return str(get_storage().local_dir(value[len(STORE_PREFIX):].strip("/")))


def copy_folder_to_store(source: str | Path, prefix: str, *, names: list[str] | None = None) -> int:
    """Copy a folder on this machine (or only `names` in it) to `prefix` in the store; the
    source stays. Returns the bytes stored."""
    storage = get_storage()
    staging = storage.temp_file(".dir")
    staging.unlink()
    try:
        if names is None:
            shutil.copytree(source, staging)
        else:
            staging.mkdir(parents=True)
            for name in names:
                shutil.copyfile(Path(source) / name, staging / name)
        return storage.put_dir(prefix, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def file_response(key: str, *, media_type: str, filename: str | None = None, headers: dict[str, str] | None = None,
                  head: bool = False):
    """The stored file as an HTTP response: served from disk (local store), a redirect to a
    presigned URL, or streamed through this process (STORAGE_DOWNLOADS=stream). `head`: the
    headers only (size, type, name, ETag), answered here in every case. Blocking (a HEAD to
    the store): call it in a thread."""
    from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

    storage = get_storage()
    if isinstance(storage, LocalStorage):
        return FileResponse(storage.local_path(key), media_type=media_type, filename=filename, headers=headers)
    extra = dict(headers or {})
    if filename:
        extra["Content-Disposition"] = f'attachment; filename="{filename}"'
    if head:
        info = storage.head(key)
        if info is None:
            raise FileNotFoundError(key)
        extra.update({"Content-Length": str(info["ContentLength"]), "ETag": info["ETag"]})
        response = Response(media_type=media_type, headers=extra)
        response.headers["Content-Length"] = str(info["ContentLength"])  # not the empty body's 0
        return response
    if (url := storage.url(key, filename=filename, media_type=media_type)) is not None:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, max-age=60"})
    extra["Content-Length"] = str(storage.size(key))
    return StreamingResponse(storage.iter_chunks(key), media_type=media_type, headers=extra)
