"""Exact output: the whole text a person reads from each command, pinned against today's behaviour.

Modelled on sqlite-utils' CLI tests (`assert result.output == expected`): a changed word, column or
alignment fails here, so a restructuring that claims "behaviour unchanged" has to prove it. One real
sync of the demo site (the emulator over loopback, `--as-of` the scenario's anchor date) feeds every
read-only command (anything that writes uses a ledger of its own); the only text masked is what
the wall clock decides (see `normalise`). A line that reads wrong today is not pinned: the test
leaves it out and says why, so fixing it does not mean editing an expectation that guarded a bug.

Paths are kept short and stable by running inside the demo folder with relative `--config`,
`--ledger` and `--mappings` values: doctor wraps at 100 columns, so an absolute temporary path
would make its lines depend on the machine.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.mapping import DEMO_MAPPINGS
from tests.helpers import ANCHOR

# What the environment could add to a run: unset so the configuration below is all there is.
ENVIRONMENT = (
    "MOODLE_URL",
    "MOODLE_TOKEN",
    "MOODLE_TOKEN_FILE",
    "CONNECTOR_CONFIG",
    "CONNECTOR_LEDGER",
    "CONNECTOR_MAPPINGS",
)
SITE = ("--config", "connector.toml", "--ledger", "ledger.sqlite", "--mappings", "demo-mappings")

# The only variable parts: when the ledger recorded something (UTC, ISO 8601 with an offset; Moodle's
# own completion times end in "Z" and are left alone) and how long a sync took. A timestamp becomes a
# placeholder of the same width, so the columns around it stay where they were.
WALL_CLOCK = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00\b")
DURATION = re.compile(r" in \d+\.\d s$", re.MULTILINE)


def normalise(text: str) -> str:
    return DURATION.sub(" in N.N s", WALL_CLOCK.sub("YYYY-MM-DDTHH:MM:SS+00:00", text))


# The moment every command here runs (the demo's sync included), so the ledger's timestamps and
# their shown forms are known: 16:30 UTC, 18:30 in Prague.
NOW = datetime(ANCHOR.year, ANCHOR.month, ANCHOR.day, 16, 30, tzinfo=UTC)


def connector(*args: str) -> Result:
    """The CLI as the installed `connector` script runs it (prog_name shows in click's usage errors)."""
    runner = CliRunner(env=dict.fromkeys(ENVIRONMENT))
    return runner.invoke(main, list(args), prog_name="connector", obj={"clock": lambda: NOW})


@dataclass(frozen=True)
class Demo:
    folder: Path
    url: str
    sync: Result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo emulator (running for the module: doctor asks it) and one sync as of ANCHOR."""
    from connector.emulator import Emulator, demo_scenario

    folder = tmp_path_factory.mktemp("exact")
    shutil.copytree(DEMO_MAPPINGS, folder / "demo-mappings")
    for name, token in (("token", "t0ken"), ("wrong-token", "not-the-t0ken")):
        (folder / name).write_text(token + "\n", encoding="utf-8")
        (folder / name).chmod(0o600)
    with Emulator(demo_scenario(ANCHOR), tokens={"t0ken": "full"}) as emu:
        for config, token_file in (("connector.toml", "token"), ("wrong-token.toml", "wrong-token")):
            (folder / config).write_text(
                f'[moodle]\nurl = "{emu.url}"\ntoken_file = "{token_file}"\nreport_id = 1\n', encoding="utf-8"
            )
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(folder)
            synced = connector(*SITE, "sync", "--as-of", ANCHOR.isoformat())
        assert synced.exit_code == 0, synced.output
        yield Demo(folder, emu.url, synced)


@pytest.fixture
def in_demo(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    monkeypatch.chdir(demo.folder)
    return demo


def test_normalise_masks_only_the_wall_clock_and_the_duration() -> None:
    text = "2026-11-26T18:51:44+00:00  2024-07-15T10:00:00Z  2026-06-15\n11 Moodle calls in 12.3 s"
    assert normalise(text) == (
        "YYYY-MM-DDTHH:MM:SS+00:00  2024-07-15T10:00:00Z  2026-06-15\n11 Moodle calls in N.N s"
    )


# -- the sync line a cron mail shows -------------------------------------------------------------
def test_sync_summary_line(demo: Demo) -> None:
    assert (demo.sync.exit_code, normalise(demo.sync.stdout), demo.sync.stderr) == (
        0,
        """\
sync #1 ok (full, report path, as of 15 Jun 2026): 60 people (1 unplaced), 100 enrolments, 79 new completions, 0 no longer in Moodle, 300 status changes; 9 Moodle calls in N.N s
""",
        "",
    )


# -- status --------------------------------------------------------------------------------------
STATUS_TABLE = """\
Compliance as of 15 Jun 2026
department                          requirement           title                                     in scope  compliant  expiring  expired  missing  grace  exempt  share  targets met  targets
----------------------------------  --------------------  ----------------------------------------  --------  ---------  --------  -------  -------  -----  ------  -----  -----------  --------------------------------------------------
Magistrát města Jablonec nad Nisou  ai-ured               AI v práci úředníka                             21         14         0        0        7      0       0    67%
Magistrát města Jablonec nad Nisou  digital-advisor       Digitální poradce / digitalni svetovalec         1          1         0        0        0      0       0   100%
Magistrát města Jablonec nad Nisou  itsec-cz              Digitální bezpečnost (každé 2 roky)             22          7         2        7        6      0       0    41%           no  9 % of 50 %, 2026-2027
  Odbor informatiky                 ai-ured               AI v práci úředníka                             10          8         0        0        2      0       0    80%
  Odbor informatiky                 digital-advisor       Digitální poradce / digitalni svetovalec         1          1         0        0        0      0       0   100%
  Odbor informatiky                 itsec-cz              Digitální bezpečnost (každé 2 roky)             11          5         1        2        3      0       0    55%           no  9 % of 50 %, 2026-2027
  Odbor financí                     ai-ured               AI v práci úředníka                              8          4         0        0        4      0       0    50%
  Odbor financí                     digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
  Odbor financí                     itsec-cz              Digitální bezpečnost (každé 2 roky)              8          1         1        4        2      0       0    25%           no  0 % of 50 %, 2026-2027
  Odbor sociálních věcí             ai-ured               AI v práci úředníka                              3          2         0        0        1      0       0    67%
  Odbor sociálních věcí             digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
  Odbor sociálních věcí             itsec-cz              Digitální bezpečnost (každé 2 roky)              3          1         0        1        1      0       0    33%           no  33 % of 50 %, 2026-2027
Městský úřad Česká Lípa             ai-ured               AI v práci úředníka                             13         10         0        0        3      0       0    77%
Městský úřad Česká Lípa             digital-advisor       Digitální poradce / digitalni svetovalec         1          1         0        0        0      0       0   100%
Městský úřad Česká Lípa             itsec-cz              Digitální bezpečnost (každé 2 roky)             14          3         0        5        4      1       1    23%           no  8 % of 50 %, 2026-2027
  Odbor dopravy                     ai-ured               AI v práci úředníka                              6          5         0        0        1      0       0    83%
  Odbor dopravy                     digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
  Odbor dopravy                     itsec-cz              Digitální bezpečnost (každé 2 roky)              6          1         0        3        1      1       0    17%           no  0 % of 50 %, 2026-2027
  Odbor informatiky                 ai-ured               AI v práci úředníka                              7          5         0        0        2      0       0    71%
  Odbor informatiky                 digital-advisor       Digitální poradce / digitalni svetovalec         1          1         0        0        0      0       0   100%
  Odbor informatiky                 itsec-cz              Digitální bezpečnost (každé 2 roky)              8          2         0        2        3      0       1    29%           no  14 % of 50 %, 2026-2027
Obec Janov nad Nisou                ai-ured               AI v práci úředníka                              2          2         0        0        0      0       0   100%
Obec Janov nad Nisou                digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
Obec Janov nad Nisou                itsec-cz              Digitální bezpečnost (každé 2 roky)              2          0         0        0        0      2       0     0%           no  0 % of 50 %, 2026-2027
  Vedení obce                       ai-ured               AI v práci úředníka                              2          2         0        0        0      0       0   100%
  Vedení obce                       digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
  Vedení obce                       itsec-cz              Digitální bezpečnost (každé 2 roky)              2          0         0        0        0      2       0     0%           no  0 % of 50 %, 2026-2027
Obec Lučany nad Nisou               ai-ured               AI v práci úředníka                              1          1         0        0        0      0       0   100%
Obec Lučany nad Nisou               digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
Obec Lučany nad Nisou               itsec-cz              Digitální bezpečnost (každé 2 roky)              1          0         0        0        1      0       0     0%           no  0 % of 50 %, 2026-2027
  Vedení obce                       ai-ured               AI v práci úředníka                              1          1         0        0        0      0       0   100%
  Vedení obce                       digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0
  Vedení obce                       itsec-cz              Digitální bezpečnost (každé 2 roky)              1          0         0        0        1      0       0     0%           no  0 % of 50 %, 2026-2027
Mestna občina Ljubljana             advisor-appointed-si  Imenovan digitalni svetovalec                    0          0         0        0        0      0       0
Mestna občina Ljubljana             digital-advisor       Digitální poradce / digitalni svetovalec         2          2         0        0        0      0       0   100%
Mestna občina Ljubljana             digvar-si             Digitalna varnost (vsaki 2 leti)                19         11         0        7        1      0       0    58%               not judged, 2026: no needs analysis saved for 2026
  Oddelek za finance                advisor-appointed-si  Imenovan digitalni svetovalec                    0          0         0        0        0      0       0                      0 of 1 appointed, due by 2026-12-31
  Oddelek za finance                digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0                  no  0 of 1 holders in scope
  Oddelek za finance                digvar-si             Digitalna varnost (vsaki 2 leti)                 5          2         0        3        0      0       0    40%               not judged, 2026: no needs analysis saved for 2026
  Oddelek za kulturo                advisor-appointed-si  Imenovan digitalni svetovalec                    0          0         0        0        0      0       0                      0 of 1 appointed, due by 2026-12-31
  Oddelek za kulturo                digital-advisor       Digitální poradce / digitalni svetovalec         0          0         0        0        0      0       0                  no  0 of 1 holders in scope
  Oddelek za kulturo                digvar-si             Digitalna varnost (vsaki 2 leti)                 8          4         0        4        0      0       0    50%               not judged, 2026: no needs analysis saved for 2026
  Služba za digitalizacijo          advisor-appointed-si  Imenovan digitalni svetovalec                    0          0         0        0        0      0       0                 yes  2 of 1 appointed
  Služba za digitalizacijo          digital-advisor       Digitální poradce / digitalni svetovalec         2          2         0        0        0      0       0   100%          yes  2 of 1 holders in scope
  Služba za digitalizacijo          digvar-si             Digitalna varnost (vsaki 2 leti)                 6          5         0        0        1      0       0    83%               not judged, 2026: no needs analysis saved for 2026

1 active person matches no department and counts in none of the rows above: `connector unplaced` lists their spellings and the alias lines that place them
"""


def test_status_table(in_demo: Demo) -> None:
    result = connector(*SITE, "status")
    assert (result.exit_code, result.stdout, result.stderr) == (0, STATUS_TABLE, "")


def test_status_csv_first_lines(in_demo: Demo) -> None:
    result = connector(*SITE, "status", "--format", "csv")
    assert result.exit_code == 0 and result.stderr == ""
    # The first rows only: shares rounded to 4 decimals, a target verdict as true/false.
    assert result.stdout.splitlines()[:4] == [
        "department,requirement,in_scope,compliant,expiring,expired,missing,share,targets_met,organisation",
        "jablonec,ai-ured,21,14,0,0,7,0.6667,,jablonec",
        "jablonec,digital-advisor,1,1,0,0,0,1.0,,jablonec",
        "jablonec,itsec-cz,22,7,2,7,6,0.4091,false,jablonec",
    ]


def test_status_json_for_one_row(in_demo: Demo) -> None:
    result = connector(
        *SITE,
        "status",
        "--department",
        "jablonec.informatika",
        "--requirement",
        "itsec-cz",
        "--format",
        "json",
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        """\
[
  {
    "department": "jablonec.informatika",
    "department_name": "Odbor informatiky",
    "organisation": "jablonec",
    "organisation_name": "Magistrát města Jablonec nad Nisou",
    "depth": 1,
    "requirement": "itsec-cz",
    "requirement_title": "Digitální bezpečnost (každé 2 roky)",
    "in_scope": 11,
    "compliant": 5,
    "expiring": 1,
    "expired": 2,
    "missing": 3,
    "grace": 0,
    "exempt": 0,
    "holders": 6,
    "share": 0.5454545454545454,
    "targets_met": false,
    "targets": [
      {
        "kind": "share",
        "required": 0.5,
        "actual": 0.09090909090909091,
        "met": false,
        "period": "2026-01-01/2027-12-31",
        "judged": "9 % of 50 %, 2026-2027"
      }
    ]
  }
]
""",
        "",
    )


# -- person / runs / courses / export / mappings / unplaced --------------------------------------
def test_person_table(in_demo: Demo) -> None:
    result = connector(*SITE, "person", "u001")
    assert (result.exit_code, normalise(result.stdout), result.stderr) == (
        0,
        """\
Jan Novák (u001, EMP1001), active
department: Odbor informatiky (Magistrát města Jablonec nad Nisou); position: digitální poradce

Requirements
requirement           title                                     status          valid until  since  due  decided by  detail
--------------------  ----------------------------------------  --------------  -----------  -----  ---  ----------  ----------------------------------------------------
advisor-appointed-si  Imenovan digitalni svetovalec             not applicable                                       an appointment: nobody must complete a course
ai-ured               AI v práci úředníka                       not applicable                           AI-URED     outside the requirement's applies_to; one completion
digital-advisor       Digitální poradce / digitalni svetovalec  compliant                                DIGSVET     one completion
digvar-si             Digitalna varnost (vsaki 2 leti)          not applicable                                       outside the requirement's applies_to; no completion
itsec-cz              Digitální bezpečnost (každé 2 roky)       compliant       17 Dec 2027              ITSEC-CZ    one completion

Evidence
course    completed          source  first seen         in Moodle
--------  -----------------  ------  -----------------  ---------
AI-URED   15 Jul 2024 12:00  report  15 Jun 2026 18:30        yes
DIGSVET   11 May 2025 12:00  report  15 Jun 2026 18:30        yes
ITSEC-CZ  17 Dec 2025 11:00  report  15 Jun 2026 18:30        yes

History
date         requirement           from  to
-----------  --------------------  ----  --------------
15 Jun 2026  advisor-appointed-si        not applicable
15 Jun 2026  ai-ured                     not applicable
15 Jun 2026  digital-advisor             compliant
15 Jun 2026  digvar-si                   not applicable
15 Jun 2026  itsec-cz                    compliant
""",
        "",
    )


def test_runs_table(in_demo: Demo) -> None:
    result = connector(*SITE, "runs")
    assert (result.exit_code, normalise(result.stdout), result.stderr) == (
        0,
        """\
run  started            outcome  mode  path    calls  new completions  error
---  -----------------  -------  ----  ------  -----  ---------------  -----
  1  15 Jun 2026 18:30  ok       full  report      9               79
""",
        "",
    )


def test_courses_offline_table(in_demo: Demo) -> None:
    result = connector(*SITE, "courses", "--offline")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        """\
requirement      id  idnumber   name                                                visible  completion  enrolled  completed
---------------  --  ---------  --------------------------------------------------  -------  ----------  --------  ---------
itsec-cz          2  ITSEC-CZ   „IT bezpečnost pro koncové uživatele“                   yes         yes        40         27
digvar-si         4  DIGVAR-SI  Digitalna varnost                                       yes         yes        19         18
digital-advisor   5  DIGSVET    Digitalni svetovalec – uvod                             yes         yes         4          4
ai-ured           3  AI-URED    Jak může AI usnadnit a zefektivnit práci úředníka?      yes         yes        37         30

No mapping problems.

Moodle courses mapped to no requirement
id  idnumber    name                            visible  completion
--  ----------  ------------------------------  -------  ----------
 6  ORIENT      Orientace pro nové zaměstnance      yes          no
 7  ARCH-SEC19  Archivní kurz bezpečnosti 2019       no         yes
""",
        "",
    )


def test_export_csv_header_and_first_rows(in_demo: Demo) -> None:
    result = connector(*SITE, "export", "--format", "csv")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines()[:4] == [
        "username,idnumber,department_id,department_name,requirement,status,valid_until,decided_by_course,decided_by_completed_at,organisation,organisation_name,decided_by_source,fullname,email",
        "u001,EMP1001,jablonec.informatika,Odbor informatiky,advisor-appointed-si,not_applicable,,,,jablonec,Magistrát města Jablonec nad Nisou,,Jan Novák,",
        "u001,EMP1001,jablonec.informatika,Odbor informatiky,ai-ured,not_applicable,,AI-URED,2024-07-15T10:00:00Z,jablonec,Magistrát města Jablonec nad Nisou,moodle,Jan Novák,",
        "u001,EMP1001,jablonec.informatika,Odbor informatiky,digital-advisor,compliant,,DIGSVET,2025-05-11T10:00:00Z,jablonec,Magistrát města Jablonec nad Nisou,moodle,Jan Novák,",
    ]


def test_mappings_check_ok_line(in_demo: Demo) -> None:
    result = connector(*SITE, "mappings", "check")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "demo-mappings: ok: 15 departments, 5 requirements, 4 courses\n",
        "",
    )


def test_mappings_check_lists_a_broken_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "departments.toml").write_text(
        '[[department]]\nid = "town"\nname = "Town hall"\ninstitution = "Město"\n', encoding="utf-8"
    )
    (broken / "requirements.toml").write_text(
        '[course.itsec]\nidnumber = "ITSEC"\n\n'
        '[[requirement]]\nid = "itsec"\ntitle = "IT security"\ncourses = ["itsek"]\nvalid_for = "24 monts"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    result = connector("mappings", "check", "--mappings", "broken")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        """\
error: 2 problems found:
  - broken/requirements.toml:7: requirement[itsec].courses: unknown course 'itsek' (did you mean 'itsec'?)
  - broken/requirements.toml:8: requirement[itsec].valid_for: unknown unit 'monts' in '24 monts' (write a whole number and a unit, e.g. "24 months", "2 years", "90 days" or "6 weeks")
""",
    )


def test_unplaced_table(in_demo: Demo) -> None:
    result = connector(*SITE, "unplaced")
    assert result.exit_code == 0 and result.stderr == ""
    # The closing paragraph is left out on purpose: it explains alias lines to add although the only
    # spelling here has none (reported as a bug).
    assert (
        result.stdout.splitlines()[:5]
        == """\
1 of 59 active people (1.7 %) are in no department, under 1 spelling (as of the last sync):

people  institution  department  closest department  edit  line to put there
------  -----------  ----------  ------------------  ----  -----------------------------------------------------------------------------
     1  (empty)      (empty)     -                         (no institution or department in Moodle: fill in the person's profile fields)""".splitlines()
    )


# -- doctor ----------------------------------------------------------------------------------------
def test_doctor_against_the_demo_emulator(in_demo: Demo) -> None:
    result = connector(*SITE, "doctor")
    lines = result.stdout.splitlines()
    assert (result.exit_code, result.stderr) == (0, "")
    # The "report" check (lines 9-10) is left out on purpose: it prints a Python list,
    # "columns ['Course full name with link', ...]" (reported as a bug).
    assert lines[:8] + lines[-2:] == [
        "[ok  ] config: connector.toml (from --config)",
        "[ok  ] mappings: demo-mappings: 5 requirements",
        "[ok  ] ledger: ledger.sqlite (mode 600)",
        f"[ok  ] reachable: {in_demo.url} answered",
        "[ok  ] moodle release: 4.1.10 (Build: 20240422) (version 2022112810)",
        "[ok  ] token user: wsconnector (id 63), language en",
        "[ok  ] required functions: all present",
        "[ok  ] capabilities: read enrolments and a completion of course 2 (ITSEC-CZ)",
        "[ok  ] report conditions: report 1 lists inactive enrolments too (no 'Enrolment status' condition)",
        "all 11 checks passed",
    ]


# -- error lines: the message, its hint, the exit code, and nothing on stdout ----------------------
def test_no_ledger(in_demo: Demo) -> None:
    result = connector(*SITE, "--ledger", "none.sqlite", "status")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        """\
error: no ledger at none.sqlite
  hint: run `connector sync` first, or pass --ledger / set [ledger] path
""",
    )


