"""Phone-sized screens (390 x 844, touch): every logged-in page fits, and the editor draws,
moves and resizes boxes with a finger.

On each page of the walk (a user's, an annotator's, an admin's) no element may reach past
the right edge of the viewport unless it sits in a container that scrolls sideways (a table
in its `.table-scroll` card): the navigation wraps into its menu, tables scroll inside their
cards. Screenshots of every page go to $FORGE_SCREENSHOTS/mobile (default
var/test-screenshots/mobile, not committed) so a person can look at them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from src.config import ROOT
from tests.conftest import set_role
from tests.datasets.conftest import CROSSING, first_box, run_worker, top_up
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_editor_browser import PASSWORD, W, H, keyframes

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
SHOTS = Path(os.environ.get("FORGE_SCREENSHOTS", ROOT / "var" / "test-screenshots")) / "mobile"

# Elements that reach past the viewport's right edge, outside any container that scrolls or
# clips sideways. Each is named `tag#id.class` with how far it reaches.
OVERFLOWING = """
() => {
  // The layout viewport: a phone browser zooms out over a page wider than the screen, which
  // grows innerWidth with it, so the limit is the smaller of the two.
  const limit = Math.min(window.innerWidth, document.documentElement.clientWidth, screen.width) + 1;
  const contained = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const x = getComputedStyle(a).overflowX;
      if (x === "auto" || x === "scroll" || x === "hidden" || x === "clip") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + [...el.classList].map((c) => "." + c).join("");
  const spills = (el) => {
    const rect = el.getBoundingClientRect();
    return (rect.width > 0 || rect.height > 0) && rect.right > limit && !contained(el);
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    // only the outermost element that spills: its children go with it
    if (spills(el) && !(el.parentElement && el.parentElement !== document.body && spills(el.parentElement))) {
      out.push(`${name(el)} right=${Math.round(el.getBoundingClientRect().right)}`);
    }
  }
  if (document.documentElement.scrollWidth > limit) out.push(`page scrollWidth=${document.documentElement.scrollWidth}`);
  return out;
}
"""


class Phone:
    """One person's phone: a touch browser context, screenshots and the overflow check."""

    def __init__(self, browser, base_url: str, name: str):
        self.browser, self.base_url, self.name, self.step = browser, base_url, name, 0

    async def __aenter__(self):
        self.context = await self.browser.new_context(base_url=self.base_url, **PHONE)
        self.page = await self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        return self

    async def __aexit__(self, *exc):
        await self.context.close()

    async def login(self, email: str) -> None:
        await self.page.goto("/login")
        await self.page.fill("#email", email)
        await self.page.fill("#password", PASSWORD)
        await self.page.click("main button[type=submit]")
        await self.page.wait_for_url(re.compile(r"/(videos|review|admin/users)$"))

    async def shot(self, label: str) -> Path:
        self.step += 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.name}-{self.step:02d}-{label}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def visit(self, url: str, label: str) -> list[str]:
        """Open `url`, screenshot it, and return what overflows (empty when the page fits)."""
        response = await self.page.goto(url)
        assert response.status == 200, (url, response.status)
        await self.page.wait_for_load_state("networkidle")
        await self.shot(label)
        return [f"{url}: {item}" for item in await self.page.evaluate(OVERFLOWING)]

    async def nav_fits(self) -> list[str]:
        """Every link of the top bar is on screen and on the bar's dark background (the bar
        wraps on a phone; it used to spill its links off the bar, light grey on light grey)."""
        bar = await self.page.locator("header.top").bounding_box()
        problems = []
        for link in await self.page.locator("header.top a, header.top button").all():
            box = await link.bounding_box()
            inside = box and box["x"] >= 0 and box["x"] + box["width"] <= bar["x"] + bar["width"] + 1 \
                and box["y"] + box["height"] <= bar["y"] + bar["height"] + 1
            if not inside:
                problems.append(f"top bar: {await link.inner_text()!r} at {box} is outside the bar {bar}")
        return problems


