"""Evidence from outside Moodle: how the rules count it (table of hand-computed cases) and the
`connector evidence import|list|remove` commands on a real ledger (one real sync of the demo)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.evaluation import resolve_courses
from connector.imports import completion_of, course_ids_by_key
from connector.mapping import DEMO_MAPPINGS, load_mappings
from connector.moodle.records import Completion, Course, Subject
from connector.rules import evaluate
from tests.helpers import ANCHOR, Site, synced_demo_ledger
from tests.outside_mappings import write_mappings

AS_OF = date(2026, 6, 15)
COURSES = [
    Course(11, "digvar", "Digitalna varnost", "DIGVAR", True, True),
    Course(12, "digvar-check", "Preverjanje", "DIGVAR-CHECK", True, True),
    Course(13, "itsec", "IT security", "ITSEC", True, True),
]


def moodle(course_id: int, day: str) -> Completion:
    at = datetime.combine(date.fromisoformat(day), time(10), tzinfo=UTC)
    return Completion(1, course_id, int(at.timestamp()))


def imported(
    day: str, *, course: str | None = None, requirement: str | None = None, expiry: str | None = None
) -> dict[str, Any]:
    return {
        "id": 1,
        "user_id": 1,
        "course": course,
        "requirement_id": requirement,
        "completed_on": day,
        "provider": "Univerza v Ljubljani",
        "expires_on": expiry,
    }


# (case, Moodle completions, imported rows, requirement, status, valid until, decided by source)
CASES = [
    ("nothing at all", [], [], "itsec", "missing", None, None),
    ("an attendance list makes someone compliant", [], [imported("2026-05-04", course="itsec")], "itsec", "compliant", "2028-05-04", "import:Univerza v Ljubljani"),
    ("a certificate for the requirement, its expiry caps validity", [], [imported("2026-05-04", requirement="itsec", expiry="2026-07-01")], "itsec", "expiring", "2026-07-01", "import:Univerza v Ljubljani"),
    ("a certificate that expired before as_of", [], [imported("2025-05-04", requirement="itsec", expiry="2026-06-01")], "itsec", "expired", "2026-06-01", "import:Univerza v Ljubljani"),
    ("a later certificate expiring sooner does not shorten Moodle's", [moodle(13, "2025-01-10")], [imported("2026-03-01", requirement="itsec", expiry="2026-06-30")], "itsec", "compliant", "2027-01-10", "completion_status"),
    ("an import dated after as_of is ignored", [], [imported("2026-07-01", course="itsec")], "itsec", "missing", None, None),
    ("training without the competence check", [moodle(11, "2025-03-01")], [], "digvar", "missing", None, None),
    ("training in Moodle + the check imported: the first to expire decides", [moodle(11, "2025-03-01")], [imported("2025-09-01", course="digvar-check")], "digvar", "compliant", "2027-03-01", "completion_status"),
    ("the check imported with an expiry before the training's", [moodle(11, "2025-03-01")], [imported("2025-09-01", course="digvar-check", expiry="2026-08-01")], "digvar", "expiring", "2026-08-01", "import:Univerza v Ljubljani"),
    ("an outside certificate of the whole requirement", [], [imported("2026-01-10", requirement="digvar")], "digvar", "compliant", "2028-01-10", "import:Univerza v Ljubljani"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "completions", "rows", "requirement", "status", "until", "source"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_imported_evidence_counts_like_a_completion(
    tmp_path: Path, case: str, completions: list[Completion], rows: list[dict[str, Any]],
    requirement: str, status: str, until: str | None, source: str | None,
) -> None:  # fmt: skip
    mappings = load_mappings(write_mappings(tmp_path / "mappings"))
    course_ids = resolve_courses(mappings, COURSES)
    keys = course_ids_by_key(mappings, course_ids)
    evidence = completions + [c for c in (completion_of(r, keys) for r in rows) if c is not None]
    subject = Subject(1, "ana", "mol.fin")
    result = evaluate([subject], evidence, mappings, course_ids, AS_OF)
    (found,) = [s for s in result.statuses if s.requirement_id == requirement]
    got = (str(found.status), found.valid_until.isoformat() if found.valid_until else None)
    assert got == (status, until)
    assert (found.decided_by.source if found.decided_by else None) == source


# -- the commands on a real ledger ----------------------------------------------------------------
def run(folder: Path, *args: str) -> Result:
    config = ("--config", str(folder / "connector.toml"), "--ledger", str(folder / "demo.sqlite"))
    now = datetime(2026, 6, 16, 8, 0, tzinfo=UTC)
    # getpass reads LOGNAME first: the OS user an import records, made the same on every machine
    return CliRunner(env={"LOGNAME": "hana.novak"}).invoke(
        main, [*config, "--mappings", str(DEMO_MAPPINGS), *args], obj={"clock": lambda: now}
    )


@pytest.fixture
def demo_ledger(tmp_path: Path) -> Path:
    synced_demo_ledger(tmp_path)
    return tmp_path


def export_line(folder: Path, username: str, requirement: str) -> str:
    result = run(folder, "export", "--as-of", ANCHOR.isoformat())
    assert result.exit_code == 0, result.output
    (line,) = [
        x for x in result.stdout.splitlines() if x.startswith(f"{username},") and f",{requirement}," in x
    ]
    return line


def test_an_imported_attendance_list_makes_a_missing_person_compliant(demo_ledger: Path) -> None:
    before = export_line(demo_ledger, "u003", "itsec-cz")
    assert (
        before
        == "u003,EMP1003,jablonec.informatika,Odbor informatiky,itsec-cz,missing,,,,jablonec,Magistrát města Jablonec nad Nisou,,Kateřina Růžička,"
    )
    (demo_ledger / "attendance.csv").write_text(
        "username,course,date,provider\nu003,itsec-cz,2026-05-04,KÚ Libereckého kraje\n", encoding="utf-8"
    )
    result = run(
        demo_ledger,
        "evidence",
        "import",
        str(demo_ledger / "attendance.csv"),
        "--source",
        "Jablonec, session 4 May",
    )
    assert (result.exit_code, result.stdout) == (
        0,
        "imported 1 row from attendance.csv as import 1 (sha256 "
        f"{__import__('hashlib').sha256((demo_ledger / 'attendance.csv').read_bytes()).hexdigest()[:12]}); "
        "the next sync counts them, `connector status --as-of 2026-06-16` shows them now\n",
    )
    assert export_line(demo_ledger, "u003", "itsec-cz") == (
        "u003,EMP1003,jablonec.informatika,Odbor informatiky,itsec-cz,compliant,2028-05-04,itsec-cz,"
        "2026-05-04T12:00:00Z,jablonec,Magistrát města Jablonec nad Nisou,import:KÚ Libereckého kraje,"
        "Kateřina Růžička,"
    )
    person = run(demo_ledger, "person", "u003")
    evidence = person.stdout.split("\nEvidence\n")[1].split("\n\nHistory")[0]
    assert evidence.splitlines()[2].split("  ")[:3] == [
        "itsec-cz",
        "4 May 2026",
        "import:KÚ Libereckého kraje",
    ]

    again = run(demo_ledger, "evidence", "import", str(demo_ledger / "attendance.csv"), "--source", "again")
    assert (again.exit_code, again.stderr) == (
        2,
        "error: attendance.csv was imported already (import 1 on 2026-06-16, same content): nothing was imported\n"
        "  hint: `connector evidence list` shows it; --force imports it again\n",
    )
    forced = run(
        demo_ledger, "evidence", "import", str(demo_ledger / "attendance.csv"), "--source", "again", "--force"
    )
    assert forced.exit_code == 0 and " as import 2 " in forced.stdout


def test_a_bad_file_lists_every_problem_and_imports_nothing(demo_ledger: Path) -> None:
    (demo_ledger / "bad.csv").write_text(
        "username;requirement;date;provider;expiry\n"
        "u004;ai-ured;2026-13-01;KÚ;\n"
        "u005;ai-ured;2026-05-04;KÚ;\n"
        "nobody;itsec;2026-01-01;;2025-01-01\n"
        "u006;ai-ured;2026-07-01;KÚ\n",
        encoding="utf-8",
    )
    result = run(demo_ledger, "evidence", "import", str(demo_ledger / "bad.csv"), "--source", "HR")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: bad.csv: 6 problems, nothing was imported:\n"
        "  bad.csv: line 2, column 'date': '2026-13-01' is not a date (YYYY-MM-DD)\n"
        "  bad.csv: line 4, column 'username': no person 'nobody' in the ledger\n"
        "  bad.csv: line 4, column 'requirement': 'itsec' is not a requirement id\n"
        "  bad.csv: line 4, column 'provider': empty; name who held the session or issued the certificate\n"
        "  bad.csv: line 4, column 'expiry': 2025-01-01 is before the date 2026-01-01\n"
        "  bad.csv: line 5: 4 values for 5 columns\n"
        "  hint: correct the file and import it again; the whole file is imported or nothing\n",
    )
    listed = run(demo_ledger, "evidence", "list")
    assert listed.stdout == "no evidence has been imported\n"


def test_a_bad_file_is_explained_in_czech(demo_ledger: Path) -> None:
    """HR imports attendance lists: every line's problem in their language."""
    (demo_ledger / "bad.csv").write_text(
        "username;requirement;date;provider;expiry\n"
        "nobody;itsec;2026-01-01;;2025-01-01\n"
        "u006;ai-ured;2026-07-01;KÚ\n",
        encoding="utf-8",
    )
    result = run(
        demo_ledger, "--lang", "cs", "evidence", "import", str(demo_ledger / "bad.csv"), "--source", "HR"
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "chyba: bad.csv: 5 problémů, nic nebylo importováno:\n"
        "  bad.csv: řádek 2, sloupec 'username': v evidenci není nikdo s username 'nobody'\n"
        "  bad.csv: řádek 2, sloupec 'requirement': 'itsec' není id požadavku\n"
        "  bad.csv: řádek 2, sloupec 'provider': prázdné; uveďte, kdo školení vedl nebo osvědčení vydal\n"
        "  bad.csv: řádek 2, sloupec 'expiry': 2025-01-01 je před datem 2026-01-01\n"
        "  bad.csv: řádek 3: hodnot je 4, sloupců 5\n"
        "  rada: opravte soubor a importujte ho znovu; importuje se celý soubor, nebo nic\n",
    )


