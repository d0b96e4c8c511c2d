"""The HTML report: its data equals `status --format json`, its words are translatable, its names inert."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector import i18n
from connector.cli import main
from connector.ledger import Ledger
from connector.mapping import DEMO_MAPPINGS, load_mappings
from connector.reports.html import (
    DepartmentReport,
    JudgedTarget,
    ReportData,
    RequirementStatus,
    TrendPoint,
    _judged_targets,
    bar_segments,
    build_report,
    long_date,
    render_report,
)
from tests.helpers import ANCHOR, demo_today
from tests.report_helpers import SYNC_DAYS, connector, synced_demo

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with synced_demo(tmp_path_factory.mktemp("html")) as folder:
        yield folder


def _report(site: Path, **filters: object) -> ReportData:
    with Ledger.open_readonly(site / "demo.sqlite") as ledger:
        return build_report(ledger, load_mappings(DEMO_MAPPINGS), **filters)  # type: ignore[arg-type]


class TextNodes(HTMLParser):
    """The text a reader sees (outside <style> and <title> of SVG shapes), one string per node."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def test_the_data_is_status_json_row_for_row(site: Path) -> None:
    data = _report(site)
    rows = json.loads(connector(site, "status", "--format", "json").stdout)
    flat = [(d.id, r) for d in data.departments for r in d.requirements]
    assert data.as_of == ANCHOR and len(flat) == len(rows) == 45
    for (department, shown), row in zip(flat, rows, strict=True):
        assert (department, shown.requirement) == (row["department"], row["requirement"])
        for key in ("in_scope", "compliant", "expiring", "expired", "missing", "grace", "exempt", "share"):
            assert getattr(shown, key) == row[key], (department, shown.requirement, key)
        assert [t.met for t in shown.targets] == [t["met"] for t in row["targets"]]
    assert [o.id for o in data.organisations] == ["jablonec", "ceska-lipa", "janov", "lucany", "ljubljana"]


def test_the_trend_is_the_share_of_each_past_sync(site: Path) -> None:
    itsec = next(r for r in _report(site).departments[0].requirements if r.requirement == "itsec-cz")
    assert [p.as_of for p in itsec.trend] == list(SYNC_DAYS)
    assert itsec.trend[-1].share == itsec.share
    earlier = _report(site, as_of=SYNC_DAYS[1]).departments[0].requirements[0]
    assert [p.as_of for p in earlier.trend] == list(SYNC_DAYS[:2])  # nothing after the day asked


def test_bars_put_valid_people_first_and_leave_exempt_people_out() -> None:
    status = RequirementStatus(14, 3, 0, 5, 4, 1, 1, 3, 3 / 13, "r", "R", False)
    segments = bar_segments(status)
    assert [(s.key, s.count) for s in segments] == [
        ("compliant", 3),
        ("grace", 1),
        ("expired", 5),
        ("missing", 4),
    ]
    assert segments[-1].x + segments[-1].width == pytest.approx(100)


def test_names_render_as_text_never_as_markup() -> None:
    status = RequirementStatus(1, 1, 0, 0, 0, 0, 0, 1, 1.0, HOSTILE, HOSTILE, None)
    department = DepartmentReport(HOSTILE, HOSTILE, HOSTILE, 1, (status,))
    html = render_report(ReportData(ANCHOR, (department,), HOSTILE, (department,)))
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    parser = TextNodes()
    parser.feed(html)
    assert HOSTILE in parser.texts  # shown as the text it is


def test_self_contained_with_language_title_and_a_table_per_chart(site: Path) -> None:
    i18n.set_language("cs")
    html = render_report(_report(site))
    assert '<html lang="cs">' in html
    assert re.search(r"<title>Plnění povinných školení – 15\.\xa06\.\xa02026</title>", html)
    assert not re.search(r"\b(src|href)=|url\(|@import|<script|<link", html)  # nothing fetched from anywhere
    assert html.count('<svg class="bar"') == html.count('<table class="numbers">') == 45
    assert "break-before: page" in html


def test_every_word_goes_through_the_translation_hook(site: Path) -> None:
    """Render with a hook marking each message: all text left unmarked is data (names, ids, numbers)."""
    data = _report(site)
    i18n.set_language("cs")
    html = render_report(data, gettext=lambda text: f"\u27e6{text}\u27e7")
    parser = TextNodes()
    parser.feed(html)
    names = {d.name for d in data.departments} | {d.organisation_name or "" for d in data.departments}
    names |= {r.title for d in data.departments for r in d.requirements}
    names |= {r.requirement for d in data.departments for r in d.requirements}
    names |= {
        text for d in data.departments for p in d.due for text in (p.name, p.requirement_title, p.course)
    }
    names |= {text for d in data.departments for n in d.needs for text in (n.requirement_title, n.course)}
    leftovers = []
    for text in parser.texts:
        text = re.sub("\u27e6[^\u27e7]*\u27e7", " ", text)
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(name, " ")
        if re.search(r"[^\W\d_]", text):
            leftovers.append(text)
    assert leftovers == []