class Touch:
    """Finger gestures on the editor canvas through Chromium's touch input (CDP), so the page
    gets real touch pointer events; positions are in video pixels."""

    def __init__(self, phone: Phone):
        self.page = phone.page
        self.context = phone.context

    async def ready(self) -> None:
        await self.page.wait_for_selector("#editor-canvas[data-ready='1']")
        await self.page.locator("#editor-canvas").scroll_into_view_if_needed()
        self.rect = await self.page.locator("#editor-canvas").bounding_box()
        self.cdp = await self.context.new_cdp_session(self.page)

    def at(self, x: float, y: float) -> dict:
        return {"x": self.rect["x"] + x / W * self.rect["width"], "y": self.rect["y"] + y / H * self.rect["height"]}

    async def _send(self, kind: str, points: list[dict]) -> None:
        await self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    async def drag(self, start, end, steps: int = 8) -> None:
        a, b = self.at(*start), self.at(*end)
        await self._send("touchStart", [a])
        for i in range(1, steps + 1):
            t = i / steps
            await self._send("touchMove", [{"x": a["x"] + (b["x"] - a["x"]) * t, "y": a["y"] + (b["y"] - a["y"]) * t}])
        await self._send("touchEnd", [])

    async def pinch(self, centre, spread_from: float, spread_to: float, steps: int = 8) -> None:
        """Two fingers around `centre` (video px), moving apart from `spread_from` to `spread_to` screen px."""
        c = self.at(*centre)

        def fingers(spread: float) -> list[dict]:
            return [{"x": c["x"] - spread / 2, "y": c["y"], "id": 1}, {"x": c["x"] + spread / 2, "y": c["y"], "id": 2}]

        await self._send("touchStart", fingers(spread_from))
        for i in range(1, steps + 1):
            await self._send("touchMove", fingers(spread_from + (spread_to - spread_from) * i / steps))
        await self._send("touchEnd", [])


async def _account(base_url: str, email: str) -> dict:
    async with httpx.AsyncClient(base_url=base_url) as api:
        assert (await api.post("/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
        token = (await api.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})).json()
        return {"Authorization": f"Bearer {token['access_token']}"}


async def _account_token(base_url: str, email: str) -> dict:
    async with httpx.AsyncClient(base_url=base_url) as api:
        token = (await api.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})).json()
        return {"Authorization": f"Bearer {token['access_token']}"}


async def _platform(live_server: str, app, services) -> dict:
    """A user with OTB Crossing, a draft, a dataset in review and a ready one; an annotator; an admin."""
    owner = await _account(live_server, "phone@example.com")
    await _account(live_server, "annie@example.com")
    await set_role(app, "annie@example.com", "annotator")
    await _account(live_server, "root@example.com")
    await set_role(app, "root@example.com", "admin")
    admin = await _account_token(live_server, "root@example.com")  # a fresh token: the role change ended the old one
    await top_up(app, "phone@example.com", 100_000)
    seed = {"objects": [{"track_id": 1, "class": "person", "box": first_box(CROSSING)}]}
    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        with (CROSSING / "video.mp4").open("rb") as f:
            video = (await api.post("/api/v1/videos", files={"file": ("crossing.mp4", f, "video/mp4")})).json()
        made = {}
        for name, budget in (("Crossing for review with a rather long name", 0.05), ("Crossing ready", 0.0), ("Draft", None)):
            body = {"video_id": video["id"], "name": name, "classes": ["person", "bicycle"]}
            draft = (await api.post("/api/v1/datasets", json=body)).json()
            made[name] = draft["id"]
            if budget is None:
                continue
            assert (await api.put(f"/api/v1/datasets/{draft['id']}/keyframes/0", json=seed)).status_code == 200
            await api.put(f"/api/v1/datasets/{draft['id']}/options", json={"review_budget": budget, "formats": ["yolo", "coco"]})
            assert (await api.post(f"/api/v1/datasets/{draft['id']}/confirm")).status_code == 202
            await run_worker(services[1])
    async with httpx.AsyncClient(base_url=live_server, headers=admin, timeout=60) as api:  # entries for the audit page
        found = (await api.get("/api/v1/admin/users", params={"q": "phone@"})).json()["items"]
        user_id = found[0]["id"]
        assert (await api.patch(f"/api/v1/admin/users/{user_id}", json={
            "quotas": {"max_storage_bytes": 20_000_000_000, "max_videos": 80}})).status_code == 200
        assert (await api.post(f"/api/v1/admin/users/{user_id}/balance", json={
            "amount_cents": 2500, "reason": "welcome credit for the phone test"})).status_code in (200, 201)
    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        review = made["Crossing for review with a rather long name"]
        assert (await api.get(f"/api/v1/datasets/{review}")).json()["state"] == "in_review"
        assert (await api.get(f"/api/v1/datasets/{made['Crossing ready']}")).json()["state"] == "ready"
    return {"owner": owner, "video": video, "review": review, "ready": made["Crossing ready"], "draft": made["Draft"]}


