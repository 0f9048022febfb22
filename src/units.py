"""Sizes, durations, money and dates in words, one convention for every page, message and e-mail.

Sizes are decimal (1 KB = 1000 bytes, 1 MB = 10^6, 1 GB = 10^9), as disks and uploads are
sold and as the admin's quota form takes them ("Storage: 5 GB" stores 5_000_000_000). The
browser's upload check (static/js/upload.js) uses the same units. Money is integer cents
with its currency code after the amount ("123.45 USD"); dates are ISO-like and in UTC, as stored
("2026-12-02", "2026-12-02 14:05"). Registered once as the Jinja filters `bytes`, `duration`,
`money`, `date` and `datetime` (src/templating.py).
"""

from __future__ import annotations

from datetime import date, datetime

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


def money(cents: int, currency: str = "USD") -> str:
    """12345 -> "123.45 USD", -5 -> "-0.05 USD"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d} {currency}"


def human_date(value: date | None) -> str:
    """A day: "2026-12-02"; "" for None (`{{ t.expires_at | date or "never" }}`)."""
    return value.strftime("%Y-%m-%d") if value is not None else ""


def human_datetime(value: datetime | None, *, seconds: bool = False) -> str:
    """A moment to the minute: "2026-12-02 14:05" (with `seconds=True` "2026-12-02 14:05:09");
    "" for None."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
