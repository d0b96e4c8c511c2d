"""The needs register and the yearly needs analysis (`connector needs`).

Rules: table tests with hand-computed expectations. The command: a real sync of the demo site
(emulator over loopback, Moodle 4.5 so it serves the Feedback survey), the survey read through
`connector needs survey`, a real ledger file, the real CLI.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.emulator import Emulator, demo_scenario
from connector.ledger.needs import DeclaredNeed
from connector.ledger.records import StatusRow
from connector.mapping.models import AppliesTo, CourseRef, Department, Mappings, Requirement
from connector.needs.analysis import Need, gap_reason, needs_of_year
from tests.helpers import ANCHOR, MAPPINGS, demo_today, move_in_and_out

NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)


def status(user_id: int, requirement: str, value: str, valid_until: str | None = None) -> StatusRow:
    return StatusRow(user_id, requirement, value, valid_until, None, None, None, None, "")


# -- the rules --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "valid_until", "year", "expected"),
    [
        ("missing", None, 2027, "missing"),
        ("expired", "2026-01-31", 2027, "expired"),
        ("grace", None, 2027, "grace"),
        ("compliant", "2027-12-31", 2027, "expiring"),  # the last day of the year still counts
        ("compliant", "2028-01-01", 2027, None),
        ("expiring", "2026-08-01", 2026, "expiring"),
        ("compliant", "2026-08-01", 2027, "expiring"),  # expired before the year even starts
        ("compliant", None, 2027, None),  # never expires
        ("exempt", None, 2027, None),
        ("not_applicable", None, 2027, None),
    ],
)
def test_which_statuses_are_needs_of_a_year(
    value: str, valid_until: str | None, year: int, expected: str | None
) -> None:
    assert gap_reason(status(1, "r", value, valid_until), year) == expected


def _mappings() -> Mappings:
    cz, si = Department("cz", "Město"), Department("si", "Mesto")
    return Mappings(
        (cz, si),
        (
            Requirement("itsec", "IT", (CourseRef("idnumber", "IT"),), applies_to=AppliesTo(("cz",)),
                        needs_areas=("Security",)),
            Requirement("digvar", "DV", (CourseRef("idnumber", "DV"),), applies_to=AppliesTo(("si",)),
                        needs_areas=("Security",)),
            Requirement("ai", "AI", (CourseRef("idnumber", "AI"),), applies_to=AppliesTo(("cz",)),
                        needs_areas=("AI",)),
        ),
    )  # fmt: skip


def test_gaps_and_declared_needs_make_one_need_per_person_and_requirement() -> None:
    mappings = _mappings()
    people = {
        1: {"active": 1, "department_id": "cz"},
        2: {"active": 1, "department_id": "si"},
        3: {"active": 0, "department_id": "cz"},  # suspended: no need counts
        4: {"active": 1, "department_id": "cz"},
    }
    statuses = [
        status(1, "itsec", "missing"),
        status(1, "digvar", "not_applicable"),
        status(1, "ai", "compliant"),
        status(2, "itsec", "not_applicable"),
        status(2, "digvar", "compliant", "2030-01-01"),
        status(2, "ai", "not_applicable"),
        status(3, "itsec", "missing"),
        status(4, "itsec", "expiring", "2027-03-01"),
    ]

    def declared(user_id: int, requirement: str, area: str, year: int = 2027) -> DeclaredNeed:
        return DeclaredNeed(user_id, year, requirement, area, "survey")

    found = needs_of_year(
        2027,
        statuses,
        [
            declared(1, "itsec", "Security"),  # "Security" names both: the one that applies wins
            declared(1, "digvar", "Security"),
            declared(2, "itsec", "Security"),
            declared(2, "digvar", "Security"),
            declared(2, "ai", "AI"),  # applies nowhere near: still declared, under what was named
            declared(3, "ai", "AI"),
            declared(4, "ai", "AI", year=2026),  # another year's survey
        ],
        people,
        mappings,
    )
    assert found == [
        Need(1, "itsec", "cz", ("missing", "declared")),
        Need(2, "digvar", "si", ("declared",)),
        Need(2, "ai", "si", ("declared",)),
        Need(4, "itsec", "cz", ("expiring",)),
    ]


def test_nobody_needs_anything_when_everyone_holds_it_past_the_year() -> None:
    people = {1: {"active": 1, "department_id": "cz"}}
    statuses = [status(1, "itsec", "compliant", "2029-01-01"), status(1, "ai", "compliant")]
    assert needs_of_year(2027, statuses, [], people, _mappings()) == []


# -- the command over a real sync -------------------------------------------------------------------
@dataclass
class NeedsSite:
    emulator: Emulator
    folder: Path

    def run(self, *args: str) -> tuple[int, str, str]:
        config = ("--config", str(self.folder / "connector.toml"), "--mappings", str(MAPPINGS))
        result = CliRunner().invoke(main, [*config, *args], obj={"clock": lambda: NOW})
        return result.exit_code, result.stdout, result.stderr


def _config(folder: Path, url: str, cmid: int = 1) -> None:
    (folder / "connector.toml").write_text(
        f'[moodle]\nurl = "{url}"\ntoken_file = "token"\nreport_id = 1\n'
        f'[ledger]\npath = "ledger.sqlite"\n[needs]\nfeedback_cmid = {cmid}\n',
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def needs_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NeedsSite]:
    folder = tmp_path_factory.mktemp("needs")
    (folder / "token").write_text("fb-token\n", encoding="utf-8")
    (folder / "token").chmod(0o600)
    with Emulator(demo_scenario(ANCHOR), tokens={"fb-token": "full"}, moodle="4.5") as emu:
        emu.add_token("fb-no-reports", "full", lacking=["mod/feedback:viewreports"])
        _config(folder, emu.url)
        site = NeedsSite(emu, folder)
        assert site.run("sync", "--as-of", ANCHOR.isoformat())[0] == 0
        code, out, err = site.run("needs", "survey")
        assert (code, err.splitlines()) == (
            0,
            [
                "warning: the survey option 'Ni potrebe / Nepotřebuji školení' names no requirement "
                "(add it to a requirement's needs_areas to count it)",
                "warning: the survey option 'Pisarniška orodja / Kancelářské nástroje' names no requirement "
                "(add it to a requirement's needs_areas to count it)",
            ],
        )
        # DEMO_NEEDS: 29 choices of the three mapped options (1, 2, 3); u008, u040, u044 and u050
        # chose only unmapped ones, so 22 of the 26 people declared a need
        assert out == (
            "read 'Analiza potreb 2026 / Analýza potřeb 2026': 26 answers, 29 declared needs of 22 people "
            "for 2026\n"
        )
        yield site


def test_the_needs_table_of_a_department(needs_site: NeedsSite) -> None:
    # Služba za digitalizacijo (Ljubljana), as of 2026-06-15: u047 never took Digitalna varnost; the
    # survey (emulator/feedback.py DEMO_NEEDS): u037 and u048 chose security ("1"), u042 AI and the
    # advisor course ("2|3"), u047 AI ("2"). AI applies to Czech officials only: the need is kept
    # under the requirement the area names.
    code, out, _ = needs_site.run("needs", "--year", "2026", "--department", "ljubljana.digitalizacija")
    assert code == 0
    assert out.splitlines() == [
        "Needs analysis 2026 (statuses of the sync of 15 Jun 2026)",
        "department                requirement      needs  missing  expired  expiring  grace  declared"
        "  course to take                                      who",
        "------------------------  ---------------  -----  -------  -------  --------  -----  --------"
        "  --------------------------------------------------  ----------------",
        "Služba za digitalizacijo  digvar-si            3        1        0         0      0         2"
        "  Digitalna varnost                                   u037, u047, u048",
        "Služba za digitalizacijo  digital-advisor      1        0        0         0      0         1"
        "  Digitalni svetovalec – uvod                         u042",
        "Služba za digitalizacijo  ai-ured              2        0        0         0      0         2"
        "  Jak může AI usnadnit a zefektivnit práci úředníka?  u042, u047",
        "",
        "4 people need training: 6 needs (1 missing, 0 expired, 0 expiring by 2026-12-31, 0 newcomers, "
        "5 declared)",
    ]


def test_needs_csv_is_one_line_per_person_and_json_carries_the_counts(needs_site: NeedsSite) -> None:
    code, out, _ = needs_site.run(
        "needs", "--year", "2026", "--department", "ljubljana.digitalizacija", "--format", "csv"
    )
    assert code == 0
    assert out.splitlines() == [
        "year,department,department_name,username,idnumber,requirement,reasons,course,organisation",
        "2026,ljubljana.digitalizacija,Služba za digitalizacijo,u037,EMP1037,digvar-si,declared,"
        "Digitalna varnost,ljubljana",
        "2026,ljubljana.digitalizacija,Služba za digitalizacijo,u042,EMP1042,digital-advisor,declared,"
        "Digitalni svetovalec – uvod,ljubljana",
        "2026,ljubljana.digitalizacija,Služba za digitalizacijo,u042,EMP1042,ai-ured,declared,"
        "Jak může AI usnadnit a zefektivnit práci úředníka?,ljubljana",
        "2026,ljubljana.digitalizacija,Služba za digitalizacijo,u047,EMP1047,digvar-si,missing,"
        "Digitalna varnost,ljubljana",
        "2026,ljubljana.digitalizacija,Služba za digitalizacijo,u047,EMP1047,ai-ured,declared,"
        "Jak může AI usnadnit a zefektivnit práci úředníka?,ljubljana",
        "2026,ljubljana.digitalizacija,Služba za digitalizacijo,u048,EMP1048,digvar-si,declared,"
        "Digitalna varnost,ljubljana",
    ]
    code, out, _ = needs_site.run("needs", "--year", "2026", "--department", "ljubljana.digitalizacija",
                                  "--format", "json")  # fmt: skip
    first = json.loads(out)[0]
    assert {k: first[k] for k in ("requirement", "needs", "missing", "declared", "people")} == {
        "requirement": "digvar-si",
        "needs": 3,
        "missing": 1,
        "declared": 2,
        "people": [
            {"username": "u037", "reasons": ["declared"]},
            {"username": "u047", "reasons": ["missing"]},
            {"username": "u048", "reasons": ["declared"]},
        ],
    }


def test_saving_again_makes_a_new_version_that_says_what_it_supersedes(
    needs_site: NeedsSite, tmp_path: Path
) -> None:
    # a copy of the ledger: the saved versions of this test do not leak into the others
    ledger = tmp_path / "ledger.sqlite"
    with sqlite3.connect(needs_site.folder / "ledger.sqlite") as source, sqlite3.connect(ledger) as target:
        source.backup(target)
    ledger.chmod(0o600)
    run = lambda *a: needs_site.run("--ledger", str(ledger), *a)  # noqa: E731
    shown = run("needs", "--year", "2027", "--format", "csv")[1].splitlines()[1:]
    people, needs = len({line.split(",")[3] for line in shown}), len(shown)  # what is saved is what is shown
    assert (people, needs) == (54, 63)
    assert run("needs", "--year", "2027", "--save")[:2] == (
        0,
        f"saved the needs analysis of 2027 as version 1: {people} people, {needs} needs "
        "(statuses of 15 Jun 2026)\n",
    )
    assert run("needs", "--year", "2027", "--save")[:2] == (
        0,
        f"saved the needs analysis of 2027 as version 2: {people} people, {needs} needs "
        "(statuses of 15 Jun 2026); "
        "it supersedes version 1 saved 15 Jun 2026 05:00, which is kept\n",
    )
    code, out, _ = run("needs", "--list")
    assert (code, out.splitlines()) == (
        0,
        [
            "year  version  saved              statuses of  people  needs  supersedes",
            "----  -------  -----------------  -----------  ------  -----  ----------",
            "2027        2  15 Jun 2026 05:00  15 Jun 2026      54     63           1",
            "2027        1  15 Jun 2026 05:00  15 Jun 2026      54     63",
        ],
    )


def _copy(site: NeedsSite, tmp_path: Path) -> Path:
    ledger = tmp_path / "ledger.sqlite"
    with sqlite3.connect(site.folder / "ledger.sqlite") as source, sqlite3.connect(ledger) as target:
        source.backup(target)
    ledger.chmod(0o600)
    return ledger


def test_a_needs_file_is_imported_whole(needs_site: NeedsSite, tmp_path: Path) -> None:
    ledger = _copy(needs_site, tmp_path)
    needs_file = tmp_path / "interviews.csv"
    needs_file.write_text(
        "idnumber;area;year;source\nEMP1026;Digitalna varnost / IT bezpečnost;2027;interviews\n"
        "EMP1050;digvar-si;2027;interviews\n",
        encoding="utf-8",
    )
    code, out, err = needs_site.run("--ledger", str(ledger), "needs", "import", str(needs_file))
    assert (code, out, err) == (0, f"imported 2 declared needs of 2 people for 2027 from {needs_file}\n", "")
    code, out, _ = needs_site.run("--ledger", str(ledger), "needs", "--year", "2027", "--format", "csv")
    lines = [line for line in out.splitlines() if ",u026," in line or ",u050," in line]
    assert lines == [
        # u026 (Česká Lípa) named the shared area: it goes to the Czech requirement, the one that applies
        "2027,ceska-lipa.informatika,Odbor informatiky (Městský úřad Česká Lípa),u026,EMP1026,itsec-cz,"
        '"expired, declared",'
        "„IT bezpečnost pro koncové uživatele“,ceska-lipa",
        '2027,ljubljana.kultura,Oddelek za kulturo,u050,EMP1050,digvar-si,"expired, declared",'
        "Digitalna varnost,ljubljana",
    ]


def test_a_needs_file_with_problems_imports_nothing_and_lists_every_line(
    needs_site: NeedsSite, tmp_path: Path
) -> None:
    ledger = _copy(needs_site, tmp_path)
    needs_file = tmp_path / "needs.csv"
    needs_file.write_text(
        "username,area,year\nu001,digvar-si,2027\nu999,digvar-si,2027\nu002,Knitting,2027\nu003,itsec-cz,27\n",
        encoding="utf-8",
    )
    code, out, err = needs_site.run(
        "--ledger", str(ledger), "needs", "import", str(needs_file), "--source", "interviews"
    )
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "error: 3 problems found:",
        f"  - {needs_file}:3: username: no person 'u999' in the ledger",
        f"  - {needs_file}:4: area: 'Knitting' names no requirement (use one of: "
        "Digitalna varnost / IT bezpečnost, Digitalni svetovalec / Digitální poradce, "
        "Umetna inteligenca / Umělá inteligence, ai-ured, digital-advisor, digvar-si, itsec-cz)",
        f"  - {needs_file}:5: year: '27' is not a year (e.g. 2027)",
        "  hint: fix these lines and import the file again; nothing was imported",
    ]
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT COUNT(*) FROM declared_needs WHERE year = 2027").fetchone() == (0,)


def test_a_needs_file_without_a_source_says_how_to_give_one(needs_site: NeedsSite, tmp_path: Path) -> None:
    needs_file = tmp_path / "needs.csv"
    needs_file.write_text("username,area,year\nu001,digvar-si,2027\n", encoding="utf-8")
    code, _, err = needs_site.run(
        "--ledger", str(_copy(needs_site, tmp_path)), "needs", "import", str(needs_file)
    )
    assert (code, err) == (
        2,
        f"error: 1 problem found:\n  - {needs_file}:1: has no source column "
        '(add one, or pass --source "interviews 2027")\n',
    )


def test_erasure_removes_the_declared_and_saved_needs_of_the_person(
    needs_site: NeedsSite, tmp_path: Path
) -> None:
    ledger = _copy(needs_site, tmp_path)
    assert needs_site.run("--ledger", str(ledger), "needs", "--year", "2026", "--save")[0] == 0
    user_id = 3 + 37 - 1  # u037: declared a need and is in the saved analysis
    assert needs_site.run("--ledger", str(ledger), "erase", "u037", "--reason", "test", "--yes")[0] == 0
    with sqlite3.connect(ledger) as db:
        for table in ("declared_needs", "needs_analysis_rows"):
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", [user_id]).fetchone() == (0,)


def test_an_unconfigured_survey_is_a_usage_error(needs_site: NeedsSite, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("fb-token\n", encoding="utf-8")
    (tmp_path / "token").chmod(0o600)
    (tmp_path / "connector.toml").write_text(
        f'[moodle]\nurl = "{needs_site.emulator.url}"\ntoken_file = "token"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(
        main,
        ["--config", str(tmp_path / "connector.toml"), "--ledger", str(_copy(needs_site, tmp_path)),
         "--mappings", str(MAPPINGS), "needs", "survey"],
        obj={"clock": lambda: NOW},
    )  # fmt: skip
    assert (result.exit_code, result.stderr) == (
        2,
        "error: no needs survey configured\n  hint: set [needs] feedback_cmid (the number in the "
        "Feedback's address, view.php?id=N) and feedback_course in connector.toml\n",
    )


def _doctor(folder: Path, url: str, token: str, cmid: int = 1) -> list[str]:
    (folder / "token").write_text(token + "\n", encoding="utf-8")
    (folder / "token").chmod(0o600)
    _config(folder, url, cmid)
    result = CliRunner().invoke(
        main, ["--config", str(folder / "connector.toml"), "--mappings", str(MAPPINGS), "doctor"]
    )
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "needs survey" in line)
    return [str(result.exit_code), *lines[start:-1]]


def test_doctor_checks_the_survey_and_both_capabilities(needs_site: NeedsSite, tmp_path: Path) -> None:
    assert _doctor(tmp_path, needs_site.emulator.url, "fb-token") == [
        "0",
        '[ok  ] needs survey: "Analiza potreb 2026 / Analýza potřeb 2026" (course 1, view.php?id=1): 26',
        "       answers",
    ]
    assert _doctor(tmp_path, needs_site.emulator.url, "fb-no-reports") == [
        "1",
        "[FAIL] needs survey: the token's user may not read the answers of \"Analiza potreb 2026 / Analýza",
        '       potřeb 2026" (course 1, view.php?id=1)',
        "       -> give the token's user mod/feedback:view and mod/feedback:viewreports (with",
        "          moodle/course:view) in its system role (Site administration > Users > Permissions >"
        " Define",
        "          roles); without mod/feedback:view Moodle hides the Feedback without saying so",
    ]


def test_an_anonymous_survey_is_refused_by_doctor(needs_site: NeedsSite, tmp_path: Path) -> None:
    lines = _doctor(tmp_path, needs_site.emulator.url, "fb-token", cmid=2)
    assert lines[:2] == [
        "1",
        '[FAIL] needs survey: Feedback "Analiza potreb 2026 (anonimno) / Analýza potřeb 2026 (anonymně)"',
    ]


def test_the_year_defaults_to_the_clock(needs_site: NeedsSite) -> None:
    assert date(2026, 1, 1) <= NOW.date()
    code, out, _ = needs_site.run("needs", "--department", "ljubljana.digitalizacija")
    assert (code, out.splitlines()[0]) == (0, "Needs analysis 2026 (statuses of the sync of 15 Jun 2026)")


def test_the_demo_ends_with_this_years_needs_analysis(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--mappings", str(MAPPINGS), "demo", "--ledger", str(tmp_path / "d.sqlite")]
    )
    assert result.exit_code == 0, result.output
    today = demo_today()
    year = today.year
    out = result.stdout.splitlines()
    start = out.index(f"Needs analysis {year} (statuses of the sync of {today:%-d %b %Y})")
    assert out[start + 1].split() == [
        "department", "requirement", "needs", "missing", "expired", "expiring", "grace", "declared", "course",
        "to", "take",
    ]  # fmt: skip
    summary = next(line for line in out[start:] if " people need training: " in line)
    assert summary.endswith(" declared)")
    assert out.index(summary) < out.index(
        next(line for line in out if line.startswith(("Due by", "nobody is due")))
    )
    assert (
        f"read 'Analiza potreb {year} / Analýza potřeb {year}': 26 answers, 29 declared needs of 22 people "
        f"for {year}"
    ) in result.stderr.splitlines()


@pytest.mark.parametrize("department", ["jablonec", "ljubljana", "ljubljana.digitalizacija", "ceska-lipa"])
def test_a_departments_needs_are_the_whole_analysis_cut_to_its_subtree(
    needs_site: NeedsSite, tmp_path: Path, department: str
) -> None:
    """A department's needs are read from its people's statuses alone: the same groups, people and
    counts as the whole analysis has for that subtree, also after people moved in or out of it."""
    from connector.mapping import load_mappings
    from connector.reports.views import _department_filter

    subtree = _department_filter(load_mappings(MAPPINGS), department)
    assert subtree
    ledger = _copy(needs_site, tmp_path)
    move_in_and_out(ledger, department, "lucany")
    args = ("--ledger", str(ledger), "needs", "--year", "2026", "--format", "json")
    code, whole, _ = needs_site.run(*args)
    assert code == 0
    code, cut, _ = needs_site.run(*args, "--department", department)
    assert code == 0
    expected = [g for g in json.loads(whole) if g["department"] in subtree]
    assert expected and json.loads(cut) == expected
