"""Where the server may send its own requests (SSRF): only http(s) to hosts that resolve to
public addresses, unless the host is listed in an allow-list (tests, intranets).

Used by the URL import (src/videos/url_import.py) before every hop and by outgoing webhooks
(src/webhooks) when a URL is registered and before every delivery; each turns the problem
into its own message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit


@dataclass(frozen=True)
class UrlProblem:
    kind: Literal["scheme", "no_host", "not_found", "private"]
    host: str


def hosts(setting: str) -> set[str]:
    """A comma-separated allow-list setting as a set of lower-case host names."""
    return {h.strip().lower() for h in setting.split(",") if h.strip()}


async def problem(url: str, *, allowed_hosts: set[str]) -> UrlProblem | None:
    """Why the server must not request `url`, or None: not http(s), no host, a host that does not
    resolve, or one that resolves to any private, loopback, link-local or reserved address."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in {"http", "https"}:
        return UrlProblem("scheme", host)
    if not host:
        return UrlProblem("no_host", host)
    if host in allowed_hosts:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return UrlProblem("not_found", host)
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            return UrlProblem("private", host)
    return None