def test_targets_in_words(site: Path) -> None:
    parser = TextNodes()
    parser.feed(render_report(_report(site, department="jablonec.informatika")))
    text = " ".join(parser.texts)
    assert re.search(r"Target: \d+% completed in 2026–2027, 50% required – ✗ not met", text)
    parser = TextNodes()  # advisors are a Ljubljana duty: judged there, not in the Czech towns
    parser.feed(render_report(_report(site, department="ljubljana.digitalizacija")))
    assert "Target: 2 trained, at least 1 required – ✓ met" in " ".join(parser.texts)


def test_a_target_without_a_period_and_one_nobody_can_be_judged_on() -> None:
    targets = (JudgedTarget("share", 0.8, 0.5, False), JudgedTarget("share", 0.5, None, None))
    status = RequirementStatus(
        2, 1, 0, 0, 1, 0, 0, 1, 0.5, "r", "R", False, targets, (TrendPoint(ANCHOR, 0.5),)
    )
    parser = TextNodes()
    parser.feed(render_report(ReportData(ANCHOR, (DepartmentReport("d", "D", None, 0, (status,)),))))
    text = " ".join(parser.texts)
    assert "Target: 50% valid, 80% required – ✗ not met" in text
    assert "Target: – valid, 50% required – cannot be judged" in text
    assert "Trend: shown after the next sync" in text


def test_report_command_writes_a_private_file(site: Path) -> None:
    target = site / "r.html"
    result = connector(site, "report", "-o", str(target), "--lang", "sl", "--department", "ljubljana")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", f"poročilo zapisano v {target}\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    html = target.read_text(encoding="utf-8")
    assert '<html lang="sl">' in html and "Mestna občina Ljubljana" in html and "Jablonec" not in html


def test_report_command_refuses_an_unknown_department(site: Path) -> None:
    result = connector(site, "report", "-o", str(site / "x.html"), "--department", "nowhere")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[0] == "error: no department 'nowhere' in the mappings"
    assert not (site / "x.html").exists()


def test_demo_ends_by_writing_the_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--ledger", str(tmp_path / "demo.sqlite")])
    assert result.exit_code == 0, result.output
    report = tmp_path / "demo-report.html"
    assert f"HTML report: {report} (open it in a browser)" in result.stderr.splitlines()
    assert f"As of {demo_today().day} " in report.read_text(encoding="utf-8")


class Tables(HTMLParser):
    """The cells of every <table> with a given class, row by row, as a reader sees them."""

    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.tables: list[list[list[str]]] = []
        self._inside = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("class") == self.css_class:
            self._inside = True
            self.tables.append([])
        elif self._inside and tag == "tr":
            self.tables[-1].append([])
        elif self._inside and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif self._cell is not None and tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _sections(html: str, css_class: str) -> list[list[list[str]]]:
    parser = Tables(css_class)
    parser.feed(html)
    return [table[1:] for table in parser.tables]  # the heading row left out


def test_the_due_table_is_connector_due_for_the_same_ledger_and_day(site: Path) -> None:
    data = _report(site)
    html = render_report(data)
    shown = [row for table in _sections(html, "due-table") for row in table]
    rows = json.loads(connector(site, "due", "--as-of", ANCHOR.isoformat(), "--format", "json").stdout)
    order = {d.id: i for i, d in enumerate(data.departments)}
    rows.sort(key=lambda r: order[r["department"]])  # the report lists them per department, by due date
    expected = [
        [
            long_date(date.fromisoformat(r["due_on"])),
            r["fullname"] or r["username"],
            r["requirement_title"],
            r["status"].replace("grace", "grace period"),
            r["course"],
        ]
        for r in rows
    ]
    assert len(shown) == len(rows) == 46
    assert shown == expected
    assert "Due by 14 Aug 2026" in html


def test_the_due_table_names_people_by_username_when_the_ledger_keeps_no_full_names(
    site: Path, tmp_path: Path
) -> None:
    ledger_path = tmp_path / "demo.sqlite"
    shutil.copy(site / "demo.sqlite", ledger_path)
    for name in ("connector.toml", "token"):
        shutil.copy(site / name, tmp_path / name)
    with sqlite3.connect(ledger_path) as db:
        db.execute("UPDATE people SET fullname = NULL")
    with Ledger.open_readonly(ledger_path) as ledger:
        data = build_report(ledger, load_mappings(DEMO_MAPPINGS), department="jablonec.informatika")
    names = [row[1] for table in _sections(render_report(data), "due-table") for row in table]
    due = ("due", "--as-of", ANCHOR.isoformat(), "--department", "jablonec.informatika", "--format", "json")
    rows = json.loads(connector(tmp_path, *due).stdout)
    assert names == [r["username"] for r in rows] and len(names) == 8


def test_a_hostile_name_in_the_ledger_renders_as_text_in_the_due_table(site: Path, tmp_path: Path) -> None:
    ledger_path = tmp_path / "demo.sqlite"
    shutil.copy(site / "demo.sqlite", ledger_path)
    with sqlite3.connect(ledger_path) as db:
        db.execute("UPDATE people SET fullname = ? WHERE fullname = 'Jana Pokorná'", (HOSTILE,))
    with Ledger.open_readonly(ledger_path) as ledger:
        data = build_report(ledger, load_mappings(DEMO_MAPPINGS), department="jablonec.informatika")
    html = render_report(data)
    assert "<script" not in html
    assert _sections(html, "due-table")[0][0][1] == HOSTILE


