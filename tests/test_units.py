"""One size convention everywhere: decimal units, three significant digits (src/units.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from src.units import human_bytes, human_duration

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


def test_the_filters_are_registered_once_for_every_template():
    from src.templating import templates

    assert templates.env.filters["bytes"] is human_bytes and templates.env.filters["duration"] is human_duration
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
