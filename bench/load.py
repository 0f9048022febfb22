"""Web-tier load: N concurrent users on loopback, p50/p99 per route, idle and during a job.

    python -m bench.load [--users 50] [--seconds 20] [--web-workers N] [--think 0]

Starts its own platform in a temporary directory (embedded PostgreSQL and Redis, `forge web`
with WEB_WORKERS processes, one `forge worker`), on 127.0.0.1 only; nothing else is reached.
Ten accounts, each with an uploaded video and a draft; every user is a logged-in browser session
(five per account) that requests the pages and API a user of the site polls, one request after
another (`--think` seconds between them on average, 0: back to back, the harshest case; the
site's pages poll every 2 s). After a 5 s warm-up that is not counted, two phases of
`--seconds` each: idle, then while dataset jobs keep the worker's pool busy (three long
synthetic videos confirmed at once, by three accounts). Bounded: the users stop at the end of each phase, every
request has a 30 s timeout, the platform is stopped and its directory deleted at the end.

The users are lean keep-alive HTTP/1.1 connections (`_Tab`), not httpx clients: the bench
runs on the machine it measures, and httpx's CPU (about 2.4 ms a request) was a quarter of
what the web processes got. The report says how far apart the users' medians are: far apart
means some users sit on a busier web process than others.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
ACCOUNTS = 10
PASSWORD = "load-bench-password-7"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """A process and everything under it (Linux /proc)."""
    found, todo = [pid], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.append(child)
                    todo.append(child)
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (exited ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Platform:
    """Embedded services + `forge web` + `forge worker`, all on loopback, in a temp directory."""

    def __init__(self, web_workers: int | None):
        self.root = Path(tempfile.mkdtemp(prefix="forge-load-"))
        self.port = _free_port()
        self.web_workers = web_workers
        self.services: list = []
        self.children: list[subprocess.Popen] = []

    def start(self) -> str:
        from src.embedded import EmbeddedPostgres, EmbeddedRedis

        postgres, redis = EmbeddedPostgres(self.root / "postgres"), EmbeddedRedis(self.root / "redis")
        database_url = postgres.start()
        self.services.append(postgres)
        redis_url = redis.start()
        self.services.append(redis)
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "VAR_DIR": str(self.root / "var"),
                    "CERTS_DIR": str(self.root / "certs"), "HOST": "127.0.0.1", "PORT": str(self.port),
                    "ENVIRONMENT": "development", "SECRET_KEY": "load-bench-secret-key-0123456789-abcdefghij",
                    "PYTHONUNBUFFERED": "1"}
        if self.web_workers:
            self.env["WEB_WORKERS"] = str(self.web_workers)
        python = sys.executable
        subprocess.run([python, "-m", "src.cli", "migrate"], cwd=REPO, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in ("web", "worker"):
            log = (self.root / f"{name}.log").open("wb")
            self.children.append(subprocess.Popen([python, "-m", "src.cli", name], cwd=REPO, env=self.env, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in self.children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        for service in reversed(self.services):
            service.stop()
        shutil.rmtree(self.root, ignore_errors=True)


async def _wait_up(url: str, platform: Platform, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while time.monotonic() < deadline:
            for child in platform.children:
                if child.poll() is not None:
                    raise SystemExit(f"a platform process exited; see {platform.root}/*.log")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("the web server did not answer /health in time")


async def _account(url: str, index: int, video: Path) -> dict:
    """Register, log in (cookie + CSRF), upload the small video, make a draft with a keyframe."""
    client = httpx.AsyncClient(base_url=url, timeout=60)
    email = f"load{index}@example.com"
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    await client.get("/login")
    token = client.cookies["forge_csrf"]
    response = await client.post("/auth/login", data={"username": email, "password": PASSWORD},
                                 headers={"X-CSRF-Token": token})
    assert response.status_code == 204, response.text
    client.headers["X-CSRF-Token"] = token
    with video.open("rb") as f:
        response = await client.post("/api/v1/videos", files={"file": ("small.mp4", f, "video/mp4")})
    assert response.status_code == 201, response.text
    video_id = response.json()["id"]
    draft = (await client.post("/api/v1/datasets", json={"video_id": video_id, "name": "load", "classes": ["box"]})).json()
    return {"client": client, "email": email, "dataset": draft["id"], "video": video_id}


async def _top_up(env: dict, email: str, cents: int) -> None:
    from sqlalchemy import select

    from src.auth.models import User
    from src.billing import service as billing_service
    from src.database import create_engine, create_sessionmaker, unit_of_work

    engine = create_engine(env["DATABASE_URL"])
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            user = (await session.scalars(select(User).where(User.email == email))).one()
            await billing_service.top_up(session, user_id=user.id, amount_cents=cents, reason="load bench", admin_id=None)
    finally:
        await engine.dispose()


def _routes(account: dict) -> list[tuple[str, str]]:
    did = account["dataset"]
    return [("GET /datasets (page)", "/datasets"), ("GET /datasets/{id}/overview (page)", f"/datasets/{did}/overview"),
            ("GET /api/v1/datasets/{id}", f"/api/v1/datasets/{did}"), ("GET /videos (page)", "/videos"),
            ("GET /api/v1/billing/balance", "/api/v1/billing/balance"), ("GET /health", "/health"),
            ("GET /static/css/forge.css", "/static/css/forge.css")]


class _Tab:
    """One browser tab: a keep-alive HTTP/1.1 connection sending one GET at a time with the
    session's cookies, reading each whole answer. Written on asyncio streams because the
    load generator shares the machine's CPUs with what it measures: httpx spent about 2.4 ms
    of CPU per request here (a quarter of the CPU the web processes got), this about a tenth
    of that."""

    def __init__(self, url: str, cookies: dict[str, str]):
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port
        self.head = (f"Host: {self.host}:{self.port}\r\nCookie: "
                     + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "\r\nAccept: */*\r\n\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        """The answer's status; OSError, EOFError or ValueError when the exchange broke."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.head)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        if "content-length" in fields:
            await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _user(tab: _Tab, routes, stop_at: float, think: float, out: dict, errors: dict,
                mine: list[float]) -> None:
    i = random.randrange(len(routes))
    if think:  # users who pause do not all start in the same instant
        await asyncio.sleep(random.uniform(0, think))
    while time.monotonic() < stop_at:
        name, path = routes[i % len(routes)]
        i += 1
        started = time.perf_counter()
        try:
            ok = await asyncio.wait_for(tab.get(path), 30) == 200
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            await tab.close()
            ok = False
        elapsed = time.perf_counter() - started
        (out if ok else errors).setdefault(name, []).append(elapsed)
        mine.append(elapsed)
        if think:
            await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))


