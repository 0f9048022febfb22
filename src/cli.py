"""The `forge` command: one entry point for every piece of the platform.

    forge up            embedded PostgreSQL + Redis (when DATABASE_URL / REDIS_URL are unset),
                        migrations, JWT keys, first admin, then the web server and one worker
    forge web           the web server only (uvicorn src.main:app)
    forge worker        one arq worker (--gpu [DEVICE]: a GPU worker, one per GPU)
    forge migrate       alembic upgrade head (`forge migrate down` downgrades to base)
    forge create-admin  create (or promote) the admin from FORGE_ADMIN_EMAIL / FORGE_ADMIN_PASSWORD
    forge propagate     run the propagation engine on a video (see `forge propagate --help`)
    forge tracker download [DIR]   fetch the learned tracker's model files, checking their sha256
    forge tracker push [DIR]       copy them into the store, for TRACKER_MODEL_DIR=store:models/nanotrack-v2
    forge datasets create|confirm|wait|download|list|delete, forge videos upload|list
                        drive the site over HTTP with an API token (src/client.py, docs/api.md)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from src.config import ROOT, get_settings

log = logging.getLogger("forge")


def migrate(revision: str = "heads", *, down: bool = False, database_url: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    if database_url:
        config.attributes["database_url"] = database_url
    if down:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


async def create_admin(email: str, password: str | None) -> str | None:
    """Create or promote the admin; returns a generated password (printed once) if none was given."""
    from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

    from src.auth import service
    from src.auth.models import User
    from src.auth.users import UserManager
    from src.billing import service as billing_service
    from src.database import create_engine, create_sessionmaker, unit_of_work

    engine = create_engine(get_settings().database_url)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            # a new admin account gets the starting balance too, as in the web (src.main.create_app)
            after_register = (billing_service.grant_starting_balance,)
            manager = UserManager(SQLAlchemyUserDatabase(session, User), after_register=after_register)
            _, generated = await service.create_admin(manager, email=email, password=password)
            return generated
    finally:
        await engine.dispose()


class SetupError(Exception):
    """A setting the platform cannot start with; ``str(err)`` is one line for the operator."""


def _admin_from_settings() -> None:
    from fastapi_users.exceptions import InvalidPasswordException
    from pydantic import ValidationError

    from src.auth.emails import problem as email_problem

    settings = get_settings()
    email = settings.forge_admin_email or "admin@localhost.localdomain"
    password = settings.forge_admin_password.get_secret_value() if settings.forge_admin_password else None
    if why := email_problem(email):
        raise SetupError(f"FORGE_ADMIN_EMAIL {email!r} is not a valid e-mail address: {why}")
    try:
        generated = asyncio.run(create_admin(email, password))
    except InvalidPasswordException as error:
        raise SetupError(f"FORGE_ADMIN_PASSWORD is not accepted: {error.reason}") from None
    except ValidationError:
        raise SetupError(f"FORGE_ADMIN_EMAIL {email!r} is not a valid e-mail address") from None
    if generated:
        print(f"\n  First admin: {email}  password: {generated}\n  (shown once; change it on the profile page)\n", flush=True)


def _start_embedded_services(supervisor) -> dict[str, str]:
    """Start embedded PostgreSQL / Redis for whichever URL is unset (the supervisor restarts
    them if they die); return the env to export."""
    from src.embedded import EmbeddedPostgres, EmbeddedRedis

    settings = get_settings()
    env: dict[str, str] = {}
    if not settings.database_url:
        postgres = EmbeddedPostgres(settings.var_dir / "postgres")
        env["DATABASE_URL"] = postgres.start()
        supervisor.add("PostgreSQL", postgres, started=True)
        print(f"  PostgreSQL (embedded): {settings.var_dir / 'postgres'}", flush=True)
    if not settings.redis_url:
        redis = EmbeddedRedis(settings.var_dir / "redis")
        env["REDIS_URL"] = redis.start()
        supervisor.add("Redis", redis, started=True)
        print(f"  Redis (embedded): {env['REDIS_URL']}", flush=True)
    return env


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def up() -> int:
    """Everything on one machine, supervised (src/supervisor.py): a process that dies is named
    and restarted with backoff; Ctrl-C or SIGTERM stops all of it, embedded services included."""
    from src.auth.keys import ensure_keys
    from src.supervisor import Command, Supervisor

    # Ctrl-C and `kill` both end in the `finally` below, even when started from a shell that
    # ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    supervisor = Supervisor()
    try:
        env = _start_embedded_services(supervisor)
        os.environ.update(env)
        get_settings.cache_clear()
        settings = get_settings()
        ensure_keys(settings.certs_dir)
        migrate()
        _admin_from_settings()
        python = sys.executable
        supervisor.add("web server", Command([python, "-m", "src.cli", "web"], env=os.environ.copy()))
        supervisor.add("worker", Command([python, "-m", "src.cli", "worker"], env=os.environ.copy()))
        supervisor.start()
        print(f"  Data Forge is running on http://{settings.host}:{settings.port}  (Ctrl-C stops everything)", flush=True)
        supervisor.run()  # until Ctrl-C / SIGTERM (KeyboardInterrupt); dead children are restarted
        return 0
    except SetupError as error:
        print(f"forge up: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        # a second Ctrl-C must not cut the shutdown short (children get SIGKILL after 15 s anyway)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        print("  stopped.", flush=True)


def web() -> int:
    """uvicorn with WEB_WORKERS processes (default: one per core, 2 to 8), each its own app,
    database pool and Redis pool; uvicorn restarts a process that dies."""
    import uvicorn

    from src.auth.keys import ensure_keys

    settings = get_settings()
    ensure_keys(settings.certs_dir)  # once, here: the processes would race to make the key pair
    uvicorn.run("src.main:app", host=settings.host, port=settings.port, proxy_headers=False, log_level="info",  # addresses: TRUSTED_PROXY_HEADER only
                workers=settings.web_processes)
    return 0


def worker(gpu: str | None = None) -> int:
    """One arq worker; with ``gpu`` (a device number, or "" for whatever CUDA_VISIBLE_DEVICES
    says) a GPU worker on the GPU queue: start one per GPU (src/gpu.py)."""
    from arq.worker import run_worker

    from src.worker import GpuWorkerSettings, WorkerSettings

    if gpu is None:
        run_worker(WorkerSettings)
        return 0
    if gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before torch or onnxruntime look
    run_worker(GpuWorkerSettings)
    return 0


def _local_tracker_dir():
    setting = get_settings().tracker_model_dir
    if setting and not setting.startswith("store:"):
        return setting
    return get_settings().var_dir / "models" / "nanotrack-v2"


TRACKER_PREFIX = "models/nanotrack-v2"


def tracker_push(argv: list[str]) -> int:
    """`forge tracker push [DIR]`: the learned tracker's files into the store (docs/storage.md),
    so workers on any machine fetch them with TRACKER_MODEL_DIR=store:models/nanotrack-v2."""
    from src.storage import copy_folder_to_store
    from src.vision.nanotrack import MODEL_FILES

    source = os.path.abspath(argv[0] if argv else str(_local_tracker_dir()))
    names = list(MODEL_FILES.values())
    missing = [name for name in names if not os.path.isfile(os.path.join(source, name))]
    if missing:
        print(f"forge tracker push: {source} lacks {', '.join(missing)} (run `forge tracker download` first)",
              file=sys.stderr)
        return 2
    size = copy_folder_to_store(source, TRACKER_PREFIX, names=names)
    print(f"{size} bytes stored under {TRACKER_PREFIX}; set TRACKER_MODEL_DIR=store:{TRACKER_PREFIX} on every worker")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in ("datasets", "videos") or argv[:1] in (["--url"], ["--token"]):
        from src.client import main as client_main

        return client_main(argv)
    if argv and argv[0] == "propagate":
        from src.vision.cli import main as propagate_main

        return propagate_main(argv[1:])
    if argv[:2] == ["tracker", "push"]:
        return tracker_push(argv[2:])
    if argv and argv[0] == "tracker":
        from src.vision.cli import tracker_main

        return tracker_main(argv[1:], default_dir=_local_tracker_dir())
    parser = argparse.ArgumentParser(prog="forge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "web", "create-admin"):
        sub.add_parser(name)
    worker_parser = sub.add_parser("worker", help="one arq worker; --gpu [DEVICE]: a GPU worker (one per GPU)")
    worker_parser.add_argument("--gpu", nargs="?", const="", default=None, metavar="DEVICE",
                               help="take the jobs that want a GPU, on CUDA device DEVICE")
    migrate_parser = sub.add_parser("migrate")
    migrate_parser.add_argument("direction", nargs="?", choices=["up", "down"], default="up")
    sub.add_parser("propagate", help="see `forge propagate --help`")
    sub.add_parser("tracker", help="`forge tracker download [DIR]`: the learned tracker's files")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command in {"web", "worker", "migrate", "create-admin"} and not get_settings().database_url:
        print("forge: DATABASE_URL is not set (use `forge up` for embedded services)", file=sys.stderr)
        return 2
    if args.command == "web":
        return web()
    if args.command == "worker":
        if args.gpu and not args.gpu.isdigit():
            print(f"forge worker: --gpu takes a CUDA device number, not {args.gpu!r}", file=sys.stderr)
            return 2
        return worker(args.gpu)
    if args.command == "migrate":
        migrate("base" if args.direction == "down" else "heads", down=args.direction == "down")
        return 0
    if args.command == "create-admin":
        try:
            _admin_from_settings()
        except SetupError as error:
            print(f"forge create-admin: {error}", file=sys.stderr)
            return 2
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
