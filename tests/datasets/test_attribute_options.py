"""The two dataset options of attributes (docs/attributes.md): a share of the review budget
for attribute checks at the AVA timestamps (`review_attribute_share`), and the attribute whose
values are the AVA actions (`ava_action_attribute`); through the API and the create page, to
the review job, the charge and the AVA files."""

from __future__ import annotations

import csv
import io
import zipfile

from src.billing.service import DEFAULT_PRICES
from tests.datasets.conftest import OPTIONS, make_draft, run_worker, top_up

ACTION = {"class": "person", "name": "action", "kind": "select", "values": ["stand", "walk"], "mutable": True}
POSE = {"class": "person", "name": "pose", "kind": "multi", "values": ["upright", "bent", "crouched"]}


async def _draft_with_action(client, **values) -> tuple[dict, str]:
    """Crossing (120 frames at 30 fps, one pedestrian) with `action` on person, walk on frame 0."""
    dataset = await make_draft(client)
    base = f"/api/v1/datasets/{dataset['id']}"
    assert (await client.post(f"{base}/attributes", json=ACTION)).status_code == 201
    (obj,) = (await client.get(f"{base}/keyframes")).json()["keyframes"][0]["objects"]
    response = await client.put(f"{base}/keyframes/0", json={"objects": [
        {**obj, "attributes": {"action": "walk", **values}}]})
    assert response.status_code == 200, response.text
    return dataset, base


def _ava(zipped: bytes) -> tuple[list[str], dict[int, list[str]]]:
    """(label map names, {second: [action names of person 1]}) of an AVA zip."""
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    (table,) = [n for n in archive.namelist() if n.endswith(".csv")]
    (labels,) = [n for n in archive.namelist() if n.endswith("label_map.pbtxt")]
    names = [line.split('"')[1] for line in archive.read(labels).decode().splitlines() if line.startswith("  name:")]
    actions: dict[int, list[str]] = {}
    for row in csv.reader(io.StringIO(archive.read(table).decode())):
        assert row[7] == "1"
        actions.setdefault(int(row[1]), []).append(names[int(row[6]) - 1])
    return names, actions


async def test_a_share_of_the_review_checks_attribute_values_at_ava_timestamps(app, user_client, services):
    await top_up(app, "user@example.com", 100_000)
    dataset, base = await _draft_with_action(user_client)

    async def quote(**options) -> dict:
        response = await user_client.put(f"{base}/options", json={**OPTIONS, "review_by": "me", **options})
        assert response.status_code == 200, response.text
        return (await user_client.get(f"{base}/quote")).json()

    boxes_only = await quote(review_budget=0.05)
    shared = await quote(review_budget=0.05, review_attribute_share=0.5)
    # the same review frames, at the same price: half of them are attribute checks
    assert shared["review_frames"] == boxes_only["review_frames"] == 6  # 5% of 120 frames
    assert shared["attribute_frames"] == 3 and boxes_only["attribute_frames"] == 0
    assert shared["total_cents"] == boxes_only["total_cents"]
    bad = await user_client.put(f"{base}/options", json={**OPTIONS, "review_attribute_share": 1.5})
    assert bad.status_code == 422 and "review_attribute_share" in bad.text and "less than or equal to 1" in bad.text

    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])
    assert (await user_client.get(base)).json()["state"] == "in_review"
    (job,) = (await user_client.get("/api/v1/review/jobs")).json()
    checks = sorted(f["video_frame"] for f in job["frames"] if f["attribute_check"])
    boxes = sorted(f["video_frame"] for f in job["frames"] if not f["attribute_check"])
    # 1 s, 2 s and 3 s (walk was only seen on frame 0); the other half by the hard-frame pick
    assert checks == [30, 60, 90]
    assert len(boxes) == 3 and not set(boxes) & {0, *checks}

    page = await user_client.get(f"/review/jobs/{job['id']}", params={"frame": 60})
    assert 'id="attribute-check"' in page.text and "at 2 s" in page.text
    assert page.text.count('data-check="attributes"') == 3 and "3 hard frames, 3 attribute checks" in page.text
    other = await user_client.get(f"/review/jobs/{job['id']}", params={"frame": boxes[0]})
    assert 'id="attribute-check"' not in other.text

    # the person stands at 2 s: set on the check, the box as proposed
    (proposed,) = next(f for f in job["frames"] if f["video_frame"] == 60)["proposed"]
    assert proposed["attributes"] == {"action": "walk"}
    fixed = await user_client.put(f"/api/v1/review/jobs/{job['id']}/frames/60", json={
        "decision": "fixed", "objects": [{**proposed, "attributes": {"action": "stand"}}]})
    assert fixed.status_code == 200, fixed.text
    assert (await user_client.post(f"/api/v1/review/jobs/{job['id']}/complete")).json()["stage"] == "acceptance"
    await run_worker(services[1])
    done = (await user_client.get(base)).json()
    assert done["state"] == "ready", done
    # charged like any reviewed frames: 6 of them
    assert done["charged_cents"] == (done["delivered_frames"] * DEFAULT_PRICES["per_frame_cents"]
                                     + 6 * DEFAULT_PRICES["per_reviewed_frame_cents"])
    _, actions = _ava((await user_client.get(f"{base}/download", params={"format": "ava"})).content)
    # stand from the check at 2 s; 3 s was accepted as shown (walk)
    assert actions == {0: ["walk"], 1: ["walk"], 2: ["stand"], 3: ["walk"]}


