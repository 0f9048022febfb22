"""Money and crashes: racing confirms, a killed worker, cancel and failure release the reservation."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text

from src.billing.models import LedgerEntry
from src.config import get_settings
from src.datasets.runs import requeue_stale
from tests.datasets.conftest import OPTIONS, make_draft, run_worker, top_up
from tests.test_worker import burst_worker


async def _balance(client) -> int:
    return (await client.get("/api/v1/billing/balance")).json()["balance_cents"]


async def _ledger_kinds(app, dataset_id: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.dataset_id == dataset_id).order_by(LedgerEntry.id))
        return [str(k.value if hasattr(k, "value") else k) for k in rows]


async def test_two_concurrent_confirms_with_balance_for_one(app, user_client):
    first = await make_draft(user_client, name="a")
    second = await make_draft(user_client, name="b")
    price = (await user_client.get(f"/api/v1/datasets/{first['id']}/quote")).json()["total_cents"]
    await top_up(app, "user@example.com", price + price // 2)  # enough for one, not two
    responses = await asyncio.gather(
        user_client.post(f"/api/v1/datasets/{first['id']}/confirm"),
        user_client.post(f"/api/v1/datasets/{second['id']}/confirm"),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 402], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 402)
    assert "top up" in refused.json()["detail"]
    assert await _balance(user_client) == price // 2  # exactly one reservation


async def test_confirming_twice_reserves_and_enqueues_once(app, user_client):
    dataset = await make_draft(user_client)
    await top_up(app, "user@example.com", 100_000)
    for _ in range(2):
        assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202
    assert await _ledger_kinds(app, dataset["id"]) == ["reservation"]
    queued = await app.state.redis.queued_jobs()
    assert [job.job_id for job in queued] == [f"dataset:{dataset['id']}"]


async def test_killed_worker_job_is_restarted_and_charged_once(app, user_client, services, monkeypatch):
    dataset = await make_draft(user_client)
    await top_up(app, "user@example.com", 100_000)
    await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=OPTIONS)
    assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202

    worker = burst_worker(services[1])
    running = asyncio.create_task(worker.main())
    for _ in range(600):  # wait until the job is mid-way
        state = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"]
        if state in ("propagating", "building"):
            break
        await asyncio.sleep(0.05)
    assert state in ("propagating", "building")
    running.cancel()  # the worker dies mid-job
    await asyncio.gather(running, return_exceptions=True)
    await worker.close()
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] in ("propagating", "building")

    monkeypatch.setattr(get_settings(), "job_stale_seconds", 0)
    await asyncio.sleep(0.01)
    requeued = await requeue_stale({"redis": app.state.redis, "sessionmaker": app.state.sessionmaker})
    # The cancelled job is back in arq's queue, not started: arq runs it again itself (the same
    # job id, which still holds the dataset), so requeue_stale leaves it (a SIGKILLed worker:
    # tests/datasets/test_worker_crash.py).
    assert requeued == 0
    await run_worker(services[1])
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready" and done["delivered_frames"] == 120
    assert (await _ledger_kinds(app, dataset["id"])).count("charge") == 1
    async with app.state.sessionmaker() as session:
        assert await session.scalar(text("SELECT count(*) FROM dataset")) == 1
    assert await _balance(user_client) == 100_000 - done["charged_cents"]


async def test_cancel_releases_the_reservation_and_the_job_does_nothing(app, user_client, services):
    dataset = await make_draft(user_client)
    await top_up(app, "user@example.com", 100_000)
    await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")
    assert await _balance(user_client) < 100_000
    cancelled = await user_client.post(f"/api/v1/datasets/{dataset['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert await _balance(user_client) == 100_000
    await run_worker(services[1])
    assert (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"] == "cancelled"
    assert await _ledger_kinds(app, dataset["id"]) == ["reservation", "release"]


async def test_failed_job_releases_and_shows_its_message(app, user_client, services):
    dataset = await make_draft(user_client)
    await top_up(app, "user@example.com", 100_000)
    await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")
    # the stored video is damaged behind the platform's back
    source = get_settings().storage_path / "videos" / dataset["video_id"] / "source"
    source.write_bytes(b"not a video any more")
    await run_worker(services[1])
    failed = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert failed["state"] == "failed" and failed["error"].startswith("The dataset could not be made")
    assert await _balance(user_client) == 100_000
    page = await user_client.get(f"/datasets/{dataset['id']}/overview")
    assert failed["error"].split(":")[0] in page.text


async def test_another_user_gets_404_on_dataset_endpoints(app, user_client, make_client):
    from tests.conftest import login_cookie, register

    dataset = await make_draft(user_client)
    other = make_client()
    await register(other, "other@example.com")
    await login_cookie(other, "other@example.com")
    did = dataset["id"]
    for method, url in [("GET", f"/api/v1/datasets/{did}"), ("GET", f"/api/v1/datasets/{did}/quote"),
                        ("PUT", f"/api/v1/datasets/{did}/options"), ("POST", f"/api/v1/datasets/{did}/confirm"),
                        ("POST", f"/api/v1/datasets/{did}/cancel"), ("GET", f"/api/v1/datasets/{did}/download?format=yolo"),
                        ("GET", f"/datasets/{did}/overview"), ("GET", f"/datasets/{did}/create")]:
        body = {"json": OPTIONS} if method == "PUT" else {}
        response = await other.request(method, url, **body)
        assert response.status_code == 404, (method, url, response.status_code)
    assert (await other.get("/api/v1/datasets")).json() == []


async def test_bad_options_are_refused_clearly(user_client):
    dataset = await make_draft(user_client)
    bad = {**OPTIONS, "split": {"train": 0.5, "valid": 0.2, "test": 0.0}}
    response = await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=bad)
    assert response.status_code == 422 and "add up to 1" in str(response.json()["detail"])
    too_much_review = {**OPTIONS, "review_budget": 0.9}
    assert (await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=too_much_review)).status_code == 422
