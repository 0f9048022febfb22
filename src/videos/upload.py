"""Stream a multipart upload to disk chunk by chunk, stopping as soon as a limit is crossed.

FastAPI's UploadFile would spool the whole body before our code runs; here the body is
parsed incrementally (python-multipart's MultipartParser), so memory stays at one chunk
and a 413 comes as soon as the byte limit is passed. The partial file is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from src.units import human_bytes
from src.security import BodyTooLarge
from src.videos.exceptions import BadUpload, UploadTooLarge

FILE_FIELD = "file"


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int


def too_large_message(limit: int) -> str:
    return (
        f"The file is larger than your upload limit of {human_bytes(limit)} (the smaller of your "
        "video size quota and the storage you have left). Delete videos or ask an administrator for more."
    )


async def receive_file(request: Request, target: Path, *, limit: int) -> ReceivedFile:
    """Write the `file` field of a multipart request to `target`; raise BadUpload / UploadTooLarge."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise BadUpload("Send the video as multipart/form-data with a field named 'file'.")
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024:  # multipart overhead is small
        raise UploadTooLarge(too_large_message(limit))

    state = {"in_file": False, "filename": "", "size": 0, "seen": False, "header": b"", "headers": {}}
    out = target.open("wb")

    def on_part_begin() -> None:
        state["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] = data[start:end].lower()

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["headers"][state["header"]] = state["headers"].get(state["header"], b"") + data[start:end]

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        is_file = disposition.get(b"name") == FILE_FIELD.encode() and not state["seen"]
        state["in_file"] = is_file
        if is_file:
            state["seen"] = True
            state["filename"] = disposition.get(b"filename", b"").decode("utf-8", "replace")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            state["size"] += end - start
            if state["size"] > limit:
                raise UploadTooLarge(too_large_message(limit))
            out.write(data[start:end])

    def on_part_end() -> None:
        state["in_file"] = False

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (UploadTooLarge, BodyTooLarge):  # the user's quota, or the route's cap (src.security)
        out.close()
        target.unlink(missing_ok=True)
        raise
    except Exception as error:  # malformed body or client gone: nothing is kept
        out.close()
        target.unlink(missing_ok=True)
        raise BadUpload(f"The upload was interrupted or malformed ({error.__class__.__name__}); try again.") from error
    out.close()
    if not state["seen"]:
        target.unlink(missing_ok=True)
        raise BadUpload("No file received: the multipart field must be named 'file'.")
    return ReceivedFile(target, state["filename"], state["size"])