async def test_the_ava_actions_come_from_the_attribute_chosen(app, user_client, services):
    await top_up(app, "user@example.com", 100_000)
    dataset, base = await _draft_with_action(user_client)
    for spec in (POSE, {"class": "person", "name": "moving", "kind": "checkbox"},
                 {"class": "person", "name": "spare", "kind": "select", "values": ["a", "b"]}):
        assert (await user_client.post(f"{base}/attributes", json=spec)).status_code == 201
    options = {**OPTIONS, "formats": ["ava"]}

    async def choose(name):
        return await user_client.put(f"{base}/options", json={**options, "ava_action_attribute": name})

    unknown = await choose("gait")
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == ("The AVA action attribute 'gait' is not an attribute of this draft's classes "
                                        "(list attributes: action (person), pose (person), spare (person)).")
    checkbox = await choose("moving")
    assert checkbox.status_code == 422 and "'moving' of person is a checkbox attribute" in checkbox.json()["detail"]
    assert (await choose("")).status_code == 422

    # the create page offers the list attributes, and its live quote refuses the same way
    page = await user_client.get(f"/datasets/{dataset['id']}/create")
    assert 'name="ava_action_attribute"' in page.text and '<option value="pose"' in page.text
    assert '<option value="moving"' not in page.text
    form = {"sampling_mode": "all", "train": "80", "valid": "20", "test": "0", "formats": "ava", "review_budget": "0"}
    refused = await user_client.post(f"/datasets/{dataset['id']}/quote", data={**form, "ava_action_attribute": "moving"})
    assert "is a checkbox attribute" in refused.text and 'id="quote-total"' not in refused.text
    assert (await user_client.get(base)).json()["options"].get("ava_action_attribute") is None  # a refusal keeps nothing
    quoted = await user_client.post(f"/datasets/{dataset['id']}/quote", data={**form, "ava_action_attribute": "pose"})
    assert 'id="quote-total"' in quoted.text and 'role="alert"' not in quoted.text
    kept = (await user_client.get(base)).json()["options"]  # valid options are the draft's now (the preview's too)
    assert kept["ava_action_attribute"] == "pose" and kept["formats"] == ["ava"] and kept["review_budget"] == 0

    # chosen, then removed from the draft: the confirm says so
    assert (await choose("spare")).status_code == 200
    (spare,) = [a for a in (await user_client.get(f"{base}/attributes")).json()["attributes"] if a["name"] == "spare"]
    assert (await user_client.delete(f"{base}/attributes/{spare['id']}")).status_code == 204
    gone = await user_client.post(f"{base}/confirm")
    assert gone.status_code == 422 and "'spare' is not an attribute" in gone.json()["detail"]

    assert (await choose("pose")).status_code == 200
    (obj,) = (await user_client.get(f"{base}/keyframes")).json()["keyframes"][0]["objects"]
    assert (await user_client.put(f"{base}/keyframes/0", json={"objects": [
        {**obj, "attributes": {"action": "walk", "pose": ["bent", "crouched"]}}]})).status_code == 200
    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])
    assert (await user_client.get(base)).json()["state"] == "ready"
    names, actions = _ava((await user_client.get(f"{base}/download", params={"format": "ava"})).content)
    # without the option the first list attribute (action: stand, walk) would be the actions
    assert names == ["upright", "bent", "crouched"]
    assert actions == {second: ["bent", "crouched"] for second in range(4)}


async def test_the_preview_marks_the_attribute_checks_the_review_will_get(app, user_client, services):
    """With a share of the review for attribute checks, the preview lists them beside the box
    checks (the editor's timeline draws them), the same frames the dataset's review gets; a
    change of the share makes another preview."""
    dataset, base = await _draft_with_action(user_client)
    put = lambda **o: user_client.put(f"{base}/options", json={**OPTIONS, "review_by": "me", **o})  # noqa: E731
    assert (await put(review_budget=0.05)).status_code == 200
    plain = (await user_client.post(f"{base}/preview")).json()
    await run_worker(services[1])
    first = (await user_client.get(f"{base}/preview")).json()
    assert first["state"] == "ready" and first["attribute_checks"] == [] and len(first["hard_frames"]) == 6

    assert (await put(review_budget=0.05, review_attribute_share=0.5)).status_code == 200
    shared = (await user_client.post(f"{base}/preview")).json()
    assert shared["key"] != plain["key"]
    await run_worker(services[1])
    marked = (await user_client.get(f"{base}/preview")).json()
    assert marked["attribute_checks"] == [30, 60, 90]  # as the review below gets them
    assert len(marked["hard_frames"]) == 3 and not set(marked["hard_frames"]) & {0, 30, 60, 90}

    await top_up(app, "user@example.com", 100_000)
    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])
    (job,) = (await user_client.get("/api/v1/review/jobs")).json()
    assert sorted(f["video_frame"] for f in job["frames"] if f["attribute_check"]) == marked["attribute_checks"]