def test_removal_is_audited_and_takes_the_evidence_away(demo_ledger: Path) -> None:
    (demo_ledger / "a.csv").write_text(
        "idnumber,course,date,provider\nEMP1003,itsec-cz,2026-05-04,KÚ\n", encoding="utf-8"
    )
    assert run(demo_ledger, "evidence", "import", str(demo_ledger / "a.csv"), "--source", "HR").exit_code == 0
    empty = run(demo_ledger, "evidence", "remove", "--import", "1", "--reason", "  ")
    assert (empty.exit_code, empty.stderr.splitlines()[0]) == (
        2,
        "error: --reason is empty: say why this import is removed",
    )
    removed = run(demo_ledger, "evidence", "remove", "--import", "1", "--reason", "wrong session")
    assert (removed.exit_code, removed.stdout) == (
        0,
        "removed 1 row of import 1; the removal is recorded with the import, and the next sync counts without them\n",
    )
    assert export_line(demo_ledger, "u003", "itsec-cz").split(",")[5] == "missing"
    listed = run(demo_ledger, "evidence", "list")
    assert listed.stdout == (
        "import  imported     by          source  file   rows  state\n"
        "------  -----------  ----------  ------  -----  ----  ------------------------------------------------------\n"
        "     1  16 Jun 2026  hana.novak  HR      a.csv     1  removed 16 Jun 2026 10:00 by hana.novak: wrong session\n"
    )
    again = run(demo_ledger, "evidence", "remove", "--import", "1", "--reason", "twice")
    assert (again.exit_code, again.stderr.splitlines()[0]) == (2, "error: no import 1 to remove")
    assert json.loads(run(demo_ledger, "evidence", "list", "--format", "json").stdout)[0]["state"] == (
        "removed 2026-06-16 by hana.novak: wrong session"  # scripts read JSON: English words, ISO day
    )
    czech = run(demo_ledger, "--lang", "cs", "evidence", "list").stdout.splitlines()[2]
    assert czech.endswith("  odstraněno 16. 6. 2026 10:00 (hana.novak): wrong session")


