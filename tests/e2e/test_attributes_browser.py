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

import pytest

from tests.datasets.conftest import run_worker, top_up
from tests.e2e.test_editor_browser import Canvas, saved
from tests.e2e.test_journeys import Person, browser, register, upload_and_draft, xyxy  # noqa: F401

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