@pytest.fixture
async def browser(live_server):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def test_every_logged_in_page_fits_a_phone(browser, live_server, app, services):
    data = await _platform(live_server, app, services)
    problems: list[str] = []

    async with Phone(browser, live_server, "user") as phone:
        await phone.login("phone@example.com")
        problems += await phone.nav_fits()
        for url, label in [
            ("/videos", "videos"), (f"/videos/{data['video']['id']}", "video"),
            (f"/videos/{data['video']['id']}/new-dataset", "new-dataset"),
            (f"/datasets/{data['draft']}", "draft"), (f"/datasets/{data['draft']}/editor", "editor"),
            (f"/datasets/{data['draft']}/create", "create"), ("/datasets", "cabinet"),
            (f"/datasets/{data['review']}/overview", "in-review"), (f"/datasets/{data['ready']}/overview", "ready"),
            ("/billing", "billing"), ("/profile", "profile"), ("/models", "models"),
        ]:
            problems += await phone.visit(url, label)
        # the job page says in words what happens and who it waits for
        await phone.page.goto(f"/datasets/{data['review']}/overview")
        assert await phone.page.inner_text("#state") == "In review"
        assert "annotator team" in await phone.page.inner_text("#status-waits")
        assert not phone.errors, phone.errors

    async with Phone(browser, live_server, "annotator") as phone:
        await phone.login("annie@example.com")
        problems += await phone.nav_fits()
        problems += await phone.visit("/review", "review-jobs")
        job = await phone.page.get_attribute("#review-jobs a.button", "href")
        assert job, "no review job dealt to the annotator"
        problems += await phone.visit(job, "review-job")
        assert not phone.errors, phone.errors

    async with Phone(browser, live_server, "admin") as phone:
        await phone.login("root@example.com")
        problems += await phone.nav_fits()
        await phone.page.goto("/admin/users")
        user_link = await phone.page.get_attribute("a[href^='/admin/users/']", "href")
        for url, label in [("/admin/users", "users"), (user_link, "user"), ("/admin/jobs", "jobs"),
                           ("/admin/review", "review"), ("/admin/prices", "prices"), ("/admin/defaults", "defaults"),
                           ("/admin/audit", "audit"), ("/review", "review-jobs")]:
            problems += await phone.visit(url, label)
        assert not phone.errors, phone.errors

    assert problems == [], "\n".join(problems)


async def test_touch_draws_moves_resizes_and_pinch_zooms(browser, live_server, app):
    owner = await _account(live_server, "thumb@example.com")
    async with httpx.AsyncClient(base_url=live_server, headers=owner, timeout=60) as api:
        with (CROSSING / "video.mp4").open("rb") as f:
            video = (await api.post("/api/v1/videos", files={"file": ("crossing.mp4", f, "video/mp4")})).json()
        draft = (await api.post("/api/v1/datasets", json={"video_id": video["id"], "name": "Thumbs",
                                                            "classes": ["person"]})).json()

    async with Phone(browser, live_server, "touch") as phone:
        await phone.login("thumb@example.com")
        await phone.page.goto(f"/datasets/{draft['id']}/editor?frame=0")
        assert await phone.page.evaluate("getComputedStyle(document.getElementById('editor-canvas')).touchAction") == "none"
        touch = Touch(phone)
        await touch.ready()
        assert touch.rect["width"] <= 390 and touch.rect["x"] >= 0

        async def boxes() -> list[list[float]]:
            await phone.page.wait_for_selector("#save-status[data-state='saved']", timeout=10_000)
            frames = await keyframes(live_server, draft, owner)
            return [o["box"] for o in frames[0]["objects"]] if frames else []

        def near(box, expected, tolerance=4.0) -> bool:
            return all(abs(a - b) <= tolerance for a, b in zip(box, expected, strict=True))

        # draw with a finger
        await touch.drag((60, 50), (140, 170))
        drawn = await boxes()
        assert len(drawn) == 1 and near(drawn[0], [60, 50, 140, 170]), drawn
        await phone.shot("drawn")
        # move it by dragging its inside: (+40, +20)
        await touch.drag((100, 110), (140, 130))
        moved = await boxes()
        assert len(moved) == 1 and near(moved[0], [100, 70, 180, 190]), moved
        # resize from its bottom-right corner: (+30, +20)
        await touch.drag((180, 190), (210, 210))
        resized = await boxes()
        assert len(resized) == 1 and near(resized[0], [100, 70, 210, 210]), resized
        await phone.shot("moved-resized")

        # pinch to zoom in around a free spot: the same finger drag then covers fewer video pixels
        await touch.pinch((60, 200), 40, 160)
        await phone.page.wait_for_timeout(100)
        zoomed = await phone.page.evaluate("Number(document.getElementById('editor-canvas').dataset.zoom)")
        assert zoomed > 1.5, zoomed
        await touch.drag((40, 190), (80, 230))  # 40 video px of screen at the old scale
        after = await boxes()
        assert len(after) == 2, after
        new = [b for b in after if not near(b, resized[0])][0]
        assert new[2] - new[0] < 30 and new[3] - new[1] < 30, new  # zoomed: a shorter box
        await phone.shot("pinch-zoomed")

        # the frame slider is on screen and steps the frame
        slider = phone.page.locator("#frame-slider")
        box = await slider.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 391 and box["width"] > 150, box
        await slider.fill("10")
        await slider.dispatch_event("change")
        await phone.page.wait_for_url(re.compile(r"frame=10"))
        assert await phone.page.evaluate(OVERFLOWING) == []
        assert not phone.errors, phone.errors