def test_erasing_a_person_erases_their_imported_evidence(demo_ledger: Path) -> None:
    (demo_ledger / "a.csv").write_text(
        "username,course,date,provider\nu003,itsec-cz,2026-05-04,KÚ\n", encoding="utf-8"
    )
    assert run(demo_ledger, "evidence", "import", str(demo_ledger / "a.csv"), "--source", "HR").exit_code == 0
    assert run(demo_ledger, "erase", "u003", "--reason", "GDPR 1", "--yes").exit_code == 0
    with sqlite3.connect(demo_ledger / "demo.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM imported_evidence").fetchone() == (0,)


def test_the_readme_competence_check_rule_loads_as_training_and_check(tmp_path: Path) -> None:
    """The README's Ljubljana digital-security rule is valid mappings and means what it says."""
    from tests.helpers import REPO
    from tests.outside_mappings import MAPPINGS

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split('### Competence checks ("preverjanje kompetentnosti")', 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("settings.toml", "departments.toml"):
        (folder / name).write_text(MAPPINGS[name], encoding="utf-8")
    (folder / "rule.toml").write_text(block, encoding="utf-8")
    requirement = load_mappings(folder).requirement("digvar")
    assert (requirement.require, [str(c) for c in requirement.courses], str(requirement.valid_for)) == (
        "all",
        ["idnumber:DIGVAR", "idnumber:DIGVAR-CHECK"],
        "24 months",
    )


def test_the_next_sync_stores_statuses_decided_by_the_import(demo_site: Site) -> None:
    base = ["--config", str(demo_site.config_path)]
    clock = {"clock": lambda: datetime(2026, 6, 16, 8, 0, tzinfo=UTC)}

    def connector(*args: str) -> Result:
        return CliRunner(env={"LOGNAME": "hana.novak"}).invoke(main, [*base, *args], obj=clock)

    assert connector("sync", "--as-of", ANCHOR.isoformat()).exit_code == 0
    (demo_site.tmp / "a.csv").write_text(
        "username,course,date,provider\nu003,itsec-cz,2026-05-04,KÚ\n", encoding="utf-8"
    )
    assert connector("evidence", "import", str(demo_site.tmp / "a.csv"), "--source", "HR").exit_code == 0
    assert connector("sync", "--as-of", ANCHOR.isoformat()).exit_code == 0
    statuses = json.loads(connector("person", "u003", "--format", "json").stdout)["statuses"]
    (itsec,) = [s for s in statuses if s["requirement"] == "itsec-cz"]
    assert (itsec["status"], itsec["valid_until"], itsec["decided_by"], itsec["completed_at"]) == (
        "compliant",
        "2028-05-04",
        "itsec-cz",
        "2026-05-04T12:00:00Z",
    )
    assert connector("evidence", "remove", "--import", "1", "--reason", "wrong list").exit_code == 0
    exported = [
        r for r in json.loads(connector("export", "--format", "json").stdout) if r["username"] == "u003"
    ]
    (row,) = [r for r in exported if r["requirement"] == "itsec-cz"]
    # the stored status still says compliant until the next sync; the removed import names no source
    assert (row["status"], row["decided_by_course"], row["decided_by_source"]) == ("compliant", None, None)
    assert connector("sync", "--as-of", ANCHOR.isoformat()).exit_code == 0
    statuses = json.loads(connector("person", "u003", "--format", "json").stdout)["statuses"]
    assert [s["status"] for s in statuses if s["requirement"] == "itsec-cz"] == ["missing"]
