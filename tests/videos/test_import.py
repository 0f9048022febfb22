"""Import by URL: a real local HTTP server, a real burst worker, SSRF refusals."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import pytest

from src.config import get_settings
from tests.conftest import SHARED_DATA
from tests.test_worker import burst_worker
from tests.videos.conftest import set_quota, stored_files


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", "http://10.255.255.1/clip.mp4")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    root = SHARED_DATA / "sequences"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def allow_local(monkeypatch):
    monkeypatch.setattr(get_settings(), "url_import_allowed_hosts", "127.0.0.1")


async def _run_worker(services):
    worker = burst_worker(services[1])
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_import_direct_link(user_client, http_server, allow_local, services, storage_root):
    response = await user_client.post("/api/v1/videos/import", json={"url": f"{http_server}/otb_crossing/video.mp4"})
    assert response.status_code == 202, response.text
    video = response.json()
    assert video["status"] == "importing" and video["display_name"] == "video.mp4"
    await _run_worker(services)
    done = (await user_client.get(f"/api/v1/videos/{video['id']}")).json()
    assert done["status"] == "ready", done
    assert done["frame_count"] == 120 and (done["width"], done["height"]) == (360, 240)
    assert done["import_progress"] == 1.0
    frame = await user_client.get(f"/api/v1/videos/{video['id']}/frames/60")
    assert frame.status_code == 200
    assert (storage_root / "videos" / video["id"] / "source").stat().st_size == done["size_bytes"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "url"),
        ("ftp://example.com/a.mp4", "url"),
        ("http://127.0.0.1:9/a.mp4", "private or local network"),
        ("http://[::1]/a.mp4", "private or local network"),
        ("http://10.1.2.3/a.mp4", "private or local network"),
        ("http://169.254.169.254/latest/meta-data", "private or local network"),
    ],
)
async def test_ssrf_and_bad_schemes_are_refused(user_client, url, fragment):
    response = await user_client.post("/api/v1/videos/import", json={"url": url})
    assert response.status_code == 422, response.text
    assert fragment in str(response.json()["detail"]).lower()
    assert (await user_client.get("/api/v1/videos")).json() == []


async def test_redirect_to_private_network_fails_the_import(user_client, http_server, allow_local, services):
    video = (await user_client.post("/api/v1/videos/import", json={"url": f"{http_server}/to-private"})).json()
    await _run_worker(services)
    done = (await user_client.get(f"/api/v1/videos/{video['id']}")).json()
    assert done["status"] == "failed" and "private or local network" in done["error"]


async def test_import_of_a_non_video_and_of_a_too_large_video(app, user_client, http_server, allow_local, services, storage_root):
    not_video = (await user_client.post("/api/v1/videos/import", json={"url": f"{http_server}/otb_crossing/groundtruth_rect.txt"})).json()
    await set_quota(app, "user@example.com", max_video_bytes=10_000)
    too_large = (await user_client.post("/api/v1/videos/import", json={"url": f"{http_server}/otb_faceocc1/video.mp4"})).json()
    await _run_worker(services)
    first = (await user_client.get(f"/api/v1/videos/{not_video['id']}")).json()
    second = (await user_client.get(f"/api/v1/videos/{too_large['id']}")).json()
    assert first["status"] == "failed" and "not a video" in first["error"].lower()
    assert second["status"] == "failed" and "upload limit" in second["error"]
    assert stored_files(storage_root) == []


@pytest.fixture
def page_server(tmp_path):
    """A web page with a <video> tag, as a site would serve it."""
    (tmp_path / "clip.mp4").write_bytes((SHARED_DATA / "sequences" / "otb_crossing" / "video.mp4").read_bytes())
    (tmp_path / "watch.html").write_text('<html><head><title>A clip</title></head><body><video src="/clip.mp4"></video></body></html>')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_page_links_go_through_ytdlp_only_for_listed_sites(user_client, page_server, allow_local, services, monkeypatch):
    refused = (await user_client.post("/api/v1/videos/import", json={"url": f"{page_server}/watch.html"})).json()
    await _run_worker(services)
    refused = (await user_client.get(f"/api/v1/videos/{refused['id']}")).json()
    assert refused["status"] == "failed" and "web page, not a video file" in refused["error"]

    monkeypatch.setattr(get_settings(), "url_import_page_sites", "127.0.0.1")
    page = (await user_client.post("/api/v1/videos/import", json={"url": f"{page_server}/watch.html"})).json()
    await _run_worker(services)
    done = (await user_client.get(f"/api/v1/videos/{page['id']}")).json()
    assert done["status"] == "ready", done
    assert done["frame_count"] == 120
