"""Journeys as people walk them, in Chromium, one browser context per person, through the
pages only (the first admin is the one account made outside the browser, as `forge up` does).

- A new user registers, uploads OTB Crossing on the upload page, adds a second class on the
  draft page, draws the person on frame 0 and again on frame 20 (over its ghost: one track),
  creates the dataset, is refused for balance with the message in the page, is topped up by
  the admin on the admin pages, confirms and sees the progress in words.
- The annotator (registered in the browser, made an annotator by the admin on the admin page)
  opens the dealt job, sees every frame image load, fixes one box, is asked before completing
  with frames pending, accepts the rest, completes; the admin validates.
- The user downloads every format from the dataset page and finds the fix in each.
- The owner reviews their own dataset in the browser (no annotator, no admin).

Screenshots of every step go to $FORGE_SCREENSHOTS (default var/test-screenshots/, not committed).
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from src.config import ROOT
from src.vision.metrics import load_otb
from tests.datasets.conftest import CROSSING, run_worker
from tests.e2e.test_editor_browser import PASSWORD, Canvas, saved

pytestmark = pytest.mark.browser


W, H = 360, 240
SHOTS = Path(os.environ.get("FORGE_SCREENSHOTS", ROOT / "var" / "test-screenshots"))
WIDTH = int(os.environ.get("FORGE_E2E_WIDTH", "1280"))  # 390: walk the journeys as on a phone
TRUTH = load_otb(CROSSING / "groundtruth_rect.txt")


class Person:
    """One person in their own browser context; `shot` saves a numbered screenshot."""

    def __init__(self, browser, base_url: str, name: str):
        self.browser, self.base_url, self.name, self.step = browser, base_url, name, 0

    async def __aenter__(self):
        self.context = await self.browser.new_context(base_url=self.base_url, viewport={"width": WIDTH, "height": 1000},
                                                      accept_downloads=True)
        self.page = await self.context.new_page()
        return self

    async def __aexit__(self, *exc):
        await self.context.close()

    async def shot(self, label: str) -> None:
        self.step += 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SHOTS / f"{self.name}-{self.step:02d}-{label}.png"), full_page=True)


@pytest.fixture
async def browser(live_server):
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def register(person: Person, email: str) -> None:
    page = person.page
    await page.goto("/register")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#register-form button[type=submit]")
    await page.wait_for_url("**/profile")


async def login(person: Person, email: str) -> None:
    page = person.page
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)  # the HTMX form redirects when it worked


def xyxy(frame: int) -> list[float]:
    return [float(v) for v in TRUTH[frame]]


async def upload_and_draft(person: Person, *, name: str) -> str:
    """Upload page -> video page -> new dataset (class person) -> draft page; returns the draft's URL."""
    page = person.page
    await page.goto("/videos")
    await page.set_input_files("#upload-file", str(CROSSING / "video.mp4"))
    await page.click("#upload-form button[type=submit]")
    await page.wait_for_selector("#video-list a:has-text('video')", timeout=60_000)
    await person.shot("uploaded")
    await page.click("#video-list td:nth-child(2) a")
    await page.click("text=New dataset")
    await page.fill("#name", name)
    await page.fill("#classes", "person")
    await page.click("#new-dataset-form button[type=submit]")
    await page.wait_for_url("**/editor**")
    return page.url.split("/editor")[0]


async def draw_two_keyframes(person: Person) -> None:
    """Frame 0, then frame 20 over the ghost of frame 0's box."""
    page = person.page
    canvas = Canvas(page)
    await canvas.ready()
    box0 = xyxy(0)
    await canvas.drag(box0[:2], box0[2:])
    await saved(page)
    await page.fill("#frame-number", "20")
    await page.press("#frame-number", "Enter")
    await page.wait_for_function("new URL(location.href).searchParams.get('frame') === '20'")
    await canvas.ready()
    await person.shot("ghost-on-frame-20")
    box20 = xyxy(20)
    await canvas.drag(box20[:2], box20[2:])
    await saved(page)
    await person.shot("second-keyframe")


async def keyframe_tracks(person: Person, draft_url: str) -> dict[int, list[int]]:
    """{frame: [track ids]} as the editor's own page data holds them after a reload."""
    page = person.page
    await page.goto(f"{draft_url}/editor")
    data = json.loads(await page.locator("#editor-data").text_content())
    return {k["frame"]: [o["track_id"] for o in k["objects"] if not o.get("gone")] for k in data["keyframes"]}


