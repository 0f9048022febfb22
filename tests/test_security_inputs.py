"""Bodies and inputs (issue 16, items 6, 7 and 12): request bodies are capped by route before
anyone reads them whole; NaN / Infinity / NUL input is a 422 with a message and nothing is
stored; a signed webhook with a non-integer id is a 422; error responses carry the security
headers."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from tests.datasets.draft.conftest import create_draft, draft, upload_video, uploaded_video  # noqa: F401 (fixtures)
from tests.conftest import register

CHUNK = 64 * 1024


class CountingBody:
    """A request body streamed in 64 KiB chunks that counts how many the server pulled."""

    def __init__(self, total: int, prefix: bytes = b""):
        self.total, self.prefix, self.pulled = total, prefix, 0

    async def __aiter__(self):
        sent = 0
        if self.prefix:
            self.pulled += 1
            sent += len(self.prefix)
            yield self.prefix
        while sent < self.total:
            self.pulled += 1
            sent += CHUNK
            yield b"a" * CHUNK


@pytest.mark.parametrize("path, content_type", [
    ("/api/v1/review/cvat/webhook", "application/json"),  # unsigned: refused before the signature check
    ("/auth/register", "application/json"),  # a 300 MB password used to be hashed
    ("/login", "application/x-www-form-urlencoded"),
])
async def test_a_declared_oversized_body_is_refused_before_any_byte_is_read(client, path, content_type):
    body = CountingBody(300 << 20)
    response = await client.post(path, content=body, headers={"content-type": content_type,
                                                             "content-length": str(300 << 20)})
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["detail"]
    assert body.pulled == 0
    assert response.headers["x-frame-options"] == "DENY"  # the early refusal carries the security headers


@pytest.mark.parametrize("path", ["/api/v1/review/cvat/webhook", "/auth/register"])
async def test_a_streamed_body_is_cut_off_at_the_cap(client, path):
    """No Content-Length (chunked): the body is counted as it arrives; 413 once it crosses the
    route's cap, the rest (300 MB here) is never pulled."""
    from src.config import get_settings

    body = CountingBody(300 << 20, prefix=b'{"email": "big@example.com", "password": "')
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert body.pulled <= get_settings().max_body_bytes // CHUNK + 2


async def test_passwords_over_128_characters_are_refused_without_hashing(client):
    response = await client.post("/auth/register", json={"email": "long@example.com", "password": "x" * 129 + "Q1!"})
    assert response.status_code == 422 and "128" in response.text
    await register(client, "long@example.com", "a-fine-password-7")
    login = await client.post("/auth/jwt/login", data={"username": "long@example.com", "password": "y" * 100_000})
    assert login.status_code == 400 and login.json()["detail"] == "Wrong e-mail or password."


async def test_uploads_may_be_larger_than_the_json_cap(user_client):
    """The video route has its own (quota) cap: a real video over 1 MiB goes through."""
    from src.config import get_settings
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "sequences/otb_faceocc1/video.mp4"
    assert path.stat().st_size > get_settings().max_body_bytes
    assert (await upload_video(user_client, path))["frame_count"] > 0


@pytest.mark.parametrize("raw", ['{"video_id": NaN, "name": "x"}', '{"video_id": "x", "name": "x", "classes": [Infinity]}',
                                 '{"video_id": -Infinity}', '{"video_id": 1e999}'])
