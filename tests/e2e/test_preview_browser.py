"""In a real browser: draw one box on frame 0, the editor previews the track (worker job),
scrub to the middle and find the previewed box near the ground truth, drag it onto the
object (fix in place: a keyframe of the same track), and the neighbours follow in the
new preview; the timeline has a lane per track and jumps where it is clicked."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest

from src.vision.metrics import iou, load_otb
from tests.datasets.conftest import CROSSING, run_worker
from tests.e2e.test_editor_browser import Canvas, keyframes, login, saved, setup_draft
from tests.e2e.test_journeys import SHOTS

pytestmark = pytest.mark.browser
TRUTH = load_otb(CROSSING / "groundtruth_rect.txt")


async def _preview(base_url: str, draft: dict, auth: dict, start: int, stop: int) -> dict:
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as api:
        return (await api.get(f"/api/v1/datasets/{draft['id']}/preview", params={"start": start, "stop": stop})).json()


async def _ready(page, services) -> None:
    await page.wait_for_selector("#preview-status[data-state='running']", timeout=10_000)
    await run_worker(services[1])
    await page.wait_for_selector("#preview-status[data-state='ready']", timeout=30_000)


async def test_preview_scrub_fix_split_merge_end(page, live_server, app, services):
    draft, auth = await setup_draft(live_server)
    await login(page)
    await page.goto(f"/datasets/{draft['id']}/editor")
    await page.click(".class-button[data-name='person']")
    canvas = Canvas(page)
    await canvas.ready()
    box0 = [float(v) for v in TRUTH[0]]
    await canvas.drag(box0[:2], box0[2:])
    await saved(page)
    await _ready(page, services)
    assert await page.locator("#timeline-canvas").get_attribute("data-tracks") == "1"
    assert "would go to review" in await page.locator("#preview-status").inner_text()

    # scrub to the middle: the previewed box is near the person
    await page.fill("#frame-number", "60")
    await page.press("#frame-number", "Enter")
    await canvas.ready()
    (track,) = (await _preview(live_server, draft, auth, 60, 61))["tracks"]
    shown = track["boxes"][0]
    assert shown is not None and iou(shown, TRUTH[60]) > 0.3, (shown, TRUTH[60])

    # drag the previewed box onto the object: frame 60 becomes a keyframe of track 1
    truth60 = [float(v) for v in TRUTH[60]]
    centre = [(shown[0] + shown[2]) / 2, (shown[1] + shown[3]) / 2]
    target = [(truth60[0] + truth60[2]) / 2, (truth60[1] + truth60[3]) / 2]
    await canvas.drag(centre, target)
    await saved(page)
    frames = {k["frame"]: k["objects"] for k in await keyframes(live_server, draft, auth)}
    assert [o["track_id"] for o in frames[60]] == [1]  # the same object, not a new one
    moved = frames[60][0]["box"]
    assert abs((moved[0] + moved[2]) / 2 - target[0]) < 3 and abs((moved[1] + moved[3]) / 2 - target[1]) < 3
    await _ready(page, services)
    after = await _preview(live_server, draft, auth, 55, 66)
    assert 60 in after["keyframes"]
    assert after["spans"] == [[1, 0, 119]]  # spliced onto the first preview: only track 1, between its keyframes
    near = [iou(b, TRUTH[55 + i]) for i, b in enumerate(after["tracks"][0]["boxes"]) if b]
    assert min(near) > 0.5, near  # the neighbours follow the fix

    # the timeline jumps where it is clicked
    lane = await page.locator("#timeline-canvas").bounding_box()
    await page.locator("#timeline-canvas").click(position={"x": lane["width"] * 0.25, "y": 5})
    for _ in range(50):
        if int(await page.locator("#frame-number").input_value()) < 40:
            break
        await page.wait_for_timeout(100)
    assert 20 <= int(await page.locator("#frame-number").input_value()) < 40
    await page.screenshot(path=str(SHOTS / "preview-timeline.png"), full_page=True)

    # split at frame 60 (another object from there on), then merge it back
    await page.fill("#frame-number", "60")
    await page.press("#frame-number", "Enter")
    await canvas.ready()
    await page.click("#object-list .object-item[data-track-id='1']")
    await page.click("#split-track")
    await page.wait_for_selector("#object-list .object-item[data-track-id='2']")
    assert {k["frame"]: [o["track_id"] for o in k["objects"]] for k in await keyframes(live_server, draft, auth)} == {0: [1], 60: [2]}
    await page.click("#object-list .object-item[data-track-id='2']")
    await page.select_option("#merge-into", "1")
    await page.click("#merge-track")
    await page.wait_for_selector("#object-list .object-item[data-track-id='1']")

    # the person leaves at frame 100: "gone from here" ends the track
    await page.fill("#frame-number", "100")
    await page.press("#frame-number", "Enter")
    await canvas.ready()
    await page.click("#track-list .object-item[data-track-id='1'] button:has-text('gone from here')")
    await saved(page)
    await _ready(page, services)
    await page.screenshot(path=str(SHOTS / "preview-after-edits.png"), full_page=True)
    shown = await _preview(live_server, draft, auth, 0, 120)
    assert shown["spans"] == [[1, 60, 119]]  # the gone mark re-ran 60-119 only; the export below runs it all

    # the dataset built from these keyframes is what the preview showed
    from tests.datasets.conftest import top_up

    await top_up(app, "editor@example.com", 100_000)
    async with httpx.AsyncClient(base_url=live_server, headers=auth, timeout=60) as api:
        url = f"/api/v1/datasets/{draft['id']}"
        await api.put(f"{url}/options", json={"review_budget": 0, "formats": ["coco"], "keep_empty": True})
        assert (await api.post(f"{url}/confirm")).status_code == 202
        await run_worker(services[1])
        assert (await api.get(url)).json()["state"] == "ready"
        archive = zipfile.ZipFile(io.BytesIO((await api.get(f"{url}/download?format=coco")).content))
    delivered = {f["frame"]: [o["box"] for o in f["objects"]] for f in json.loads(archive.read("manifest.json"))["frames"]}
    boxes = shown["tracks"][0]["boxes"]
    for frame in range(120):
        if boxes[frame] is None:
            assert not delivered.get(frame), frame  # gone in the preview: absent in the export
        else:
            (box,) = delivered[frame]
            assert all(abs(a - b) <= 0.2 for a, b in zip(box, boxes[frame])), (frame, box, boxes[frame])
    assert all(b is None for b in boxes[100:])


async def test_a_previewed_box_is_dragged_by_touch_on_a_phone(live_server, services):
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.e2e.test_mobile_browser import Phone, Touch

    draft, auth = await setup_draft(live_server, email="thumb@example.com")
    async with httpx.AsyncClient(base_url=live_server, headers=auth) as api:
        box0 = [float(v) for v in TRUTH[0]]
        await api.put(f"/api/v1/datasets/{draft['id']}/keyframes/0",
                      json={"objects": [{"track_id": 1, "class": "person", "box": box0}]})
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        async with Phone(browser, live_server, "preview-touch") as phone:
            await phone.login("thumb@example.com")
            await phone.page.goto(f"/datasets/{draft['id']}/editor?frame=60")
            await phone.page.wait_for_selector("#editor-canvas[data-ready='1']")
            await run_worker(services[1])
            await phone.page.wait_for_selector("#preview-status[data-state='ready']", timeout=30_000)
            touch = Touch(phone)
            await touch.ready()
            (track,) = (await _preview(live_server, draft, auth, 60, 61))["tracks"]
            shown = track["boxes"][0]
            centre = ((shown[0] + shown[2]) / 2, (shown[1] + shown[3]) / 2)
            await touch.drag(centre, (centre[0] + 15, centre[1]))
            await saved(phone.page)
            await phone.shot("dragged")
            assert phone.errors == []
        await browser.close()
    frames = {k["frame"]: k["objects"] for k in await keyframes(live_server, draft, auth)}
    (moved,) = frames[60]
    assert moved["track_id"] == 1 and abs(moved["box"][0] - (shown[0] + 15)) < 3, (moved, shown)
