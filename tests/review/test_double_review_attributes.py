"""Double review with attributes: the admin's review page shows Cohen's kappa per attribute
next to the box agreement, for each job pair and each annotator pair, and a pair whose boxes
agree but whose values do not is not accepted automatically."""

from __future__ import annotations

from tests.datasets.conftest import OPTIONS, run_worker
from tests.review.conftest import draft_walking
from tests.review.test_double_review import _jobs

# on the three shared frames: anna says stand, walk, walk; rob stand, stand, walk. Observed
# agreement 2/3, chance (1·2 + 2·1) / 9 = 4/9: kappa (2/3 - 4/9) / (1 - 4/9) = 0.4
KAPPA = 0.4


async def _set(client, job: dict, frame: int, action: str) -> None:
    (box,) = next(f for f in job["frames"] if f["video_frame"] == frame)["proposed"]
    response = await client.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}", json={
        "decision": "fixed", "objects": [{**box, "attributes": {"action": action}}]})
    assert response.status_code == 200, response.text


async def test_the_admin_sees_kappa_per_attribute_beside_the_box_agreement(
    app, user_client, admin_client, annotators, services,
):
    anna, rob = annotators
    base = await draft_walking(app, user_client)
    body = {**OPTIONS, "review_budget": 0.05, "double_review_share": 0.5, "auto_accept_agreement": 0.9}
    assert (await user_client.put(f"{base}/options", json=body)).status_code == 200
    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])

    primary, qc = await _jobs(anna, rob)
    first, second, _ = [f["video_frame"] for f in qc["frames"]]
    await _set(anna, primary, first, "stand")
    await _set(rob, qc, first, "stand")
    await _set(rob, qc, second, "stand")
    for client, job in ((anna, primary), (rob, qc)):
        assert (await client.post(f"/api/v1/review/jobs/{job['id']}/complete")).json()["stage"] == "validation"

    (row,) = [r for r in (await admin_client.get("/api/v1/admin/review")).json() if r["dataset_id"] == base.rsplit("/", 1)[1]]
    (pair,) = row["agreement"]["jobs"]
    assert pair["box_f1"] == 1.0 and pair["label_kappa"] == 1.0  # the same boxes, the same class
    assert pair["attribute_kappa"] == {"action": KAPPA}
    assert not pair["auto_accepted"] and pair["meets_threshold"] is False  # the values disagree too much
    (people,) = row["agreement"]["pairs"]
    assert (people["a"], people["b"], people["attribute_kappa"]) == ("anna@example.com", "rob@example.com",
                                                                      {"action": KAPPA})

    cell = '<span class="attribute-kappa error" data-attribute="action">action&nbsp;0.40</span>'
    page = await admin_client.get("/admin/review")
    assert page.status_code == 200 and page.text.count("<th>Attribute kappa</th>") == 2
    assert page.text.count(cell) == 2  # the job pair and the annotator pair, below the 0.9 threshold
    fragment = await admin_client.get("/admin/review", headers={"HX-Request": "true"})  # the block HTMX swaps
    assert fragment.text.count(cell) == 2 and "<html" not in fragment.text
