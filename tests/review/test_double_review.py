"""Double review (QC) through the API and the admin page: a share of the hard frames goes to a
second annotator, agreement is measured per job pair and annotator pair, corrections come from
the primary jobs only, and a pair that agrees enough is accepted without a validator."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from src.billing.service import DEFAULT_PRICES
from src.vision.metrics import load_otb
from tests.datasets.conftest import CROSSING, OPTIONS, make_draft, run_worker, top_up

FAR_AWAY = [2.0, 2.0, 30.0, 60.0]  # a corner of the frame, nowhere near the pedestrian


async def _in_double_review(app, user_client, services, **options) -> dict:
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client)
    body = {**OPTIONS, "review_budget": 0.05, "double_review_share": 0.5, **options}
    assert (await user_client.put(f"/api/v1/datasets/{dataset['id']}/options", json=body)).status_code == 200
    assert (await user_client.post(f"/api/v1/datasets/{dataset['id']}/confirm")).status_code == 202
    await run_worker(services[1])
    state = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert state["state"] == "in_review", state
    return dataset


async def _jobs(anna, rob) -> tuple[dict, dict]:
    """anna's primary job (all 6 hard frames) and rob's QC job."""
    (primary,) = (await anna.get("/api/v1/review/jobs")).json()
    (qc,) = (await rob.get("/api/v1/review/jobs")).json()
    assert not primary["qc"] and qc["qc"]
    return primary, qc


async def _fix(client, job: dict, frame: int, box: list[float]) -> None:
    response = await client.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}",
                                json={"decision": "fixed", "objects": [{"track_id": 1, "class": "person", "box": box}]})
    assert response.status_code == 200, response.text


async def _state(client, dataset: dict) -> str:
    return (await client.get(f"/api/v1/datasets/{dataset['id']}")).json()["state"]


async def test_qc_jobs_go_to_a_second_annotator_and_corrections_come_from_primary_jobs(
    app, user_client, admin_client, annotators, services,
):
    from src.review import service as review_service

    anna, rob = annotators
    dataset = await _in_double_review(app, user_client, services)
    primary, qc = await _jobs(anna, rob)
    frames = [f["video_frame"] for f in primary["frames"]]
    assert len(frames) == 6
    # half of the hard frames, spread over them, given to the other annotator with the same proposals
    assert [f["video_frame"] for f in qc["frames"]] == [frames[1], frames[3], frames[5]]
    assert qc["assignee_id"] != primary["assignee_id"]
    assert ">QC</span>" in (await rob.get("/review")).text and ">QC</span>" not in (await anna.get("/review")).text
    assert [f["proposed"] for f in qc["frames"]] == [f["proposed"] for f in primary["frames"][1::2]]

    truth = load_otb(CROSSING / "groundtruth_rect.txt")
    good = [float(v) for v in truth[frames[3]]]
    await _fix(anna, primary, frames[3], good)
    await _fix(rob, qc, frames[1], FAR_AWAY)  # the second opinion disagrees on one frame
    await _fix(rob, qc, frames[3], good)
    for client, job in ((anna, primary), (rob, qc)):
        assert (await client.post(f"/api/v1/review/jobs/{job['id']}/complete")).json()["stage"] == "validation"

    # each validates the other's job; the dataset waits for both
    assert (await rob.post(f"/api/v1/review/jobs/{primary['id']}/validate", json={"accept": True})).status_code == 200
    assert await _state(user_client, dataset) == "in_review"
    assert (await anna.post(f"/api/v1/review/jobs/{qc['id']}/validate", json={"accept": True})).status_code == 200
    assert await _state(user_client, dataset) == "building"

    import uuid

    async with app.state.sessionmaker() as session:
        seeds, reviewed, dropped = await review_service.corrections(session, dataset_id=uuid.UUID(dataset["id"]))
    assert reviewed == frames and dropped == []
    assert seeds[frames[1]] == primary["frames"][1]["proposed"]  # anna accepted it; rob's far box is ignored
    assert seeds[frames[3]][0]["box"] == pytest.approx(good, abs=0.01)

    await run_worker(services[1])
    done = (await user_client.get(f"/api/v1/datasets/{dataset['id']}")).json()
    assert done["state"] == "ready", done
    zipped = await user_client.get(f"/api/v1/datasets/{dataset['id']}/download", params={"format": "coco"})
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.json"))
    by_frame = {f["frame"]: f for f in manifest["frames"]}
    assert {f for f, item in by_frame.items() if item["source"] == "reviewed"} == set(frames)
    assert all(o["box"] != pytest.approx(FAR_AWAY, abs=1) for o in by_frame[frames[1]]["objects"])
    # charged as quoted: 6 reviewed frames and 3 reviewed again, at the reviewed-frame price
    # (crossing's default quote: 1 cent per frame, object-frames free, above the minimum)
    prices = DEFAULT_PRICES
    assert done["charged_cents"] == (done["delivered_frames"] * prices["per_frame_cents"]
                                     + (6 + 3) * prices["per_reviewed_frame_cents"])


async def test_the_quote_prices_frames_reviewed_twice(user_client):
    from src.datasets.service import qc_frames

    dataset = await make_draft(user_client)
    url = f"/api/v1/datasets/{dataset['id']}"

    async def quote(**options) -> dict:
        assert (await user_client.put(f"{url}/options", json={**OPTIONS, "review_budget": 0.1, **options})).status_code == 200
        return (await user_client.get(f"{url}/quote")).json()

    single, double = await quote(), await quote(double_review_share=0.5)
    assert single["qc_frames"] == 0 and "QC" not in str(single["items"])
    assert double["review_frames"] == single["review_frames"] == 12  # 10% of crossing's 120 frames
    assert double["qc_frames"] == len(qc_frames(range(12), 0.5)) == 6
    (line,) = [item for item in double["items"] if "QC" in item["label"]]
    assert line["quantity"] == 6 and line["cents"] == 6 * DEFAULT_PRICES["per_reviewed_frame_cents"]
    assert double["total_cents"] == single["total_cents"] + line["cents"]


async def test_perfect_agreement_is_accepted_automatically(app, user_client, admin_client, annotators, services):
    anna, rob = annotators
    dataset = await _in_double_review(app, user_client, services, auto_accept_agreement=0.9)
    primary, qc = await _jobs(anna, rob)
    shared = qc["frames"][0]["video_frame"]
    box = [float(v) for v in load_otb(CROSSING / "groundtruth_rect.txt")[shared]]
    await _fix(anna, primary, shared, box)
    await _fix(rob, qc, shared, [v + 0.5 for v in box])  # the same box, half a pixel apart

    done = await anna.post(f"/api/v1/review/jobs/{primary['id']}/complete")
    assert done.json()["stage"] == "validation"  # the QC job is not done yet: nothing to compare
    done = await rob.post(f"/api/v1/review/jobs/{qc['id']}/complete")
    assert done.json()["stage"] == "acceptance"
    assert (await anna.get(f"/api/v1/review/jobs/{primary['id']}")).json()["stage"] == "acceptance"
    assert await _state(user_client, dataset) == "building"

    (row,) = [r for r in (await admin_client.get("/api/v1/admin/review")).json() if r["dataset_id"] == dataset["id"]]
    (pair,) = row["agreement"]["jobs"]
    assert pair["ready"] and pair["box_f1"] == 1.0 and pair["label_kappa"] == 1.0 and pair["auto_accepted"]
    assert [(p["a"], p["b"], p["frames"]) for p in row["agreement"]["pairs"]] == [("anna@example.com", "rob@example.com", 3)]

    await run_worker(services[1])  # the resume was enqueued after the commit
    assert await _state(user_client, dataset) == "ready"


async def test_disagreement_waits_for_the_admin(app, user_client, admin_client, annotators, services):
    anna, rob = annotators
    dataset = await _in_double_review(app, user_client, services, auto_accept_agreement=0.9)
    primary, qc = await _jobs(anna, rob)
    moved = qc["frames"][1]["video_frame"]
    await _fix(rob, qc, moved, FAR_AWAY)
    for client, job in ((anna, primary), (rob, qc)):
        assert (await client.post(f"/api/v1/review/jobs/{job['id']}/complete")).json()["stage"] == "validation"
    assert await _state(user_client, dataset) == "in_review"

    (row,) = [r for r in (await admin_client.get("/api/v1/admin/review")).json() if r["dataset_id"] == dataset["id"]]
    (pair,) = row["agreement"]["jobs"]
    assert pair["ready"] and pair["box_f1"] < 1 and pair["frame_f1"][str(moved)] == 0.0
    assert not pair["auto_accepted"] and pair["meets_threshold"] is False and pair["can_accept"]
    assert row["stages"] == {"annotation": 0, "validation": 2, "acceptance": 0}

    page = await admin_client.get("/admin/review")
    assert page.status_code == 200
    assert dataset["name"] in page.text and "Accept both" in page.text
    assert f"{pair['box_f1']:.3f}" in page.text and f"{moved}: 0.00" in page.text  # mean box F1 < 1, and where
    for client in (user_client, anna):
        assert (await client.get("/admin/review")).status_code == 403
        assert (await client.get("/api/v1/admin/review")).status_code == 403
        assert (await client.post(f"/api/v1/admin/review/qc-jobs/{qc['id']}/accept")).status_code == 403
    assert await _state(user_client, dataset) == "in_review"

    accepted = await admin_client.post(f"/admin/review/qc-jobs/{qc['id']}/accept", headers={"HX-Request": "true"})
    assert accepted.status_code == 200 and "accepted" in accepted.text
    assert await _state(user_client, dataset) == "building"
    audit = (await admin_client.get("/api/v1/admin/audit", params={"action": "review.accept_both"})).json()["items"]
    assert len(audit) == 1 and audit[0]["after"]["qc_job_id"] == qc["id"]
    await run_worker(services[1])
    assert await _state(user_client, dataset) == "ready"


def test_create_form_options():
    from src.datasets.pages import options_from_form

    form = {"train": "80", "valid": "20", "formats": ["coco"], "review_budget": "5"}
    options = options_from_form({**form, "double_review_share": "25", "auto_accept_agreement": "90"})
    assert options.double_review_share == 0.25 and options.auto_accept_agreement == 0.9
    plain = options_from_form(form)
    assert plain.double_review_share == 0 and plain.auto_accept_agreement is None


def test_qc_frames_are_spread_and_deterministic():
    from src.datasets.service import qc_frames

    frames = [3, 10, 20, 31, 40, 52, 60, 77]
    assert qc_frames(frames, 0.5) == [10, 31, 52, 77]
    assert qc_frames(frames, 0.01) == [40]  # at least one, from the middle
    assert qc_frames(frames, 1.0) == frames and qc_frames(frames, 0) == []