async def test_user_annotator_admin_journey(browser, live_server, app, services):
    from tests.conftest import set_role

    async with Person(browser, live_server, "admin") as admin, Person(browser, live_server, "user") as user, \
            Person(browser, live_server, "annotator") as anna:
        # the first admin exists before anyone else (forge up makes it); everything else is clicked
        await register(admin, "boss@example.com")
        await set_role(app, "boss@example.com", "admin")
        await register(anna, "anna@example.com")
        await register(user, "walker@example.com")
        await user.shot("registered")

        # admin makes anna an annotator on the admin page
        await login(admin, "boss@example.com")
        await admin.page.goto("/admin/users")
        await admin.page.click("text=anna@example.com")
        await admin.page.select_option("#account select[name=role]", "annotator")
        await admin.page.click("#account button:has-text('Save account')")
        await admin.page.wait_for_selector("#account .ok")
        await admin.shot("annotator-role")

        # user: upload, classes on the draft page, two keyframes of one track
        draft_url = await upload_and_draft(user, name="Crossing walk")
        await draw_two_keyframes(user)
        assert await keyframe_tracks(user, draft_url) == {0: [1], 20: [1]}  # one object, not two
        await user.page.goto(draft_url)
        await user.page.fill("#new-class-name", "bag")
        await user.page.click(".add-class button[type=submit]")
        await user.page.wait_for_selector(".class-row[data-name='bag']")
        assert "csrf" not in (await user.page.locator("#classes").inner_text()).lower()  # a fragment, not JSON
        await user.page.fill(".class-row[data-name='bag'] .class-name", "backpack")
        await user.page.click(".class-row[data-name='bag'] button:has-text('Save')")
        await user.page.wait_for_selector(".class-row[data-name='backpack']")
        await user.shot("classes")

        # create: the quote shows the balance; confirm is refused for balance, in the page
        await user.page.click("#create-dataset")
        await user.page.wait_for_url("**/create")
        async with user.page.expect_response("**/quote"):
            await user.page.fill("input[name=review_budget]", "4")
        await user.page.wait_for_selector("#quote-missing")
        assert not await user.page.locator("input[name=review_backend][value=cvat]").count()  # no CVAT configured here
        await user.page.click("#quote button[type=submit]")
        error = user.page.locator("#quote .error[role=alert]")
        await error.wait_for()
        assert "balance" in (await error.inner_text()).lower()
        await user.shot("refused-for-balance")
        assert await error.is_visible(), await user.page.locator("#quote").inner_html()

        # admin tops up on the user's admin page
        await admin.page.goto("/admin/users")
        await admin.page.click("text=walker@example.com")
        await admin.page.fill("#amount_cents", "100000")
        await admin.page.fill("#reason", "first credit")
        await admin.page.click("#balance button[type=submit]")
        await admin.page.wait_for_selector("#balance .ok")
        await admin.shot("topped-up")

        # user confirms: the job page says in words what happens
        await user.page.reload()
        await user.page.wait_for_selector("#quote-balance")
        assert not await user.page.locator("#quote-missing").count()
        await user.page.click("#quote button[type=submit]")
        await user.page.wait_for_url("**/overview")
        await user.shot("confirmed")
        status = await user.page.locator("#status").inner_text()
        assert "None" not in status and "queued" not in status.split()  # words, not raw states

        await run_worker(services[1])
        await user.page.reload()
        status = await user.page.locator("#status").inner_text()
        assert "review" in status.lower(), status
        await user.shot("in-review")

        # annotator: every frame image loads; fix one box; asked before completing; accept the rest
        page = anna.page
        await login(anna, "anna@example.com")
        await page.goto("/review")
        await anna.shot("my-jobs")
        await page.click("text=Open")
        await page.wait_for_url("**/review/jobs/*")
        canvas = Canvas(page)
        await canvas.ready()
        assert await page.locator("#editor-canvas").get_attribute("data-image") == "loaded"
        frames = json.loads(await page.locator("#editor-data").text_content())["review"]["frames"]
        fixed = frames[0]
        proposed = json.loads(await page.locator("#editor-data").text_content())["keyframes"][0]["objects"][0]["box"]
        centre = [(proposed[0] + proposed[2]) / 2, (proposed[1] + proposed[3]) / 2]
        await canvas.drag(centre, [centre[0] - 12, centre[1]])
        await saved(page)
        fix = [proposed[0] - 12, proposed[1], proposed[2] - 12, proposed[3]]
        badge = page.locator(f"#frame-list a[data-frame='{fixed}']")
        assert await badge.get_attribute("data-decision") == "fixed"  # without a reload
        await anna.shot("fixed")
        await page.wait_for_selector("#player-canvas[data-ready='1']")  # the motion around the hard frame
        await page.click("#player-next")
        await page.wait_for_selector("#player-canvas[data-ready='1']")
        await page.click("#accept-frame")  # keeps the fix and moves to the next pending frame
        await page.wait_for_url(f"**frame={frames[1]}")
        assert await page.locator(f"#frame-list a[data-frame='{fixed}']").get_attribute("data-decision") == "fixed"
        await page.click("#complete-job")
        question = page.locator("#complete-confirm")
        await question.wait_for()
        assert f"{len(frames) - 1} frames are still pending" in await question.inner_text()
        await anna.shot("asked-before-completing")
        await page.click("#go-pending")
        for frame in frames[1:]:
            await page.wait_for_url(f"**frame={frame}")
            await canvas.ready()
            assert await page.locator("#editor-canvas").get_attribute("data-image") == "loaded", frame
            await page.click("#accept-frame")
            await page.wait_for_load_state("networkidle")
        assert await page.locator("#pending-count").inner_text() == "0"
        await page.click("#complete-job")
        await page.wait_for_url("**/review")
        await anna.shot("completed")

        # admin validates
        await admin.page.goto("/review")
        await admin.page.click("text=Open")
        await admin.page.wait_for_selector("#accept-job")
        await admin.shot("validating")
        await admin.page.click("#accept-job")
        await admin.page.wait_for_url("**/review")

        await run_worker(services[1])
        await user.page.reload()
        await user.page.wait_for_selector("#downloads")
        await user.page.click("#player-play")  # the delivered boxes play on the dataset page
        await user.page.wait_for_timeout(500)
        await user.page.click("#player-play")
        assert int(await user.page.locator("#player-canvas").get_attribute("data-frame")) > 0
        await user.shot("ready")
        archives = {}
        for link in await user.page.locator("#downloads a").all():
            async with user.page.expect_download() as info:
                await link.click()
            download = await info.value
            archives[(await link.inner_text()).strip().lower()] = zipfile.ZipFile(await download.path())
        assert {"yolo", "coco", "cvat", "ava"} <= set(archives)
        for fmt, archive in archives.items():
            assert_fix_in(fmt, archive, fixed, fix)


