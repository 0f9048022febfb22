"""Attributes in a CVAT review: the task's label specs declare them (validated by the CVAT double
against the shared CVAT schema), the pre-annotations carry each box's values, and a value an
annotator changes in CVAT comes back through the import into the built dataset."""

from __future__ import annotations

import io
import json
import zipfile

from tests.datasets.conftest import OPTIONS, make_draft, run_worker, top_up
from tests.review.test_cvat_review import annotators  # noqa: F401  (CVAT usernames set)

ACTION = {"class": "person", "name": "action", "kind": "multi", "values": ["stand", "walk", "sit", "talk"],
          "mutable": True}


async def test_cvat_task_has_attribute_specs_and_changed_values_come_back(
        app, user_client, annotators, services, cvat):  # noqa: F811
    await top_up(app, "user@example.com", 100_000)
    dataset = await make_draft(user_client)
    base = f"/api/v1/datasets/{dataset['id']}"
    assert (await user_client.post(f"{base}/attributes", json=ACTION)).status_code == 201
    keyframe = (await user_client.get(f"{base}/keyframes")).json()["keyframes"][0]
    walk = {"objects": [{**keyframe["objects"][0], "attributes": {"action": ["walk"]}}]}
    assert (await user_client.put(f"{base}/keyframes/0", json=walk)).status_code == 200
    options = {**OPTIONS, "review_budget": 0.05, "review_backend": "cvat"}
    assert (await user_client.put(f"{base}/options", json=options)).status_code == 200
    assert (await user_client.post(f"{base}/confirm")).status_code == 202
    await run_worker(services[1])
    assert (await user_client.get(base)).json()["state"] == "in_review"

    # the label specs: one checkbox per action (CVAT has no several-of kind), mutable
    (person,) = [label for label in cvat.label_ids.values() if label["name"] == "person"]
    specs = {a["name"]: a for a in person["attributes"]}
    assert set(specs) == {"action:stand", "action:walk", "action:sit", "action:talk"}
    assert all(a["input_type"] == "checkbox" and a["mutable"] is True and a["values"] == ["false", "true"]
               for a in specs.values())
    # the pre-annotations carry the propagated value: walk on every hard frame
    jobs = sorted(cvat.jobs)
    boxes = {job: cvat.boxes(job) for job in jobs}
    assert all(b["attributes"]["action:walk"] == "true" and b["attributes"]["action:sit"] == "false"
               for per_job in boxes.values() for frame in per_job.values() for b in frame)

    # the annotator says the person sits on the first hard frame of the first job; nothing else changes
    first_job = jobs[0]
    task_frame = min(boxes[first_job])
    (box,) = boxes[first_job][task_frame]
    cvat.set_boxes(first_job, task_frame, [("person", box["points"], box["group"],
                                            {"action:walk": "false", "action:sit": "true"})])
    names = cvat.task_frames(cvat.jobs[first_job]["task_id"])
    changed_frame = int(names[task_frame].split("_")[1].split(".")[0])
    for job in jobs:
        cvat.set_job(job, stage="acceptance", state="completed")
    await app.state.redis.enqueue_job("cvat_poll")
    await run_worker(services[1])  # import -> resume -> re-propagate with the corrections -> build
    done = (await user_client.get(base)).json()
    assert done["state"] == "ready", done

    zipped = await user_client.get(f"{base}/download", params={"format": "coco"})
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.json"))
    values = {f["frame"]: f["objects"][0]["attributes"]["action"] for f in manifest["frames"] if f["objects"]}
    assert values[0] == ["walk"] and values[changed_frame] == ["sit"]
    assert all(v == ["walk"] for f, v in values.items() if f < changed_frame)
    assert cvat.errors == []
