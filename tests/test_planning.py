"""`connector due` and `connector forecast` on a real ledger file written through the ledger's API
with mappings of our own (tests/outside_mappings.py), read by the real CLI. Every expectation is
computed by hand in the comments of ``planning_ledger``."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.ledger import Ledger
from connector.ledger.imports import ImportedRow, Provenance
from connector.moodle.records import Completion, Course
from tests.helpers import demo_today
from tests.outside_mappings import write_mappings

FIRST_SYNC = date(2026, 3, 10)
NOW = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)
COURSES = [
    Course(11, "digvar", "Digitalna varnost", "DIGVAR", True, True),
    Course(12, "digvar-check", "Preverjanje", "DIGVAR-CHECK", True, True),
    Course(13, "itsec", "IT security", "ITSEC", True, True),
]


def done(user_id: int, course_id: int, day: str) -> Completion:
    at = datetime.combine(date.fromisoformat(day), time(10), tzinfo=UTC)
    return Completion(user_id, course_id, int(at.timestamp()))


def person(user_id: int, username: str, fullname: str, department: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "username": username,
        "idnumber": f"E{user_id}",
        "fullname": fullname,
        "institution": "Mestna občina Ljubljana",
        "department_text": "",
        "position": None,
        "cohorts": "[]",
        "department_id": department,
        "placement_conflicts": None,
        "start_date": None,
        "lastaccess": 0,
        "active": 1,
        "suspended": 0,
    }


@pytest.fixture
def planning_ledger(tmp_path: Path) -> Path:
    return build_ledger(tmp_path)


def build_ledger(tmp_path: Path) -> Path:
    """itsec: 24 months, warned 60 days before; digvar: training + check, 24 months, share >= 50 %.

    ana (finance):    itsec 2024-05-20 -> valid until 2026-05-20; digvar 2025-01-15 + 2025-01-20
                      -> until 2027-01-15 (the training expires first)
    bojan (finance):  itsec 2024-08-10 -> until 2026-08-10; digvar nothing (missing)
    cvetka (culture): itsec 2024-10-05 -> until 2026-10-05; digvar 2024-09-01 + 2024-09-02
                      -> until 2026-09-01
    david (culture):  itsec imported attendance 2026-02-01 -> until 2028-02-01; digvar training
                      2025-05-01 only (missing: the competence check is not done)
    """
    write_mappings(tmp_path / "mappings")
    (tmp_path / "connector.toml").write_text(
        '[moodle]\nurl = "https://moodle.example.si"\n[ledger]\npath = "ledger.sqlite"\n', encoding="utf-8"
    )
    then = datetime.combine(FIRST_SYNC, time(2), tzinfo=UTC)
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        run = ledger.runs.start("full", FIRST_SYNC, now=then)
        ledger.courses.upsert(COURSES, run)
        ledger.people.upsert(
            [
                person(1, "ana", "Ana Novak", "mol.fin"),
                person(2, "bojan", "Bojan Kos", "mol.fin"),
                person(3, "cvetka", "Cvetka Horvat", "mol.kul"),
                person(4, "david", "David Zupan", "mol.kul"),
            ],
            run,
            FIRST_SYNC,
        )
        ledger.evidence.record(
            [
                done(1, 13, "2024-05-20"),
                done(1, 11, "2025-01-15"),
                done(1, 12, "2025-01-20"),
                done(2, 13, "2024-08-10"),
                done(3, 13, "2024-10-05"),
                done(3, 11, "2024-09-01"),
                done(3, 12, "2024-09-02"),
                done(4, 11, "2025-05-01"),
            ],
            run,
            now=then,
        )
        ledger.imports.record(
            Provenance("HR", "attendance.csv", "0" * 64, "hana"),
            [ImportedRow(2, 4, "itsec", None, date(2026, 2, 1), "Univerza v Ljubljani")],
            now=then,
        )
        ledger.runs.finish(run, "ok", now=then)
    return tmp_path


def run(folder: Path, *args: str) -> Result:
    base = ["--config", str(folder / "connector.toml"), "--ledger", str(folder / "ledger.sqlite")]
    return CliRunner().invoke(
        main, [*base, "--mappings", str(folder / "mappings"), *args], obj={"clock": lambda: NOW}
    )


# -- due ------------------------------------------------------------------------------------------
DUE_TABLE = """\
Due by 14 Aug 2026 (within 60 days of 15 Jun 2026): 4 requirements of 3 people
due          full name    username  department          organisation             requirement  status    course to take
-----------  -----------  --------  ------------------  -----------------------  -----------  --------  -----------------------------------------------------------------
20 May 2026  Ana Novak    ana       Oddelek za finance  Mestna občina Ljubljana  itsec        expired   itsec
15 Jun 2026  Bojan Kos    bojan     Oddelek za finance  Mestna občina Ljubljana  digvar       missing   Digitalna varnost + Preverjanje kompetentnosti: digitalna varnost
15 Jun 2026  David Zupan  david     Oddelek za kulturo  Mestna občina Ljubljana  digvar       missing   Digitalna varnost + Preverjanje kompetentnosti: digitalna varnost
10 Aug 2026  Bojan Kos    bojan     Oddelek za finance  Mestna občina Ljubljana  itsec        expiring  itsec
"""


def test_due_lists_who_must_train_by_date_with_the_course(planning_ledger: Path) -> None:
    result = run(planning_ledger, "due", "--within", "60d")
    assert (result.exit_code, result.stdout) == (0, DUE_TABLE)


# (window, filters, expected (due, username, requirement, status) in order)
DUE_CASES = [
    ("60d", [], [("2026-05-20", "ana", "itsec", "expired"), ("2026-06-15", "bojan", "digvar", "missing"), ("2026-06-15", "david", "digvar", "missing"), ("2026-08-10", "bojan", "itsec", "expiring")]),
    # still compliant today, but valid only until 1 September: due within 90 days
    ("90 days", [], [("2026-05-20", "ana", "itsec", "expired"), ("2026-06-15", "bojan", "digvar", "missing"), ("2026-06-15", "david", "digvar", "missing"), ("2026-08-10", "bojan", "itsec", "expiring"), ("2026-09-01", "cvetka", "digvar", "compliant")]),
    ("60d", ["--department", "mol.kul"], [("2026-06-15", "david", "digvar", "missing")]),
    ("60d", ["--requirement", "itsec"], [("2026-05-20", "ana", "itsec", "expired"), ("2026-08-10", "bojan", "itsec", "expiring")]),
    # david's itsec is an imported attendance valid until 2028: never due
    ("1 year", ["--requirement", "itsec", "--department", "mol.kul"], [("2026-10-05", "cvetka", "itsec", "compliant")]),
]  # fmt: skip


@pytest.mark.parametrize(("within", "filters", "expected"), DUE_CASES)
def test_due_windows_and_filters(
    planning_ledger: Path, within: str, filters: list[str], expected: list[tuple[str, str, str, str]]
) -> None:
    result = run(planning_ledger, "due", "--within", within, *filters, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["due_on"], r["username"], r["requirement"], r["status"]) for r in rows] == expected


def test_due_csv_is_a_mail_merge_source(planning_ledger: Path) -> None:
    result = run(planning_ledger, "due", "--format", "csv", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        [
            "due_on",
            "fullname",
            "username",
            "idnumber",
            "email",
            "department",
            "department_name",
            "organisation",
            "organisation_name",
            "requirement",
            "requirement_title",
            "status",
            "valid_until",
            "course",
            "course_url",
        ],
        [
            "2026-05-20",
            "Ana Novak",
            "ana",
            "E1",
            "",
            "mol.fin",
            "Oddelek za finance",
            "mol",
            "Mestna občina Ljubljana",
            "itsec",
            "IT security",
            "expired",
            "2026-05-20",
            "itsec",
            "https://moodle.example.si/course/view.php?id=13",
        ],
    ]


def test_due_before_the_first_sync_is_refused(planning_ledger: Path) -> None:
    result = run(planning_ledger, "due", "--as-of", "2026-01-01")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: the ledger knows nothing before its first sync on 2026-03-10; --as-of must be on or after that day\n",
    )


def test_nobody_due(planning_ledger: Path) -> None:
    result = run(planning_ledger, "due", "--department", "mol.kul", "--requirement", "itsec")
    assert (result.exit_code, result.stdout) == (
        0,
        "nobody is due by 14 Aug 2026 (within 60 days of 15 Jun 2026)\n",
    )


# -- forecast -------------------------------------------------------------------------------------
# As of 10 March 2026 the quarter ends are 31 March, 30 June, 30 September and 31 December.
# itsec, finance: ana valid until 20 May (expiring from 21 March), bojan until 10 August
#   (expiring from 11 June): Q1 1/1/0, Q2 0/1/1 (ana's expiry inside Q2 shows in Q2), Q3 0/0/2.
# itsec, culture: cvetka until 5 October (expiring from 6 August), david's import until 2028:
#   Q1 2/0/0, Q2 2/0/0, Q3 1/1/0, Q4 1/0/1.
# digvar, finance: ana until 15 January 2027 (expiring from 16 November), bojan missing:
#   1/0/1 until Q4 0/1/1; the share stays 50 %: the target holds.
# digvar, culture: cvetka until 1 September, david missing: 1/0/1, then Q3 0/0/2: 0 % < 50 %.
# digvar, the city: 2/0/2 (50 %, met) then Q3 1/0/3 (25 %): fails at the end of Q3.
FORECAST_TABLE = """\
Forecast as of 10 Mar 2026 if nobody trains: compliant/expiring/expired (missing included) at the end of 2026-Q1 .. 2026-Q4
department               requirement  2026-Q1  2026-Q2  2026-Q3  2026-Q4
-----------------------  -----------  -------  -------  -------  -------
Mestna občina Ljubljana  digvar       2/0/2    2/0/2    1/0/3    0/1/3
Mestna občina Ljubljana  itsec        3/1/0    2/1/1    1/1/2    1/0/3
  Oddelek za finance     digvar       1/0/1    1/0/1    1/0/1    0/1/1
  Oddelek za finance     itsec        1/1/0    0/1/1    0/0/2    0/0/2
  Oddelek za kulturo     digvar       1/0/1    1/0/1    0/0/2    0/0/2
  Oddelek za kulturo     itsec        2/0/0    2/0/0    1/1/0    1/0/1