def test_the_needs_summary_is_connector_needs_counts(site: Path) -> None:
    data = _report(site)
    assert (data.needs_year, data.needs_as_of) == (2026, ANCHOR)
    html = render_report(data)
    shown = [row for table in _sections(html, "needs-table") for row in table]
    rows = json.loads(connector(site, "needs", "--year", "2026", "--format", "json").stdout)
    order = {d.id: i for i, d in enumerate(data.departments)}
    rows.sort(key=lambda r: order[r["department"]])
    keys = ("needs", "missing", "expired", "expiring", "grace", "declared")
    expected = [[r["requirement_title"], *(str(r[k]) for k in keys), r["course"]] for r in rows]
    assert len(shown) == len(rows) == 15
    assert shown == expected
    assert "Needs analysis 2026" in html


def test_an_appointment_in_words(site: Path) -> None:
    parser = TextNodes()
    parser.feed(render_report(_report(site, department="ljubljana")))
    text = " ".join(parser.texts)
    assert "Target: 0 appointed of 1 required (by 31 Dec 2026) – not yet due" in text
    assert "Target: 2 appointed of 1 required (by 31 Dec 2026) – ✓ met" in text
    assert "trained, at least" not in text.split("Imenovan digitalni svetovalec")[1].split("Trend")[0]


def test_a_share_target_of_even_years_is_not_judged_in_an_odd_year() -> None:
    mappings = load_mappings(DEMO_MAPPINGS)
    even = next(r for r in mappings.requirements if any(t.years == "even" for t in r.targets))
    target = next(t for t in even.targets if t.years == "even")
    row = {
        "kind": "share",
        "required": target.minimum,
        "actual": None,
        "met": None,
        "period": None,
        "judged": "",
    }
    assert _judged_targets([row], even, date(2027, 3, 1))[0].off_year == "even"
    assert _judged_targets([row], even, date(2026, 3, 1))[0].off_year is None
    status = RequirementStatus(
        2, 1, 0, 0, 1, 0, 0, 1, 0.5, "r", "R", None, _judged_targets([row], even, date(2027, 3, 1))
    )
    parser = TextNodes()
    parser.feed(
        render_report(ReportData(date(2027, 3, 1), (DepartmentReport("d", "D", None, 0, (status,)),)))
    )
    assert "Target: not judged in 2027 (judged in even years only) – not judged this year" in " ".join(
        parser.texts
    )


def test_an_organisation_points_to_its_departments_instead_of_saying_nobody_is_due(site: Path) -> None:
    data = _report(site, department="jablonec")
    organisation, *departments = data.departments
    assert organisation.has_sub_departments and not organisation.due and not organisation.needs
    assert not any(d.has_sub_departments for d in departments) and any(d.due for d in departments)
    html = render_report(replace(data, departments=(organisation,)))
    parser = TextNodes()
    parser.feed(html)
    text = " ".join(parser.texts)
    assert text.count("Its people are listed under its departments below.") == 2  # due and needs
    assert "Nobody in this department is due." not in text


def test_a_department_lists_its_most_urgent_due_rows_and_counts_the_rest(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A printed department with thousands due would be hundreds of pages: the section lists the
    first DUE_ROWS_SHOWN (here 2) in `connector due`'s order and says how many more there are."""
    monkeypatch.setattr("connector.reports.html.DUE_ROWS_SHOWN", 2)
    data = _report(site)
    rows = json.loads(connector(site, "due", "--as-of", ANCHOR.isoformat(), "--format", "json").stdout)
    by_department: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_department.setdefault(str(row["department"]), []).append(row)
    assert max(len(r) for r in by_department.values()) > 2  # the demo has departments to cut
    html = render_report(data)
    for department in data.departments:
        expected = by_department.get(department.id, [])
        assert [(p.name, p.requirement) for p in department.due] == [
            (r["fullname"] or r["username"], r["requirement"]) for r in expected[:2]
        ]
        assert department.due_more == max(0, len(expected) - 2)
        if department.due_more > 1:
            assert (
                f"The table shows the first 2; {department.due_more} more requirements are due by "
                f"14 Aug 2026: <code>connector due --department {department.id} --as-of 2026-06-15</code> "
                "lists them all."
            ) in html
    cut = next(d for d in data.departments if d.due_more > 4)
    i18n.set_language("cs")
    czech = render_report(data)
    assert (
        f"Tabulka uvádí prvních 2; do 14.\xa08.\xa02026 je třeba splnit ještě {cut.due_more} požadavků. "
        f"Všechny vypíše příkaz <code>connector due --department {cut.id} --as-of 2026-06-15</code>."
    ) in czech
    assert sum(len(table) for table in _sections(html, "due-table")) == sum(
        len(d.due) for d in data.departments
    )
