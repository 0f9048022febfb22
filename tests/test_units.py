"""One convention everywhere (src/units.py): sizes in decimal units with three significant
digits, money as cents with the currency after, dates ISO-like; the pages format them only
through the filters registered in src/templating.py."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from src.units import human_bytes, human_date, human_datetime, human_duration, money

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "1 KB"), (1536, "1.54 KB"), (999_999, "1 MB"),
    (12_345_678, "12.3 MB"), (123_456_789, "123 MB"), (1_900_000_000, "1.9 GB"), (5_000_000_000, "5 GB"),
    (2_000_000_001, "2 GB"), (3 * 10**12, "3 TB"), (-1500, "-1.5 KB"), (None, ""),
])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize(("seconds", "text"), [(5, "5 s"), (75, "1 min 15 s"), (600, "10 min"), (3600, "1 h"), (5400, "1 h 30 min")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


@pytest.mark.parametrize(("cents", "currency", "text"), [
    (12345, "USD", "123.45 USD"), (5, "EUR", "0.05 EUR"), (0, "USD", "0.00 USD"), (-250, "USD", "-2.50 USD"),
    (100_000_00, "GBP", "100000.00 GBP"),
])
def test_money(cents, currency, text):
    assert money(cents, currency) == text


def test_dates():
    at = datetime(2026, 12, 2, 14, 5, 9, tzinfo=UTC)
    assert human_date(at) == "2026-12-02" and human_date(date(2026, 1, 31)) == "2026-01-31"
    assert human_datetime(at) == "2026-12-02 14:05" and human_datetime(at, seconds=True) == "2026-12-02 14:05:09"
    assert human_date(None) == human_datetime(None) == ""


def test_the_filters_are_registered_once_for_every_template():
    from src.templating import templates

    filters = templates.env.filters
    assert filters["bytes"] is human_bytes and filters["duration"] is human_duration and filters["money"] is money
    assert filters["date"] is human_date and filters["datetime"] is human_datetime
    at = datetime(2026, 12, 2, 14, 5, tzinfo=UTC)
    page = templates.env.from_string(
        '{{ c | money("EUR") }} · {{ at | date }} · {{ at | datetime }} · {{ none | datetime or "never" }}')
    assert page.render(c=1999, at=at, none=None) == "19.99 EUR · 2026-12-02 · 2026-12-02 14:05 · never"
    registrations = [p for p in (ROOT / "src").rglob("*.py")
                     if "filters.update" in p.read_text() or "filters[" in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in registrations] == ["src/templating.py"]


def test_no_template_or_script_does_its_own_size_arithmetic():
    """Sizes go through `| bytes` (templates) or humanBytes (upload.js), never /1048576 or a unit by hand."""
    offenders = []
    for path in [*(ROOT / "templates").rglob("*.html"), *(ROOT / "static/js").glob("*.js")]:
        if path.name.endswith(".min.js"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"1048576|1024 \*|/ ?1024|\bMiB\b|\bGiB\b|\}\} ?[KMG]B\b", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_templates_format_money_and_dates_only_through_the_filters():
    """No money(...) helper passed in a page's context, no strftime or cents arithmetic by hand:
    `| money(currency)`, `| date`, `| datetime`."""
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(?<!\| )\bmoney\(|\.strftime\(|_cents ?(//|/) ?100", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
