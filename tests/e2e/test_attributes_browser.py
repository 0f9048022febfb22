"""Actions on a person track, in Chromium: the owner defines an `action` attribute (several of
stand / walk / sit / talk) on `person` on the draft page, sets "walk" on frame 0 with the side
panel's checkbox and "stand" on a later keyframe of the same track with the quick picker
(Shift+1), builds the dataset, and finds both in the AVA CSV (one row per action, the track's id,
at the right timestamps, with the label map of the actions) and in the CVAT XML as box
attributes of that track."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from xml.etree import ElementTree

import httpx
import pytest

from tests.datasets.conftest import CROSSING, run_worker, top_up
from tests.e2e.test_editor_browser import Canvas, saved
from tests.e2e.test_journeys import Person, browser, login, register, upload_and_draft, xyxy  # noqa: F401

pytestmark = pytest.mark.browser
LATER = 60  # the second keyframe: 2 s into the 30 fps video


async def editor_keyframes(page, draft_url: str) -> dict[int, list[dict]]:
    await page.goto(f"{draft_url}/editor")
    data = json.loads(await page.locator("#editor-data").text_content())
    return {k["frame"]: k["objects"] for k in data["keyframes"]}


async def test_action_attribute_from_draft_page_to_ava_and_cvat(browser, live_server, app, services):  # noqa: F811
    async with Person(browser, live_server, "actions") as owner:
        page = owner.page
        await register(owner, "actor@example.com")
        draft_url = await upload_and_draft(owner, name="Crossing actions")

        # the attribute, on the draft page's form
        await page.goto(draft_url)
        await page.select_option("#attribute-class", "person")
        await page.fill("#attribute-name", "action")
        await page.select_option("#attribute-kind", "multi")
        await page.fill("#attribute-values", "stand, walk, sit, talk")
        await page.click("#add-attribute-button")
        await page.wait_for_selector(".attribute-row[data-name='action']")
        await owner.shot("attribute-defined")

        # frame 0: draw the person, tick "walk" in the side panel
        await page.goto(f"{draft_url}/editor?frame=0")
        canvas = Canvas(page)
        await canvas.ready()
        box0 = xyxy(0)
        await canvas.drag(box0[:2], box0[2:])
        await saved(page)
        walk = page.locator("#attribute-panel input[data-attribute='action'][data-value='walk']")
        await walk.check()
        await saved(page)
        await owner.shot("walk-on-frame-0")

        # a later keyframe of the same track (the person has walked away from frame 0's ghost:
        # linked to track 1 in the side panel): the value is inherited, Shift+1 adds "stand"
        # (the first action), then "walk" is unticked
        await page.goto(f"{draft_url}/editor?frame={LATER}")
        await canvas.ready()
        box = xyxy(LATER)
        await canvas.drag(box[:2], box[2:])
        await saved(page)
        await page.select_option("#object-track", "1")
        await saved(page)
        await owner.shot("later-keyframe-drawn")
        assert await walk.is_checked()  # the track walks here too, from frame 0
        assert "from frame 0" in await page.locator("#attribute-panel .attribute-from").inner_text()
        await page.locator("#editor-canvas").focus()
        await page.keyboard.press("Shift+Digit1")
        await saved(page)
        assert await page.locator("#attribute-panel input[data-value='stand']").is_checked()
        await walk.uncheck()
        await saved(page)
        segments = await page.locator("#attribute-panel .attribute-segments").inner_text()
        assert "frame 0: walk" in segments and f"frame {LATER}: stand" in segments
        await owner.shot("stand-on-later-frame")
        keyframes = await editor_keyframes(page, draft_url)
        assert [(o["track_id"], o["attributes"]) for o in keyframes[0]] == [(1, {"action": ["walk"]})]
        assert [(o["track_id"], o["attributes"]) for o in keyframes[LATER]] == [(1, {"action": ["stand"]})]

        # build: every frame, no review
        await top_up(app, "actor@example.com", 100_000)
        await page.goto(f"{draft_url}/create")
        await page.check("input[name=sampling_mode][value=all]")
        async with page.expect_response("**/quote"):
            await page.fill("input[name=review_budget]", "0")
        await page.click("#quote button[type=submit]")
        await page.wait_for_url("**/overview")
        await run_worker(services[1])
        await page.reload()
        await page.wait_for_selector("#downloads")
        archives = {}
        for link in await page.locator("#downloads a").all():
            async with page.expect_download() as info:
                await link.click()
            archives[(await link.inner_text()).strip().lower()] = zipfile.ZipFile(await (await info.value).path())
        await owner.shot("ready")

    # AVA: label map of the actions; walk (id 2) at 0 s and 1 s, stand (id 1) from 2 s on, person 1
    ava = archives["ava"]
    (table,) = [n for n in ava.namelist() if n.endswith(".csv")]
    rows = [r for r in csv.reader(io.StringIO(ava.read(table).decode())) if r]
    (labels,) = [n for n in ava.namelist() if n.endswith("label_map.pbtxt")]
    names = [line.split('"')[1] for line in ava.read(labels).decode().splitlines() if line.startswith("  name:")]
    assert names == ["stand", "walk", "sit", "talk"]
    actions = {(int(r[1]), int(r[7])): [] for r in rows}
    for r in rows:
        actions[(int(r[1]), int(r[7]))].append(names[int(r[6]) - 1])
    assert actions[(0, 1)] == ["walk"] and actions[(1, 1)] == ["walk"]
    assert actions[(2, 1)] == ["stand"] and actions[(3, 1)] == ["stand"]
    assert {pid for _, pid in actions} == {1}

    # CVAT for video: the label declares a checkbox per action; track 1's boxes carry the values
    cvat = archives["cvat"]
    (xml,) = [n for n in cvat.namelist() if n.endswith(".xml")]
    root = ElementTree.fromstring(cvat.read(xml))
    declared = [a.findtext("name") for a in root.iter("attribute") if a.findtext("name")]
    assert {"action:stand", "action:walk", "action:sit", "action:talk"} <= set(declared)
    (track,) = [t for t in root.iter("track") if t.get("id") == "1"]
    by_frame = {int(b.get("frame")): {a.get("name"): a.text for a in b.iter("attribute")}
                for b in track.iter("box") if b.get("outside") == "0"}
    assert by_frame[0]["action:walk"] == "true" and by_frame[0]["action:stand"] == "false"
    assert by_frame[LATER - 1]["action:walk"] == "true"
    assert by_frame[LATER]["action:stand"] == "true" and by_frame[LATER]["action:walk"] == "false"


async def _api_draft(base_url: str, headers: dict, attributes: list[dict], values: dict) -> dict:
    """Crossing uploaded and drafted through the API, with `attributes` on person and the
    person's box on frame 0 carrying `values`."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as api:
        with (CROSSING / "video.mp4").open("rb") as f:
            video = (await api.post("/api/v1/videos", files={"file": ("crossing.mp4", f, "video/mp4")})).json()
        draft = (await api.post("/api/v1/datasets", json={"video_id": video["id"], "name": "Crossing actions",
                                                          "classes": ["person"]})).json()
        for spec in attributes:
            assert (await api.post(f"/api/v1/datasets/{draft['id']}/attributes", json=spec)).status_code == 201
        box = {"track_id": 1, "class": "person", "box": xyxy(0), "attributes": values}
        assert (await api.put(f"/api/v1/datasets/{draft['id']}/keyframes/0", json={"objects": [box]})).status_code == 200
    return draft