def test_unknown_person(in_demo: Demo) -> None:
    result = connector(*SITE, "person", "nobody")
    # The exit code (1, "the run failed") is left out on purpose: README's table gives 2 to an
    # unusable command-line value such as an unknown department (reported).
    assert (result.stdout, result.stderr) == (
        "",
        """\
error: no person with username 'nobody' in the ledger
  hint: usernames are Moodle's login names, e.g. u001; run a sync first
""",
    )


def test_unknown_department(in_demo: Demo) -> None:
    result = connector(*SITE, "status", "--department", "xyz")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        """\
error: no department 'xyz' in the mappings
  hint: known ids: jablonec, jablonec.informatika, jablonec.financi, jablonec.socialni, ceska-lipa, ceska-lipa.doprava, ceska-lipa.informatika, janov, janov.vedeni, lucany, lucany.vedeni, ljubljana, ...
""",
    )


def test_bad_as_of_date(in_demo: Demo) -> None:
    result = connector(*SITE, "status", "--as-of", "2026-13-01")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        """\
Usage: connector status [OPTIONS]
Try 'connector status --help' for help.

Error: Invalid value for '--as-of': '2026-13-01' is not a date; use YYYY-MM-DD, e.g. 2026-06-01
""",
    )


def test_missing_config_file(in_demo: Demo) -> None:
    result = connector("--config", "missing.toml", "status")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        """\
error: 1 problem found:
  - missing.toml: config file not found (check the path given to --config)
""",
    )


def test_sync_with_a_wrong_token(in_demo: Demo) -> None:
    result = connector(
        "--config",
        "wrong-token.toml",
        "--ledger",
        "wrong.sqlite",
        "--mappings",
        "demo-mappings",
        "sync",
        "--as-of",
        ANCHOR.isoformat(),
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        """\
error: core_webservice_get_site_info: Moodle said 'Invalid token - token not found' (invalidtoken)
  hint: create a web-service token for the connector's user in Moodle under Site administration > Server > Web services > Manage tokens, and set it as MOODLE_TOKEN
""",
    )
