"""Ids from report links: the precompiled pattern gives exactly what the general reading gives."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connector.moodle.report.parsing import link_id
from tests.fixture_cases import load_cases

PATHS = ("/user/profile.php", "/course/view.php")
_HREF = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def general_link_id(cell: str | None, path: str) -> int | None:
    """The reading before the pattern: unescape, urlsplit and parse_qs every link (the reference)."""
    if not cell:
        return None
    for match in _HREF.finditer(cell):
        parts = urlsplit(html.unescape(match.group(1) or match.group(2) or ""))
        if not parts.path.endswith(path):
            continue
        values = parse_qs(parts.query).get("id", [])
        if values and values[0].isdigit():
            return int(values[0])
    return None


def report_cells() -> list[str]:
    cells: list[str] = []
    for case in load_cases():
        if case.function != "core_reportbuilder_retrieve_report" or case.format != "json":
            continue
        body: Any = case.json_body()
        rows = body.get("data", {}).get("rows", []) if isinstance(body, dict) else []
        cells += [str(cell) for row in rows for cell in row.get("columns", [])]
    return cells


def test_every_cell_of_every_report_fixture_gives_the_same_ids() -> None:
    cells = report_cells()
    linked = [c for c in cells if "href" in c]
    assert len(linked) > 200  # both captures' reports, user and course links
    for cell in cells:
        for path in PATHS:
            assert link_id(cell, path) == general_link_id(cell, path), (cell, path)
    assert {link_id(c, "/user/profile.php") for c in linked} - {None}  # the fast pattern found ids


@pytest.mark.parametrize(
    "cell",
    [
        '<a href="https://m.example.org/user/profile.php?id=3">Ana</a>',
        '<a href="https://m.example.org/moodle/user/profile.php?id=3#top">Ana</a>',
        '<a href="https://m.example.org/user/profile.php?id=3&amp;course=2">Ana</a>',
        '<a href="https://m.example.org/user/profile.php?id=3&#49;">Ana</a>',  # an entity joins the id
        '<a href="https://m.example.org/user/profile.php?course=2&amp;id=7">Ana</a>',  # id not first
        '<a href="https://m.example.org/user/profile.php?id=%37">Ana</a>',  # percent-encoded
        '<a href="//user/profile.php?id=3">Ana</a>',  # "user" is a host here
        '<a href="a://user/profile.php?id=3">Ana</a>',
        '<a href="/user/profile.php?id=3">Ana</a>',
        '<a href="user/profile.php?id=3">Ana</a>',
        '<a href=" https://m.example.org/user/profile.php?id=3">Ana</a>',
        '<a href="https://m.example.org/user/profile.php?id=abc">x</a><a href="/user/profile.php?id=9">y</a>',
        '<a href="https://m.example.org/user/profile.php?id=">x</a>',
        "<a href='https://m.example.org/user/profile.php?id=12'>Ana</a>",
        '<a href="https://m.example.org/user/profile.php?id=3;x=1">Ana</a>',
        '<a href="https://m.example.org/course/view.php?id=5">course</a>',
        '<a href="https://[::1]/user/profile.php?id=3">Ana</a>',
        '<a href="https://m.example.org/user/profile.php?id=00042">Ana</a>',
        '<a href="https://m.example.org/user\\profile.php?id=3">Ana</a>',
        "",
        "no link",
    ],
)
def test_odd_links_give_the_same_ids(cell: str) -> None:
    for path in PATHS:
        assert link_id(cell, path) == general_link_id(cell, path)