ACTION = {"class": "person", "name": "action", "kind": "select", "values": ["stand", "walk"], "mutable": True}
POSE = {"class": "person", "name": "pose", "kind": "multi", "values": ["upright", "bent"], "mutable": True}


async def test_attribute_checks_and_the_ava_action_attribute_chosen_on_the_create_page(
    browser, live_server, app, services,  # noqa: F811
):
    """The owner picks `pose` as the AVA actions and half of the review for attribute checks on
    the create page (the quote says how many), reviews the job themselves: the checks are the
    AVA timestamps, marked as such; the AVA CSV has the pose as actions."""
    from tests.e2e.test_review_browser import _account

    owner = await _account(live_server, "poser@example.com")
    await top_up(app, "poser@example.com", 100_000)
    draft = await _api_draft(live_server, owner, [ACTION, POSE], {"action": "walk", "pose": ["bent"]})
    async with Person(browser, live_server, "attribute-checks") as person:
        page = person.page
        await login(person, "poser@example.com")
        await page.goto(f"/datasets/{draft['id']}/create")
        await page.select_option("#ava_action_attribute", "pose")
        await page.check("input[name=review_by][value=me]")
        await page.fill("input[name=review_budget]", "5")
        async with page.expect_response("**/quote"):
            await page.fill("input[name=review_attribute_share]", "50")
        assert (await page.locator("#quote-attribute-frames").inner_text()).strip() == "3"
        await person.shot("create-page")
        await page.click("#quote button[type=submit]")
        await page.wait_for_url("**/overview")
        await run_worker(services[1])

        await page.goto("/review")
        await page.click("text=Open")
        await page.wait_for_url("**/review/jobs/*")
        assert "3 hard frames, 3 attribute checks" in await page.locator("#review-panel").inner_text()
        checks = page.locator("#frame-list a[data-check=attributes]")
        assert [await a.get_attribute("data-frame") for a in await checks.all()] == ["30", "60", "90"]
        box_check = page.locator("#frame-list a:not([data-check])").first
        frame = await box_check.get_attribute("data-frame")
        await box_check.click()
        await page.wait_for_url(f"**frame={frame}**")
        assert await page.locator("#attribute-check").count() == 0  # a box check says nothing of attributes
        await checks.first.click()
        await page.wait_for_url("**frame=30**")
        notice = page.locator("#attribute-check")
        assert await notice.is_visible() and "Attribute check at 1 s" in await notice.inner_text()
        values = " ".join((await page.locator("#attribute-check-values").inner_text()).split())
        assert values == "#1 person: action walk; pose bent"  # what the track carries there, from frame 0
        await person.shot("attribute-check")
        await page.set_viewport_size({"width": 390, "height": 844})
        box = await notice.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390  # fits a phone
        await person.shot("attribute-check-phone")
        await page.set_viewport_size({"width": 1280, "height": 1000})

        # on the check at 3 s the person is upright too: click the box (the lower part of the
        # canvas is below the fold), tick the value; the frame is fixed, the box unmoved
        await checks.last.click()
        await page.wait_for_url("**frame=90**")
        canvas = Canvas(page)
        await canvas.ready()
        data = json.loads(await page.locator("#editor-data").text_content())
        (box,) = next(k for k in data["keyframes"] if k["frame"] == 90)["objects"]
        await page.mouse.click(*canvas.at((box["box"][0] + box["box"][2]) / 2, (box["box"][1] + box["box"][3]) / 2))
        upright = page.locator("#attribute-panel input[data-attribute='pose'][data-value='upright']")
        await upright.check()
        await saved(page)
        await page.reload()
        values = " ".join((await page.locator("#attribute-check-values").inner_text()).split())
        assert values == "#1 person: action walk; pose upright, bent"
        assert "#90 · attributes · fixed" in await page.locator("#frame-list").inner_text()
        await person.shot("attribute-check-fixed")
        await page.click("#complete-job")
        await page.click("#complete-anyway")
        await page.wait_for_url("**/overview")  # the owner's completion is the acceptance
        await run_worker(services[1])

    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        assert (await api.get(f"/api/v1/datasets/{draft['id']}")).json()["state"] == "ready"
        ava = zipfile.ZipFile(io.BytesIO((await api.get(f"/api/v1/datasets/{draft['id']}/download",
                                                        params={"format": "ava"})).content))
    (labels,) = [n for n in ava.namelist() if n.endswith("label_map.pbtxt")]
    assert [line.split('"')[1] for line in ava.read(labels).decode().splitlines() if line.startswith("  name:")] == [
        "upright", "bent"]
    (table,) = [n for n in ava.namelist() if n.endswith(".csv")]
    actions: dict[int, list[str]] = {}
    for row in csv.reader(io.StringIO(ava.read(table).decode())):
        actions.setdefault(int(row[1]), []).append(row[6])
    assert actions == {0: ["2"], 1: ["2"], 2: ["2"], 3: ["1", "2"]}  # bent all along, upright too from the check


