"""Download a video from a URL without letting the URL reach our own networks (SSRF).

Only http(s). Every hop (redirects are followed by hand, at most 5) must resolve to
public addresses, unless its host is listed in URL_IMPORT_ALLOWED_HOSTS. Direct file
links are streamed to disk with a byte limit; pages that are not a video are handed to
yt-dlp when it is installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from src import netguard
from src.config import get_settings
from src.videos.exceptions import ImportRefused, UploadTooLarge
from src.videos.upload import too_large_message

MAX_REDIRECTS = 5
CHUNK = 1 << 20


def _allowed_hosts() -> set[str]:
    return netguard.hosts(get_settings().url_import_allowed_hosts)


async def check_url(url: str) -> None:
    """Refuse non-http(s) URLs and hosts that resolve to private, loopback or reserved addresses."""
    found = await netguard.problem(url, allowed_hosts=_allowed_hosts())
    if found is None:
        return
    host = found.host
    raise ImportRefused({
        "scheme": "Only http:// and https:// links can be imported.",
        "no_host": "The link has no host name.",
        "not_found": f"The host {host!r} could not be found.",
        "private": f"The host {host!r} is on a private or local network; it cannot be imported from.",
    }[found.kind])


async def download(
    url: str, target: Path, *, limit: int, progress: Callable[[int, int | None], Awaitable[None]] | None = None
) -> str:
    """Stream `url` into `target`. Returns the final content type. Raises ImportRefused / UploadTooLarge."""
    timeout = httpx.Timeout(get_settings().url_import_timeout_s, connect=10)
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            await check_url(url)
            async with client.stream("GET", url) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise ImportRefused(f"The server answered {response.status_code} for this link.")
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type == "text/html":
                    return content_type
                total = int(response.headers.get("content-length") or 0) or None
                if total and total > limit:
                    raise UploadTooLarge(too_large_message(limit))
                done = 0
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK):
                        done += len(chunk)
                        if done > limit:
                            raise UploadTooLarge(too_large_message(limit))
                        out.write(chunk)
                        if progress:
                            await progress(done, total)
                return content_type
    raise ImportRefused("Too many redirects.")


def page_import_allowed(url: str) -> bool:
    """Pages are handed to yt-dlp only for the configured sites: yt-dlp fetches what a page
    points to by itself, outside our per-hop address checks."""
    host = (urlsplit(url).hostname or "").lower()
    sites = {s.strip().lower() for s in get_settings().url_import_page_sites.split(",") if s.strip()}
    return any(host == site or host.endswith("." + site) for site in sites)


def check_page_import(url: str) -> None:
    if not page_import_allowed(url):
        sites = get_settings().url_import_page_sites.replace(",", ", ")
        raise ImportRefused(f"This link is a web page, not a video file. Page links are imported from: {sites}.")


def download_with_ytdlp(url: str, target: Path, *, limit: int) -> None:
    """A page of a supported site (checked first with `check_page_import`), downloaded by
    yt-dlp. Runs in the worker's pool."""
    import yt_dlp

    options = {
        "outtmpl": str(target), "format": "best[ext=mp4]/best", "max_filesize": limit,
        "quiet": True, "noprogress": True, "overwrites": True, "noplaylist": True,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.download([url])
    except Exception as error:  # noqa: BLE001 - yt-dlp raises many kinds
        raise ImportRefused(f"The page could not be downloaded as a video: {error}") from error
