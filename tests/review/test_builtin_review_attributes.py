"""Attribute values in the built-in review: the proposed boxes carry the track's values on the
hard frame, a correction carries `attributes` (checked against the schema: a clear 422), the
review page's editor data has the schemas, and the corrected value holds in the export from
that frame on."""

from __future__ import annotations

import io
import json
import zipfile

from tests.datasets.conftest import OPTIONS, run_worker
from tests.review.conftest import draft_walking



async def test_review_shows_and_corrects_attribute_values(app, user_client, annotators, services):
    anna, rob = annotators
    base = await draft_walking(app, user_client)
    await user_client.put(f"{base}/options", json={**OPTIONS, "review_budget": 0.05})
    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])

    (job,) = (await anna.get("/api/v1/review/jobs")).json()
    assert all(o["attributes"] == {"action": "walk"} for f in job["frames"] for o in f["proposed"])
    page = await anna.get(f"/review/jobs/{job['id']}", headers={"accept": "text/html"})
    assert '"name": "action"' in page.text and 'id="attribute-panel"' in page.text  # the editor's schemas and panel
    frames = sorted(f["video_frame"] for f in job["frames"])
    first = next(f for f in job["frames"] if f["video_frame"] == frames[0])
    box = first["proposed"][0]["box"]
    url = f"/api/v1/review/jobs/{job['id']}/frames/{frames[0]}"
    bad = await anna.put(url, json={"decision": "fixed", "objects": [
        {"track_id": 1, "class": "person", "box": box, "attributes": {"action": "run"}}]})
    assert bad.status_code == 422 and "'run' is not one of stand, walk" in bad.json()["detail"]
    fixed = await anna.put(url, json={"decision": "fixed", "objects": [
        {"track_id": 1, "class": "person", "box": box, "attributes": {"action": "stand"}}]})
    assert fixed.status_code == 200, fixed.text
    corrected = (await anna.get(f"/api/v1/review/jobs/{job['id']}")).json()
    assert next(f for f in corrected["frames"] if f["video_frame"] == frames[0])["corrected"][0]["attributes"] == {
        "action": "stand"}
    assert (await anna.post(f"/api/v1/review/jobs/{job['id']}/complete")).status_code == 200
    assert (await rob.post(f"/api/v1/review/jobs/{job['id']}/validate", json={"accept": True})).status_code == 200
    await run_worker(services[1])
    assert (await user_client.get(base)).json()["state"] == "ready"

    zipped = await user_client.get(f"{base}/download", params={"format": "coco"})
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.json"))
    values = {f["frame"]: f["objects"][0]["attributes"]["action"] for f in manifest["frames"] if f["objects"]}
    # stand from the corrected frame until the next reviewed frame (accepted as walk, as shown)
    following = next((f for f in frames if f > frames[0]), None)
    assert values[frames[0]] == "stand" and values[frames[0] - 1] == "walk"
    if following is not None:
        assert all(values[f] == "stand" for f in range(frames[0], following) if f in values)
        assert values[following] == "walk"