async def _phase(url: str, accounts: list[dict], users: int, seconds: float, think: float,
                 platform: Platform) -> tuple[dict, dict, float, dict]:
    """`users` sessions (sharing the accounts' cookies) for `seconds`; latencies per route, and
    the CPU seconds the web processes, the worker (with its pool) and this client used (with
    each user's median latency, under "tabs")."""
    clients = []
    for n in range(users):
        account = accounts[n % len(accounts)]
        clients.append((_Tab(url, dict(account["client"].cookies)), _routes(account)))
    out: dict[str, list[float]] = {}
    errors: dict[str, list[float]] = {}
    web, worker = (_tree(child.pid) for child in platform.children)
    before = {"web": _cpu_seconds(web), "worker": _cpu_seconds(worker), "client": time.process_time()}
    started = time.monotonic()
    stop_at = started + seconds
    tabs: list[list[float]] = [[] for _ in clients]
    await asyncio.gather(*(_user(c, r, stop_at, think, out, errors, mine) for (c, r), mine in zip(clients, tabs)))
    tab_medians = sorted(statistics.median(t) for t in tabs if t)  # each user's median latency
    wall = time.monotonic() - started
    cpu = {"web": _cpu_seconds(web) - before["web"], "worker": _cpu_seconds(worker) - before["worker"],
           "client": time.process_time() - before["client"], "tabs": tab_medians}
    for tab, _ in clients:
        await tab.close()
    return out, errors, wall, cpu


def _report(title: str, out: dict, errors: dict, wall: float, cpu: dict) -> None:
    everything = [v for values in out.values() for v in values]
    print(f"\n{title}: {len(everything)} requests in {wall:.1f} s ({len(everything) / wall:.0f}/s), "
          f"{sum(len(v) for v in errors.values())} errors, load average {os.getloadavg()[0]:.1f}")
    print(f"  CPU used: web processes {cpu['web']:.1f} s ({1000 * cpu['web'] / max(1, len(everything)):.1f} ms per "
          f"request), worker and pool {cpu['worker']:.1f} s, this client {cpu['client']:.1f} s; "
          f"{(cpu['web'] + cpu['worker'] + cpu['client']) / wall:.2f} of {os.cpu_count()} cores")
    if cpu["tabs"]:  # far apart: some users wait for a busier web process than others
        print(f"  each user's median: {1000 * cpu['tabs'][0]:.0f}-{1000 * cpu['tabs'][-1]:.0f} ms")
    print(f"  {'route':38s} {'n':>6s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}")
    for name in sorted(out):
        values = out[name]
        print(f"  {name:38s} {len(values):6d} {1000 * statistics.median(values):8.0f} "
              f"{1000 * _percentile(values, 0.99):8.0f} {1000 * max(values):8.0f}")
    if everything:
        print(f"  {'all routes':38s} {len(everything):6d} {1000 * statistics.median(everything):8.0f} "
              f"{1000 * _percentile(everything, 0.99):8.0f} {1000 * max(everything):8.0f}")
    for name, values in sorted(errors.items()):
        print(f"  errors on {name}: {len(values)}")


