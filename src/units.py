"""Sizes and durations in words, one convention for every page, message and e-mail.

Sizes are decimal (1 KB = 1000 bytes, 1 MB = 10^6, 1 GB = 10^9), as disks and uploads are
sold and as the admin's quota form takes them ("Storage: 5 GB" stores 5_000_000_000). The
browser's upload check (static/js/upload.js) uses the same units. Registered once as the
Jinja filters `bytes` and `duration` (src/templating.py).
"""

from __future__ import annotations

SIZE_UNITS = ("KB", "MB", "GB", "TB", "PB")


def human_bytes(n: int | float | None) -> str:
    """Three significant digits, decimal units: 999 -> "999 B", 1_900_000_000 -> "1.9 GB",
    123_456_789 -> "123 MB", 999_999 -> "1 MB" (never "1e+03 KB")."""
    if n is None:
        return ""
    sign, n = ("-" if n < 0 else ""), abs(float(n))
    if n < 1000:
        return f"{sign}{n:.0f} B"
    for unit in SIZE_UNITS:
        n /= 1000
        text = f"{n:.3g}"
        if float(text) < 1000 or unit == SIZE_UNITS[-1]:
            return f"{sign}{float(text):g} {unit}" if "e" not in text else f"{sign}{n:.0f} {unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """75 -> "1 min 15 s", 3600 -> "1 h"."""
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