async def test_non_finite_json_numbers_are_a_422_with_a_message(user_client, raw):
    response = await user_client.post("/api/v1/datasets", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "finite numbers" in response.json()["detail"]


async def test_deeply_nested_json_is_a_422(user_client):
    raw = "[" * 100_000 + "]" * 100_000
    response = await user_client.post("/api/v1/datasets", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "nested too deeply" in response.json()["detail"]


async def test_the_422_handler_serialises_non_finite_inputs(user_client):
    """Defence in depth: a NaN that reaches validation (here a form field) is reported, not a 500."""
    from src.main import _finite

    assert _finite({"input": float("nan"), "loc": ["body", 1.5, float("inf")]}) == {"input": "nan", "loc": ["body", 1.5, "inf"]}
    response = await user_client.get("/api/v1/videos/not-a-uuid/frames/nan")
    assert response.status_code == 422 and isinstance(response.json()["detail"], list)


async def test_a_keyframe_box_with_nan_is_refused_and_nothing_is_stored(user_client, draft):
    url = f"/api/v1/datasets/{draft['id']}/keyframes/0"
    raw = '{"objects": [{"track_id": 1, "class": "person", "box": [NaN, 60, 160, 140]}]}'
    response = await user_client.put(url, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "NaN" in response.json()["detail"]
    assert (await user_client.get(f"/api/v1/datasets/{draft['id']}/keyframes")).json()["keyframes"] == []
    ok = await user_client.put(url, json={"objects": [{"track_id": 1, "class": "person", "box": [10, 60, 160, 140]}]})
    assert ok.status_code == 200, ok.text


async def test_nul_characters_are_refused_in_the_api_and_the_pages(user_client, draft):
    classes_url = f"/api/v1/datasets/{draft['id']}/classes"
    api = await user_client.post(classes_url, json={"name": "hel\u0000met"})
    assert api.status_code == 422 and "NUL" in api.json()["detail"]
    nested = await user_client.post("/api/v1/datasets", json={"video_id": draft["video_id"], "name": "ok",
                                                              "classes": ["a", "b\u0000"]})
    assert nested.status_code == 422 and "classes[1]" in nested.json()["detail"]
    page = await user_client.post(f"/datasets/{draft['id']}/classes", data={"name": "hel\x00met"},
                                  headers={"HX-Request": "true", "accept": "text/html"})
    assert page.status_code == 422 and 'role="alert"' in page.text and "NUL" in page.text
    query = await user_client.get("/login?next=/videos%00")
    assert query.status_code == 422
    names = [c["name"] for c in (await user_client.get(f"/api/v1/datasets/{draft['id']}")).json()["classes"]]
    assert names == ["helmet", "person"]
    # the escaped backslash is no NUL: the text "\u0000" itself is a fine (if odd) class name
    literal = await user_client.post(classes_url, content=b'{"name": "a\\\\u0000"}', headers={"content-type": "application/json"})
    assert literal.status_code == 201, literal.text


@pytest.mark.parametrize("job_id", ["12", 1.5, None, True, -3, 2**40, [1], {"id": 1}])
async def test_a_signed_webhook_with_a_non_integer_job_id_is_a_422(client, monkeypatch, job_id):
    from pydantic import SecretStr

    from src.config import get_settings

    secret = "webhook-secret-for-the-test"
    monkeypatch.setattr(get_settings(), "cvat_webhook_secret", SecretStr(secret))
    body = json.dumps({"event": "update:job", "job": {"id": job_id}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post("/api/v1/review/cvat/webhook", content=body,
                                 headers={"X-Signature-256": signature, "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "job.id must be a positive integer" in response.json()["detail"]
    body = json.dumps({"event": "update:job", "job": {"id": 7}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    fine = await client.post("/api/v1/review/cvat/webhook", content=body, headers={"X-Signature-256": signature})
    assert fine.status_code == 202 and fine.json()["status"] == "ignored"


async def test_security_headers_on_error_responses(app, client, user_client):
    from src.main import create_app

    for response in [
        await client.get("/api/v1/no-such-thing"),  # 404
        await client.get("/no-such-page", headers={"accept": "text/html"}),
        await client.get("/api/v1/users/me"),  # 401
        await user_client.post("/api/v1/datasets", json={}, headers={"X-CSRF-Token": "forged"}),  # 403 CSRF
        await user_client.post("/api/v1/datasets", json={"name": 1}),  # 422
    ]:
        assert response.status_code >= 400
        assert response.headers["x-frame-options"] == "DENY", response.status_code
        assert response.headers["x-content-type-options"] == "nosniff", response.status_code
        assert "default-src 'self'" in response.headers["content-security-policy"], response.status_code
    # a 500 is sent by Starlette's outermost middleware, past ours
    broken = create_app()

    @broken.get("/api/v1/boom")
    async def boom():
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=broken, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.get("/api/v1/boom")
    assert response.status_code == 500 and response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_create_draft_still_works_with_a_plain_body(user_client, uploaded_video):
    draft = await create_draft(user_client, uploaded_video["id"], classes=("a", "b"))
    assert [c["name"] for c in draft["classes"]] == ["a", "b"]


# ---------------------------------------------------------------- the real web process

@pytest.fixture(scope="module")
def web_process(services):
    """uvicorn serving the app in a subprocess: (port, pid)."""
    from tests.web_server import web_server

    with web_server() as (url, server):
        yield int(url.rsplit(":", 1)[1]), server.pid


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(field)


def _send_until_answered(port: int, head: bytes, *, chunked: bool, total: int) -> tuple[bytes, int]:
    """Send `head`, then up to `total` body bytes, stopping as soon as the server answers.
    Returns (the answer's first bytes, body bytes sent)."""
    import select
    import socket

    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head)
    sent, piece = 0, b"a" * CHUNK
    try:
        while sent < total:
            ready, _, _ = select.select([sock], [], [], 0)
            if ready:
                break
            frame = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece
            sock.sendall(frame)
            sent += len(piece)
        sock.settimeout(10)
        answer = sock.recv(4096)
    except (BrokenPipeError, ConnectionResetError):
        sock.settimeout(10)
        answer = sock.recv(4096)
    finally:
        sock.close()
    return answer, sent


@pytest.mark.parametrize("path, content_type, chunked", [
    ("/api/v1/review/cvat/webhook", "application/json", False),
    ("/api/v1/review/cvat/webhook", "application/json", True),
    ("/auth/register", "application/json", True),
])
def test_the_web_process_does_not_read_a_300_mb_body(web_process, path, content_type, chunked):
    """Issue 16's measurement: an unsigned 300 MB webhook grew the web process from 490 to 780 MB,
    a 300 MB password from 505 to 1030 MB. Now the answer is a 413 after at most the cap (plus
    what the sockets buffer), and the process's peak memory barely moves."""
    port, pid = web_process
    total = 300 << 20
    length = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % total
    head = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n%s\r\n"
            % (path.encode(), content_type.encode(), length))
    before = _rss_mb(pid, "VmHWM")
    answer, sent = _send_until_answered(port, head, chunked=chunked, total=total)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 << 20, f"{sent >> 20} MB were sent before the answer"
    grown = _rss_mb(pid, "VmHWM") - before
    assert grown < 40, f"the web process's peak memory grew by {grown:.0f} MB"