async def test_the_admin_sees_kappa_per_attribute_on_the_review_page(browser, live_server, app, services):  # noqa: F811
    """Two annotators double-review a dataset with an `action` attribute and agree on the boxes
    but not on every value: the admin's review page shows the kappa of `action` beside the box
    agreement, per job pair and per annotator pair, on a laptop and on a phone."""
    from tests.conftest import set_role
    from tests.e2e.test_review_browser import _account

    owner = await _account(live_server, "crowd@example.com")
    await top_up(app, "crowd@example.com", 100_000)
    tokens = {}
    for email in ("anna@example.com", "rob@example.com"):
        tokens[email] = await _account(live_server, email)
        await set_role(app, email, "annotator")
    await _account(live_server, "chief@example.com")
    await set_role(app, "chief@example.com", "admin")
    draft = await _api_draft(live_server, owner, [ACTION], {"action": "walk"})
    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        await api.put(f"/api/v1/datasets/{draft['id']}/options", json={
            "review_budget": 0.05, "double_review_share": 0.5, "auto_accept_agreement": 0.9, "formats": ["ava"]})
        assert (await api.post(f"/api/v1/datasets/{draft['id']}/confirm")).status_code == 202
    await run_worker(services[1])
    jobs = {}
    for email, headers in tokens.items():
        async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=60) as api:
            (jobs[email],) = (await api.get("/api/v1/review/jobs")).json()
    shared = [f["video_frame"] for f in jobs["rob@example.com"]["frames"]]
    # anna: stand, walk, walk on the shared frames; rob: stand, stand, walk -> kappa 0.4
    for email, frames in (("anna@example.com", shared[:1]), ("rob@example.com", shared[:2])):
        job = jobs[email]
        async with httpx.AsyncClient(base_url=live_server, headers=tokens[email], timeout=60) as api:
            for frame in frames:
                (box,) = next(f for f in job["frames"] if f["video_frame"] == frame)["proposed"]
                response = await api.put(f"/api/v1/review/jobs/{job['id']}/frames/{frame}", json={
                    "decision": "fixed", "objects": [{**box, "attributes": {"action": "stand"}}]})
                assert response.status_code == 200, response.text
            assert (await api.post(f"/api/v1/review/jobs/{job['id']}/complete")).status_code == 200

    async with Person(browser, live_server, "attribute-kappa") as admin:
        page = admin.page
        await login(admin, "chief@example.com")
        await page.goto("/admin/review")
        header = page.locator("table.agreement th", has_text="Attribute kappa")
        assert await header.is_visible()
        cells = page.locator(".attribute-kappa[data-attribute=action]")
        assert [(await c.inner_text()).replace("\xa0", " ") for c in await cells.all()] == ["action 0.40"] * 2
        assert await page.locator("table.pairs th", has_text="Attribute kappa").is_visible()
        await admin.shot("admin-review")
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.locator("table.agreement").scroll_into_view_if_needed()
        await admin.shot("admin-review-phone")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # the tables scroll inside their box, not the page
