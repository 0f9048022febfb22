"""All configuration in one place: environment variables (and `.env`), read once.

Every variable is listed with a comment in `.env-example`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_SECRET = "change-me"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


def default_base_url(host: str, port: int) -> str:
    """The URL this server answers on when BASE_URL is unset: `http://HOST:PORT`. A wildcard
    host (0.0.0.0, ::, empty) names no address a person could open, so `localhost` stands in;
    set BASE_URL whenever people reach the site by another name (a proxy, a domain, https)."""
    host = host.strip()
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}" if port == 80 else f"http://{host}:{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ROOT / ".env", extra="ignore")

    environment: Environment = Environment.development
    # HS256 secret for password-reset / e-mail-verification tokens and CSRF tokens.
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    # Public URL of the site, used in e-mailed links and CVAT webhooks. Unset: made from HOST
    # and PORT (see `_base_url_from_host_and_port`).
    base_url: str = ""

    # Services: unset means "start an embedded one under var/".
    database_url: str | None = None
    # Connections each process keeps open to PostgreSQL, and how many more it may open at a
    # peak (closed again after use: a new PostgreSQL backend each time). Budget
    # (size + overflow) x (web processes + workers) under PostgreSQL's max_connections (100).
    database_pool_size: int = 10
    database_max_overflow: int = 10
    redis_url: str | None = None
    var_dir: Path = ROOT / "var"
    storage_root: Path | None = None  # default: <var_dir>/storage
    # Object storage (docs/storage.md): STORAGE_URL=s3://bucket/prefix keeps every file in an
    # S3-compatible store instead of STORAGE_ROOT, so workers on other machines need no shared disk.
    storage_url: str | None = None
    s3_endpoint_url: str | None = None  # unset: AWS S3; e.g. http://minio:9000
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # The endpoint browsers reach for presigned downloads, when not S3_ENDPOINT_URL.
    s3_public_endpoint_url: str | None = None
    # redirect: downloads answer 307 to a presigned URL; stream: the web streams from the store.
    storage_downloads: Literal["redirect", "stream"] = "redirect"
    storage_presign_seconds: int = 3600
    # Read-through cache of stored files on this machine (videos, models) and its size cap.
    storage_cache_dir: Path | None = None  # default: <var_dir>/cache
    storage_cache_bytes: int = 20_000_000_000
    certs_dir: Path = ROOT / "certs"

    # Web
    host: str = "127.0.0.1"
    port: int = 8000
    # Web server processes (uvicorn --workers): unset, one per CPU core, 2 to 8. One process
    # answers every request of the site in turn; with a job running it also waits for the CPU.
    web_workers: int | None = None
    # Seconds a keep-alive connection answers before the server closes it (src/keepalive.py), so
    # a client that never pauses is not pinned to one web process (0: no limit).
    web_keepalive_seconds: float = 2.0
    # Requests one web process works on at once; the others wait their turn, and each gives its
    # place back when its answer starts or after half a second (src/admission.py; 0: no gate).
    web_active_requests: int = 4
    jwt_lifetime_seconds: int = 8 * 3600
    cookie_secure: bool = False
    login_max_failures: int = 10
    login_window_seconds: int = 60
    # Failed logins per client address (all accounts together) per window; unset: 5x the above.
    login_ip_max_failures: int | None = None
    # Behind a reverse proxy only: the header it sets to the client address (e.g. X-Forwarded-For,
    # right-most entry used). Unset: the peer address. Never set it without such a proxy in front.
    trusted_proxy_header: str | None = None
    # Request body caps (bytes): JSON and forms; uploads (each user's quota applies below this).
    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 20_000_000_000

    # Video import by URL: hosts allowed even though they resolve to private addresses
    # (SSRF protection refuses those otherwise). Comma-separated; for tests and intranets.
    url_import_allowed_hosts: str = ""
    url_import_timeout_s: float = 60.0
    # Sites whose pages (not direct file links) are imported with yt-dlp; comma-separated hosts.
    url_import_page_sites: str = "youtube.com,youtu.be,vimeo.com,dailymotion.com"

    # Outgoing webhooks (src/webhooks): hosts allowed although they resolve to private or loopback
    # addresses (refused otherwise, as for URL import); comma-separated, for tests and intranets.
    webhook_allowed_hosts: str = ""
    webhook_timeout_s: float = 10.0
    # Tries per delivery, the first included; a failed try waits base * 2^(try-1) seconds.
    webhook_max_attempts: int = 6
    webhook_retry_base_s: float = 10.0

    # Worker
    worker_processes: int = 2
    # Niceness of those processes (0-19): on a machine shared with the web server (forge up), page
    # requests get the CPU first while a dataset job runs. 0: the same priority.
    worker_nice: int = 10
    # Folder with the learned tracker's two ONNX files (NanoTrack v2; `forge tracker download`
    # fetches them). Unset or incomplete: the built-in LK+NCC tracker runs, and says so.
    tracker_model_dir: str | None = None
    job_max_tries: int = 3
    # How long the editor's "Suggest boxes" waits for the worker to run the model on a frame.
    predict_timeout_s: float = 60.0
    # Hard frames per review job (one annotator's unit of work).
    review_job_size: int = 20
    # CVAT (optional): with CVAT_URL set, users may send review to CVAT instead of the built-in page.
    cvat_url: str | None = None
    cvat_username: str | None = None
    cvat_password: SecretStr | None = None
    cvat_token: SecretStr | None = None
    cvat_org: str | None = None
    cvat_webhook_secret: SecretStr | None = None
    # A running dataset job whose heartbeat is older than this is taken as dead and retried.
    job_stale_seconds: int = 300
    # Long videos in segment jobs (src/datasets/segment_jobs.py): a video of at least this many
    # frames is propagated as segment jobs that any worker takes (0: never; shorter videos run in
    # one piece, their sampling riding on the engine's decode). About SEGMENT_WORK frames of
    # passes (frames x objects) per segment. A segment whose worker stopped renewing its lease
    # for SEGMENT_LEASE_SECONDS is taken over by another worker.
    segment_min_frames: int = 3000
    segment_work: int = 2000
    # A pass longer than this many frames (a long stretch without keyframes) runs as chunks one
    # after another, each from the checkpoint of the one before: a worker that dies loses one
    # chunk, and chunks move between machines (0: passes are never cut).
    segment_chunk_frames: int = 2000
    segment_lease_seconds: int = 20
    # How long a learned-tracker segment waits for the GPU workers (while one is advertised)
    # before a CPU worker's dataset run takes it itself: a busy or stuck GPU worker delays a
    # dataset, it does not stop it.
    segment_gpu_wait_seconds: int = 120

    # First admin (forge up / forge create-admin)
    forge_admin_email: str | None = None
    forge_admin_password: SecretStr | None = None

    # Mail: with no SMTP host, mail goes to the log.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Data Forge <noreply@localhost>"

    @property
    def storage_path(self) -> Path:
        return self.storage_root or self.var_dir / "storage"

    @property
    def web_processes(self) -> int:
        """WEB_WORKERS, or one web process per CPU core (2 to 8)."""
        import os

        return self.web_workers or max(2, min(8, os.cpu_count() or 1))

    @field_validator("storage_root", "storage_url", "s3_endpoint_url", "s3_region", "s3_access_key_id",
                     "s3_secret_access_key", "s3_public_endpoint_url", "storage_cache_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        """`STORAGE_ROOT=` as .env-example writes it means unset (not the current folder)."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def storage_cache_path(self) -> Path:
        return (self.storage_cache_dir or self.var_dir / "cache").resolve()

    @property
    def frame_cache_path(self) -> Path:
        """Decoded videos this machine's preview jobs keep for the next fix in place
        (src/vision/frame_cache.py; at most 2 GB, least recently used go first)."""
        return (self.var_dir / "frame-cache").resolve()

    @property
    def scratch_path(self) -> Path:
        """Temp files of this machine's jobs and uploads when the store is remote."""
        return (self.var_dir / "scratch").resolve()

    @model_validator(mode="after")
    def _base_url_from_host_and_port(self) -> "Settings":
        self.base_url = (self.base_url or default_base_url(self.host, self.port)).rstrip("/")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> "Settings":
        if self.environment == Environment.production:
            secret = self.secret_key.get_secret_value()
            if secret == PLACEHOLDER_SECRET or len(secret) < 32:
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least 32 characters "
                    "outside development (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                )
            if self.forge_admin_password and self.forge_admin_password.get_secret_value() == PLACEHOLDER_SECRET:
                raise ValueError("FORGE_ADMIN_PASSWORD is still the placeholder value")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