async def _states(jobs: list[tuple[dict, str]]) -> list[str]:
    return [(await account["client"].get(f"/api/v1/datasets/{did}")).json()["state"] for account, did in jobs]


async def _run(args) -> None:
    from src.vision.synthetic import make_video

    platform = Platform(args.web_workers)
    try:
        url = platform.start()
        small, long = platform.root / "small.mp4", platform.root / "long.mp4"
        truth_small = make_video(small, width=320, height=240, n_frames=60, n_objects=1, seed=1, object_size=(40, 70))
        truth_long = make_video(long, width=640, height=360, n_frames=args.job_frames, n_objects=3, seed=2,
                                object_size=(40, 90), max_speed=1.5)
        await _wait_up(url, platform)
        processes = platform.env.get("WEB_WORKERS") or "default"
        print(f"Data Forge on {url}: WEB_WORKERS={processes}, {os.cpu_count()} CPU cores, "
              f"load average before {os.getloadavg()[0]:.1f}; {args.users} users, {args.seconds:g} s per phase, "
              f"think {args.think:g} s", flush=True)
        accounts = [await _account(url, i, small) for i in range(ACCOUNTS)]
        box = [round(float(v), 1) for v in truth_small[1][0]]
        for account in accounts:
            response = await account["client"].put(f"/api/v1/datasets/{account['dataset']}/keyframes/0",
                                                   json={"objects": [{"track_id": 1, "class": "box", "box": box}]})
            assert response.status_code == 200, response.text

        # warm-up, not counted: each web process opens its database connections and fills its caches
        await _phase(url, accounts, args.users, 5, args.think, platform)
        out, errors, wall, cpu = await _phase(url, accounts, args.users, args.seconds, args.think, platform)
        _report("idle", out, errors, wall, cpu)

        # the jobs: long videos, confirmed together by different accounts (a user may run 2 at a
        # time), so the worker's pool is busy for the whole phase
        seeds = {"objects": [{"track_id": t, "class": "box", "box": [round(float(v), 1) for v in g[0]]}
                             for t, g in truth_long.items()]}
        options = {"sampling": {"mode": "every_n", "every_n": 10}, "formats": ["yolo", "coco"], "review_budget": 0.0}
        jobs = []
        for account in accounts[:args.jobs]:
            client = account["client"]
            await _top_up(platform.env, account["email"], 10_000_000)
            with long.open("rb") as f:
                video = (await client.post("/api/v1/videos", files={"file": ("long.mp4", f, "video/mp4")})).json()
            draft = (await client.post("/api/v1/datasets", json={"video_id": video["id"], "name": "job",
                                                                 "classes": ["box"]})).json()
            assert (await client.put(f"/api/v1/datasets/{draft['id']}/keyframes/0", json=seeds)).status_code == 200
            assert (await client.put(f"/api/v1/datasets/{draft['id']}/options", json=options)).status_code == 200
            jobs.append((account, draft["id"]))
        for account, did in jobs:
            response = await account["client"].post(f"/api/v1/datasets/{did}/confirm")
            assert response.status_code == 202, response.text
        deadline = time.monotonic() + 120
        while "propagating" not in await _states(jobs):
            if time.monotonic() > deadline:
                raise SystemExit("the dataset jobs did not start; see the worker log")
            await asyncio.sleep(0.5)
        out, errors, wall, cpu = await _phase(url, accounts, args.users, args.seconds, args.think, platform)
        states = await _states(jobs)
        _report(f"during {args.jobs} dataset jobs ({args.job_frames} frames each; states at the end: {', '.join(states)})",
                out, errors, wall, cpu)
        if all(s in ("ready", "failed") for s in states):
            print("  (the jobs ended before the phase did: part of it ran idle; raise --job-frames)")
        for account in accounts:
            await account["client"].aclose()
        served = (platform.root / "web.log").read_text(errors="replace").count("Started server process")
        print(f"\nweb server processes that served: {served}; load average after {os.getloadavg()[0]:.1f}")
    finally:
        platform.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--think", type=float, default=0.0, help="mean seconds between one user's requests")
    parser.add_argument("--web-workers", type=int, default=None, help="WEB_WORKERS (default: the setting's)")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--job-frames", type=int, default=2000)
    args = parser.parse_args(argv)
    if not (1 <= args.users <= 500 and 1 <= args.seconds <= 300):
        parser.error("--users 1..500 and --seconds 1..300: the bench is bounded")
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