Targets met today that fail first:
  2026-Q3 (2026-09-30): Mestna občina Ljubljana (mol), digvar: share 50 % of 50 % needed today, 25 % then
  2026-Q3 (2026-09-30): Oddelek za kulturo (mol.kul), digvar: share 50 % of 50 % needed today, 0 % then
"""


def test_forecast_crosses_quarter_boundaries_and_names_the_first_failures(planning_ledger: Path) -> None:
    result = run(planning_ledger, "forecast", "--as-of", "2026-03-10")
    assert (result.exit_code, result.stdout) == (0, FORECAST_TABLE)


def test_forecast_json_has_one_row_per_quarter(planning_ledger: Path) -> None:
    result = run(
        planning_ledger,
        "forecast",
        "--as-of",
        "2026-03-10",
        "--quarters",
        "2",
        "--department",
        "mol.fin",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [
        (r["requirement"], r["quarter"], r["compliant"], r["expiring"], r["expired"])
        for r in data["quarters"]
    ] == [
        ("digvar", "2026-Q1", 1, 0, 1),
        ("digvar", "2026-Q2", 1, 0, 1),
        ("itsec", "2026-Q1", 1, 1, 0),
        ("itsec", "2026-Q2", 0, 1, 1),
    ]
    assert data["fails_first"] == []


def test_demo_ends_with_the_due_list(tmp_path: Path) -> None:
    """`connector demo` ends with exactly what `connector due --limit 10` prints for its ledger."""
    from connector.mapping import DEMO_MAPPINGS

    ledger = tmp_path / "demo.sqlite"
    base = ["--mappings", str(DEMO_MAPPINGS)]
    demo = CliRunner().invoke(main, [*base, "demo", "--ledger", str(ledger)])
    assert demo.exit_code == 0, demo.output
    as_of = demo_today().isoformat()  # the demo's day (its first line writes it as "26 Nov 2026")
    due = CliRunner().invoke(main, [*base, "--ledger", str(ledger), "due", "--as-of", as_of, "--limit", "10"])
    assert due.exit_code == 0, due.output
    assert due.stdout.startswith("Due by ") and "; the first 10 shown\n" in due.stdout
    assert demo.stdout.endswith("\n\n" + due.stdout)


# (as_of, quarters, the quarter ends): a quarter's last day still belongs to it
QUARTER_CASES = [
    (date(2026, 3, 10), 2, [date(2026, 3, 31), date(2026, 6, 30)]),
    (date(2026, 3, 31), 1, [date(2026, 3, 31)]),
    (date(2026, 4, 1), 1, [date(2026, 6, 30)]),
    (date(2026, 11, 26), 3, [date(2026, 12, 31), date(2027, 3, 31), date(2027, 6, 30)]),
]


@pytest.mark.parametrize(("as_of", "quarters", "ends"), QUARTER_CASES)
def test_quarter_ends(as_of: date, quarters: int, ends: list[date]) -> None:
    from connector.forecast import quarter_ends

    assert quarter_ends(as_of, quarters) == ends


def test_due_as_a_workbook_is_private_with_dates_as_dates(planning_ledger: Path) -> None:
    import openpyxl

    target = planning_ledger / "due.xlsx"
    result = run(planning_ledger, "due", "--format", "xlsx", "-o", str(target))
    assert (result.exit_code, result.stderr) == (0, f"wrote 4 rows to {target}\n")
    assert target.stat().st_mode & 0o777 == 0o600
    sheet = openpyxl.load_workbook(target)["due"]
    assert [c.value for c in sheet[1]][:3] == ["due", "full name", "username"]  # headings for people
    assert [c.value for c in sheet[2]][:3] == [datetime(2026, 5, 20), "Ana Novak", "ana"]


def test_due_xlsx_needs_a_file(planning_ledger: Path) -> None:
    result = run(planning_ledger, "due", "--format", "xlsx")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --format xlsx needs a file to write to\n  hint: add -o FILE.xlsx\n",
    )
