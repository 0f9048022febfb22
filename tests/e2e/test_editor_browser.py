"""In a real browser: draw two boxes, give them classes, move one, reload and find them saved;
step to the next frame with → and annotate it too; the draft page shows both keyframes.
Then zoom, delete and undo, a refused tiny box and a gone marker."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "editor@example.com", "sunlit-meadow-42"
W, H = 360, 240  # OTB Crossing


async def setup_draft(base_url: str, email: str = EMAIL) -> tuple[dict, dict]:
    """A user with OTB Crossing uploaded and a draft (helmet, person) on it, through the API."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
        assert (await api.post("/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
        token = (await api.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        path = SHARED_DATA / "sequences/otb_crossing/video.mp4"
        with path.open("rb") as f:
            video = await api.post("/api/v1/videos", files={"file": (path.name, f, "video/mp4")}, headers=auth)
        assert video.status_code == 201, video.text
        body = {"video_id": video.json()["id"], "name": "Crossing", "classes": ["helmet", "person"]}
        draft = await api.post("/api/v1/datasets", json=body, headers=auth)
        assert draft.status_code == 201, draft.text
        return draft.json(), auth


async def login(page, email: str = EMAIL) -> None:
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/videos")


async def keyframes(base_url: str, draft: dict, auth: dict) -> list[dict]:
    async with httpx.AsyncClient(base_url=base_url) as api:
        response = await api.get(f"/api/v1/datasets/{draft['id']}/keyframes", headers=auth)
        return response.json()["keyframes"]


class Canvas:
    """Maps full-resolution video pixels to page coordinates of the editor canvas."""

    def __init__(self, page):
        self.page = page

    async def ready(self):
        await self.page.wait_for_selector("#editor-canvas[data-ready='1']")
        self.rect = await self.page.locator("#editor-canvas").bounding_box()

    def at(self, x: float, y: float) -> tuple[float, float]:
        return self.rect["x"] + x / W * self.rect["width"], self.rect["y"] + y / H * self.rect["height"]

    async def drag(self, start, end):
        mouse = self.page.mouse
        await mouse.move(*self.at(*start))
        await mouse.down()
        await mouse.move(*self.at(*end), steps=6)
        await mouse.up()


async def saved(page):
    await page.wait_for_selector("#save-status[data-state='saved']", timeout=10_000)


def close(box, expected, tolerance=2.0):
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected, strict=True))


async def test_draw_move_save_reload_and_second_keyframe(page, live_server):
    draft, auth = await setup_draft(live_server)
    await login(page)

    await page.goto(f"/datasets/{draft['id']}/editor?frame=0")
    canvas = Canvas(page)
    await canvas.ready()

    # box 1 with the default class (helmet); deselect; box 2, then make it a person
    await canvas.drag((40, 40), (100, 120))
    await page.keyboard.press("Escape")
    await canvas.drag((200, 60), (260, 180))
    await page.select_option("#object-class", "person")
    await saved(page)
    # move box 1 by (+30, +10) by dragging its inside
    await canvas.drag((70, 80), (100, 90))
    await saved(page)
    assert await page.locator("#object-list li").count() == 2

    await page.reload()
    await canvas.ready()
    assert await page.locator("#object-list li").count() == 2
    frames = await keyframes(live_server, draft, auth)
    assert [k["frame"] for k in frames] == [0]
    objects = sorted(frames[0]["objects"], key=lambda o: o["track_id"])
    assert [(o["track_id"], o["class"]) for o in objects] == [(1, "helmet"), (2, "person")]
    assert close(objects[0]["box"], [70, 50, 130, 130]), objects[0]["box"]
    assert close(objects[1]["box"], [200, 60, 260, 180]), objects[1]["box"]

    # → steps to frame 1; a box there makes a second keyframe
    await page.keyboard.press("ArrowRight")
    await page.wait_for_url("**/editor?frame=1")
    await canvas.ready()
    assert await page.input_value("#frame-number") == "1"
    assert await page.locator("#object-list li").count() == 0
    await page.keyboard.press("2")  # person
    await canvas.drag((150, 50), (220, 200))
    await saved(page)
    assert await page.locator(".kf-mark").count() == 2
    frames = await keyframes(live_server, draft, auth)
    assert [k["frame"] for k in frames] == [0, 1]
    new = frames[1]["objects"][0]
    # drawn over the ghost of frame 0's person: the same object (track 2), not a new one
    assert new["class"] == "person" and new["track_id"] == 2
    assert close(new["box"], [150, 50, 220, 200]), new["box"]

    await page.click("#back-to-draft")
    await page.wait_for_selector(".kf-thumb")
    assert await page.locator(".kf-thumb").count() == 2
    assert await page.locator(".kf-box").count() == 3
    await page.click("#create-dataset")
    await page.wait_for_url(f"**/datasets/{draft['id']}/create")


async def test_zoom_delete_undo_tiny_box_and_gone_marker(page, live_server):
    draft, auth = await setup_draft(live_server, "zoom@example.com")
    await login(page, "zoom@example.com")
    await page.goto(f"/datasets/{draft['id']}/editor")
    canvas = Canvas(page)
    await canvas.ready()

    # zoom in at the centre: the point under the cursor stays put, a drag covers fewer pixels
    await page.mouse.move(*canvas.at(180, 120))
    await page.mouse.wheel(0, -400)
    await canvas.drag((180, 120), (240, 180))
    await saved(page)
    box = (await keyframes(live_server, draft, auth))[0]["objects"][0]["box"]
    assert close(box[:2], [180, 120]), box
    assert 10 < box[2] - 180 < 50 and 10 < box[3] - 120 < 50, box  # 60 px of screen drag, zoomed

    # Del deletes the selected box (the keyframe goes), Ctrl+Z brings it back
    await page.keyboard.press("Delete")
    await saved(page)
    assert await keyframes(live_server, draft, auth) == []
    await page.keyboard.press("Control+z")
    await saved(page)
    assert (await keyframes(live_server, draft, auth))[0]["objects"][0]["box"] == box

    # boxes under 2x2 pixels are refused in the browser too
    await page.keyboard.press("0")  # fit
    await canvas.drag((10, 10), (11, 11.5))
    await page.wait_for_selector("#editor-message:has-text('at least 2×2 pixels')")
    assert await page.locator("#object-list li").count() == 1

    # on frame 5 the object of frame 0 can be marked gone
    await page.fill("#frame-number", "5")
    await page.press("#frame-number", "Enter")
    await page.wait_for_url("**/editor?frame=5")
    await page.click("#track-list button:has-text('gone from here')")
    await saved(page)
    frames = await keyframes(live_server, draft, auth)
    assert frames[1] == {"frame": 5, "objects": [{"track_id": 1, "gone": True}]}
