"""Videos through the API: real uploads, real probing, exact frames, clear refusals, ownership."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import register
from tests.videos.conftest import SEQUENCES, set_quota, stored_files, upload


@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda p: p.name)
async def test_upload_each_shared_sequence(user_client, sequence, storage_root):
    path = sequence / "video.mp4"
    response = await upload(user_client, path)
    assert response.status_code == 201, response.text
    video = response.json()
    cap = cv2.VideoCapture(str(path))
    expected_frames = 0
    middle = None
    target = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if target is None:
            target = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // 2
        if expected_frames == target:
            middle = frame
        expected_frames += 1
    assert video["frame_count"] == expected_frames
    assert (video["width"], video["height"]) == (middle.shape[1], middle.shape[0])
    assert video["fps"] == pytest.approx(cap.get(cv2.CAP_PROP_FPS), rel=1e-3)
    assert video["size_bytes"] == path.stat().st_size
    assert video["status"] == "ready" and video["display_name"] == "video.mp4"

    served = await user_client.get(f"/api/v1/videos/{video['id']}/frames/{target}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert "max-age" in served.headers["cache-control"]
    decoded = cv2.imdecode(np.frombuffer(served.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == middle.shape
    diff = np.abs(decoded.astype(int) - middle.astype(int)).mean()
    assert diff < 3.0, f"served frame {target} differs from the decoded one (mean abs diff {diff:.2f})"
    # a neighbouring frame must differ more than JPEG noise does (proves the seek is exact)
    if target > 0:
        other = await user_client.get(f"/api/v1/videos/{video['id']}/frames/{target - 1}")
        other_img = cv2.imdecode(np.frombuffer(other.content, np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(other_img.astype(int) - middle.astype(int)).mean() > diff

    scaled = await user_client.get(f"/api/v1/videos/{video['id']}/frames/0?width=160")
    assert cv2.imdecode(np.frombuffer(scaled.content, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160
    thumb = await user_client.get(f"/api/v1/videos/{video['id']}/thumbnail")
    assert thumb.status_code == 200
    assert (storage_root / "videos" / video["id"] / "source").exists()
    past_end = await user_client.get(f"/api/v1/videos/{video['id']}/frames/{expected_frames}")
    assert past_end.status_code == 404


def _truncated(tmp_path, source):
    data = source.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


BAD_FILES = {
    "empty": (lambda tmp, src: _write(tmp / "empty.mp4", b""), "empty file"),
    "text named mp4": (lambda tmp, src: _write(tmp / "notes.mp4", b"just some text, not a video\n" * 50), "not a video"),
    "jpeg": (lambda tmp, src: _jpeg(tmp / "photo.mp4"), "JPEG image"),
    "truncated mp4": (_truncated, "truncated"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _jpeg(path):
    ok, buffer = cv2.imencode(".jpg", np.full((64, 64, 3), 127, np.uint8))
    path.write_bytes(buffer.tobytes())
    return path


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
async def test_bad_files_are_refused_with_their_own_message(user_client, case, tmp_path, crossing, storage_root):
    make, fragment = BAD_FILES[case]
    response = await upload(user_client, make(tmp_path, crossing))
    assert response.status_code == 422, response.text
    assert fragment.lower() in response.json()["detail"].lower()
    assert "/" not in response.json()["detail"]  # no server paths in messages
    assert stored_files(storage_root) == []
    assert (await user_client.get("/api/v1/videos")).json() == []


async def test_size_quota_refuses_and_keeps_nothing(app, user_client, crossing, storage_root):
    await set_quota(app, "user@example.com", max_video_bytes=crossing.stat().st_size - 1)
    response = await upload(user_client, crossing)
    assert response.status_code == 413
    assert "upload limit" in response.json()["detail"]
    assert stored_files(storage_root) == []


async def test_duration_quota_refuses_and_keeps_nothing(app, user_client, crossing, storage_root):
    await set_quota(app, "user@example.com", max_video_duration_s=1.0)
    response = await upload(user_client, crossing)
    assert response.status_code == 422
    assert "too long" in response.json()["detail"].lower()
    assert stored_files(storage_root) == []


async def test_name_with_dotdot_and_unicode_is_only_a_display_name(user_client, crossing, storage_root):
    response = await upload(user_client, crossing, name="../../etc/Ünïcødé 视频.mp4")
    assert response.status_code == 201
    video = response.json()
    assert video["display_name"] == "Ünïcødé 视频.mp4"
    files = stored_files(storage_root)
    assert all(video["id"] in str(p) for p in files) and len(files) == 2  # source + thumbnail
    assert not any("视频" in str(p) or ".." in p.relative_to(storage_root).parts for p in files)


async def test_missing_file_field_and_not_multipart(user_client):
    response = await user_client.post("/api/v1/videos", files={"other": ("a.mp4", b"x")})
    assert response.status_code == 422 and "named 'file'" in response.json()["detail"]
    response = await user_client.post("/api/v1/videos", content=b"raw", headers={"content-type": "video/mp4"})
    assert response.status_code == 422 and "multipart" in response.json()["detail"]


async def test_another_user_gets_404_everywhere(app, user_client, make_client, crossing):
    video = (await upload(user_client, crossing)).json()
    other = make_client()
    await register(other, "other@example.com")
    from tests.conftest import login_cookie

    await login_cookie(other, "other@example.com")
    vid = video["id"]
    for method, url in [
        ("GET", f"/api/v1/videos/{vid}"),
        ("GET", f"/api/v1/videos/{vid}/frames/0"),
        ("GET", f"/api/v1/videos/{vid}/thumbnail"),
        ("DELETE", f"/api/v1/videos/{vid}"),
        ("GET", f"/videos/{vid}"),
        ("POST", f"/videos/{vid}/delete"),
    ]:
        response = await other.request(method, url, headers={"accept": "text/html"} if not url.startswith("/api") else {})
        assert response.status_code == 404, (method, url, response.status_code)
    assert (await other.get("/api/v1/videos")).json() == []
    assert (await user_client.get(f"/api/v1/videos/{vid}")).status_code == 200


async def test_delete_removes_row_and_files(user_client, crossing, storage_root):
    video = (await upload(user_client, crossing)).json()
    assert (await user_client.delete(f"/api/v1/videos/{video['id']}")).status_code == 204
    assert (await user_client.get(f"/api/v1/videos/{video['id']}")).status_code == 404
    assert stored_files(storage_root) == []


async def test_pages_list_and_video_page(user_client, crossing):
    video = (await upload(user_client, crossing, name="street.mp4")).json()
    listing = await user_client.get("/videos")
    assert "street.mp4" in listing.text and "360×240" in listing.text
    page = await user_client.get(f"/videos/{video['id']}")
    assert 'id="scrubber-slider"' in page.text and 'max="119"' in page.text


@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda p: p.name)
def test_the_stored_probe_is_what_the_probe_found(sequence):
    """The worker hands the engine the probe stored at upload instead of probing again: the
    row must give back every figure the probe found (frames above all: the engine tracks
    exactly that many)."""
    from src.videos.models import Video
    from src.videos.service import apply_probe, stored_probe
    from src.vision.video import probe

    info = probe(sequence / "video.mp4")
    video = Video()
    assert stored_probe(video) is None  # nothing stored yet (an import still running): probe again
    apply_probe(video, info)
    assert stored_probe(video) == info