def near(a, b, tolerance: float = 3.0) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def assert_fix_in(fmt: str, archive: zipfile.ZipFile, frame: int, fix: list[float]) -> None:
    """The reviewed box of `frame` is in the export `fmt`, read as the format's readers do."""
    manifest = json.loads(archive.read("manifest.json"))
    entry = next(f for f in manifest["frames"] if f["frame"] == frame)
    assert entry["source"] == "reviewed", entry
    stem = Path(entry["file"]).stem
    names = archive.namelist()
    if fmt == "yolo":
        (label,) = [n for n in names if n.endswith(f"/{stem}.txt") and "labels" in n]
        boxes = []
        for line in archive.read(label).decode().split("\n"):
            if line.strip():
                _, cx, cy, w, h = (float(v) for v in line.split()[:5])
                boxes.append([(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H])
    elif fmt == "coco":
        boxes = []
        for name in (n for n in names if n.endswith(".json") and n != "manifest.json"):
            data = json.loads(archive.read(name))
            ids = {i["id"] for i in data.get("images", []) if Path(i["file_name"]).stem == stem}
            boxes += [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in data.get("annotations", []) if a["image_id"] in ids)]
    elif fmt == "cvat":
        (xml,) = [n for n in names if n.endswith(".xml")]
        root = ElementTree.fromstring(archive.read(xml))
        index = manifest["frames"].index(entry)
        boxes = [[float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")] for b in root.iter("box")
                 if b.get("outside") != "1" and int(b.get("frame", -1)) in (frame, index)]
        boxes += [[float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")] for image in root.iter("image")
                  if Path(image.get("name", "")).stem == stem for b in image.iter("box")]
    elif fmt == "ava":
        (table,) = [n for n in names if n.endswith(".csv")]
        rows = [r for r in csv.reader(io.StringIO(archive.read(table).decode())) if r]
        assert rows, "AVA CSV is empty"
        fps = 30.0
        if abs(frame / fps - round(frame / fps)) * fps > 0.5:
            return  # AVA holds 1 Hz rows: this frame is not one of them
        boxes = [[float(r[2]) * W, float(r[3]) * H, float(r[4]) * W, float(r[5]) * H] for r in rows
                 if r[1].replace(".", "").isdigit() and round(float(r[1])) == round(frame / fps)]
    else:
        return
    assert any(near(b, fix) for b in boxes), (fmt, frame, fix, boxes)


async def test_owner_reviews_their_own_dataset(browser, live_server, app, services):
    from tests.datasets.conftest import top_up

    async with Person(browser, live_server, "solo") as solo:
        await register(solo, "solo@example.com")
        draft_url = await upload_and_draft(solo, name="Solo")
        canvas = Canvas(solo.page)
        await canvas.ready()
        box0 = xyxy(0)
        await canvas.drag(box0[:2], box0[2:])
        await saved(solo.page)
        await top_up(app, "solo@example.com", 100_000)  # money is an admin's act, walked in the journey above
        await solo.page.goto(f"{draft_url}/create")
        async with solo.page.expect_response("**/quote"):
            await solo.page.check("input[name=review_by][value=me]")
        await solo.page.click("#quote button[type=submit]")
        await solo.page.wait_for_url("**/overview")
        await run_worker(services[1])
        await solo.page.reload()
        await solo.page.click("#review-own")
        await solo.page.wait_for_url("**/review/jobs/*")
        await Canvas(solo.page).ready()
        assert await solo.page.locator("#editor-canvas").get_attribute("data-image") == "loaded"
        await solo.shot("self-review")
        await solo.page.click("#complete-job")
        await solo.page.click("#complete-anyway")
        await solo.page.wait_for_url("**/overview")
        await run_worker(services[1])
        await solo.page.reload()
        await solo.page.wait_for_selector("#downloads")
        await solo.shot("self-reviewed-ready")
