"""What a person reads: exact lines for the rough edges of issue 8 (doctor, busy port, aborted
prompt, exit codes, the demo's hint, unplaced people, --as-of before the first sync, departments
with the same name in two organisations)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import connector.config
from connector.cli import main
from connector.cli.output import Written
from connector.doctor import Check, format_check
from connector.mapping import DEMO_MAPPINGS
from tests.helpers import ANCHOR, synced_demo_ledger

M = str(DEMO_MAPPINGS)


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_demo_ledger(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def own_ledger(demo_ledger: Path, tmp_path: Path) -> Path:
    """A private copy of the demo ledger for a test that writes."""
    copy = tmp_path / "demo.sqlite"
    shutil.copyfile(demo_ledger, copy)
    copy.chmod(0o600)
    return copy


# -- c. erase ------------------------------------------------------------------------------------
def test_erase_answered_no_erases_nothing_and_says_so(own_ledger: Path) -> None:
    code, out, err = run(
        "--ledger",
        str(own_ledger),
        "--mappings",
        M,
        "erase",
        "u001",
        "--reason",
        "GDPR request 17",
        input="n\n",
    )
    assert (code, err.splitlines()[-1]) == (1, "aborted: nothing was erased")
    assert "internal error" not in out + err
    code, out, _ = run("--ledger", str(own_ledger), "--mappings", M, "person", "u001", "--format", "json")
    assert code == 0 and '"username": "u001"' in out


@pytest.mark.parametrize("reason", ["", "   "])
def test_erase_refuses_an_empty_reason(own_ledger: Path, reason: str) -> None:
    code, out, err = run(
        "--ledger", str(own_ledger), "--mappings", M, "erase", "u001", "--reason", reason, "--yes"
    )
    assert code == 2
    assert err.splitlines() == [
        "error: --reason is empty: say why this person's data is erased",
        '  hint: e.g. --reason "GDPR request 2026-17"; it is kept in the erasures table as the '
        "record of why the data went",
    ]


def test_erase_with_a_reason_still_erases(own_ledger: Path) -> None:
    code, out, _ = run(
        "--ledger",
        str(own_ledger),
        "--mappings",
        M,
        "erase",
        "u001",
        "--reason",
        "GDPR request 17",
        input="y\n",
    )
    assert code == 0 and out.splitlines()[-2].startswith("erased ")  # then what it means for later syncs


# -- b. emulator on a busy port --------------------------------------------------------------------
def test_emulator_on_a_busy_port_is_one_clean_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run("emulator", "--port", str(port))
    assert code == 2
    assert err.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use",
        "  hint: pass --port 0 for any free port, or another port",
    ]
    assert out == ""


# -- a. doctor -----------------------------------------------------------------------------------
@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in (
        "MOODLE_URL",
        "MOODLE_TOKEN",
        "MOODLE_TOKEN_FILE",
        "CONNECTOR_CONFIG",
        "CONNECTOR_LEDGER",
        "CONNECTOR_MAPPINGS",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_doctor_in_an_empty_directory_lists_every_problem_on_its_own_lines(empty_dir: Path) -> None:
    code, out, err = run("doctor")
    assert out.splitlines() == [
        *format_check(
            Check(
                "config",
                True,
                "no config file found (looked for connector.toml, "
                f"{os.environ['XDG_CONFIG_HOME']}/connector/connector.toml, "
                f"{connector.config.SYSTEM_CONFIG}); defaults and environment in use",
            )
        ),
        "[FAIL] mappings: 1 problem",
        "       - mappings: the directory does not exist",
        "         hint: set [mappings] dir in connector.toml, or CONNECTOR_MAPPINGS, or run",
        "               `connector --mappings DIR <command>`",
        "       -> run `connector mappings check --mappings mappings` for every problem",
        "[ok  ] ledger: compliance.sqlite does not exist yet; the first sync creates it (mode 0600)",
        "[FAIL] moodle settings: 2 problems",
        "       - environment: moodle.url: no Moodle URL configured",
        "         hint: set [moodle] url in connector.toml or the MOODLE_URL environment variable",
        "       - environment: moodle.token_file: no web-service token configured",
        "         hint: put the token in a file readable only by the connector's user and set [moodle]",
        "               token_file or MOODLE_TOKEN_FILE (or MOODLE_TOKEN)",
        "2 of 4 checks failed: mappings, moodle settings",
    ]
    assert (code, err) == (2, "")  # configuration problems: exit 2, as the README promises


def test_doctor_with_a_working_setup_says_all_passed(demo_ledger: Path, empty_dir: Path) -> None:

    from connector.emulator import Emulator, demo_scenario

    (empty_dir / "token").write_text("t0ken\n", encoding="utf-8")
    (empty_dir / "token").chmod(0o600)  # a working setup keeps its token private
    with Emulator(demo_scenario(ANCHOR), tokens={"t0ken": "full"}) as emu:
        (empty_dir / "connector.toml").write_text(
            f'[moodle]\nurl = "{emu.url}"\ntoken_file = "token"\n[ledger]\npath = "{demo_ledger}"\n'
            f'[mappings]\ndir = "{M}"\n',
            encoding="utf-8",
        )
        code, out, _ = run("doctor")
    assert code == 0, out
    assert out.splitlines()[-1] == f"all {len(out.splitlines()) - 1} checks passed"
    assert all(line.startswith(("[ok  ] ", "       ")) for line in out.splitlines()[:-1])


# -- d. exit codes ---------------------------------------------------------------------------------
def test_a_missing_ca_bundle_is_a_configuration_error(empty_dir: Path) -> None:
    (empty_dir / "token").write_text("t0ken\n", encoding="utf-8")
    (empty_dir / "connector.toml").write_text(
        '[moodle]\nurl = "https://moodle.example.org"\ntoken_file = "token"\nca_bundle = "ca.pem"\n',
        encoding="utf-8",
    )
    code, _, err = run("--mappings", M, "sync")
    assert code == 2
    assert err.splitlines() == [
        "error: 1 problem found:",
        f"  - connector.toml: moodle.ca_bundle: no CA certificate file at {empty_dir.resolve() / 'ca.pem'} "
        "(give the path of the PEM file holding the site's CA certificate)",
    ]
    assert not (empty_dir / "compliance.sqlite").exists()


def test_an_unknown_department_or_requirement_is_a_usage_error(demo_ledger: Path) -> None:
    code, _, err = run("--ledger", str(demo_ledger), "--mappings", M, "status", "--requirement", "fire")
    assert code == 2
    assert err.splitlines() == [
        "error: no requirement 'fire' in the mappings",
        "  hint: known: itsec-cz, digvar-si, advisor-appointed-si, digital-advisor, ai-ured",
    ]
    code, _, err = run("--ledger", str(demo_ledger), "--mappings", M, "status", "--department", "nope")
    assert code == 2 and err.splitlines()[0] == "error: no department 'nope' in the mappings"


def test_export_offers_only_the_formats_it_writes(demo_ledger: Path) -> None:
    code, out, _ = run("export", "--help")
    assert "  --format [csv|json|xlsx]    Output format.  [default: csv]" in out.splitlines()
    code, _, err = run("--ledger", str(demo_ledger), "--mappings", M, "export", "--format", "table")
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: Invalid value for '--format': 'table' is not one of 'csv', 'json', 'xlsx'."
    )


# -- e. the demo's hint ----------------------------------------------------------------------------
def _connector_argv(argv: list[str]) -> list[str]:
    """The printed command as a shell would run it: `connector` from this environment's bin folder."""
    assert argv[0] == "connector"
    script = Path(sys.executable).parent / "connector"
    return [str(script), *argv[1:]] if script.exists() else [sys.executable, "-m", "connector.cli", *argv[1:]]


@pytest.mark.slow
def test_the_demo_hint_runs_as_printed_from_the_root_folder(empty_dir: Path) -> None:
    code, _, err = run("demo", "--ledger", "kept demo.sqlite")  # relative, with a space
    assert code == 0, err
    ledger = empty_dir.resolve() / "kept demo.sqlite"
    expected = (
        f"ledger kept at {ledger}; try: connector --ledger '{ledger}' --mappings {DEMO_MAPPINGS} "
        "person u001 (or status, export, runs, unplaced)"
    )
    assert err.splitlines()[-1] == expected
    command = expected.split("try: ", 1)[1].split(" (or ", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "MOODLE_"))}
    done = subprocess.run(
        _connector_argv(shlex.split(command)), cwd="/", env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "Jan Novák (u001, EMP1001), active"


def test_a_temporary_demo_says_how_to_keep_one(empty_dir: Path) -> None:
    code, _, err = run("demo")
    assert code == 0
    assert err.splitlines()[-1] == (
        "the ledger was temporary; keep one to explore: connector demo --ledger "
        "demo.sqlite (it then prints the commands to explore it)"
    )


# -- g. --as-of before the first sync --------------------------------------------------------------
@pytest.mark.parametrize("command", [["status"], ["export"], ["status", "--format", "json"]])
def test_as_of_before_the_first_sync_says_so(demo_ledger: Path, command: list[str]) -> None:
    first = json.loads(run("--ledger", str(demo_ledger), "runs", "--format", "json")[1])[-1]["as_of"]
    code, out, err = run("--ledger", str(demo_ledger), "--mappings", M, *command, "--as-of", "2025-06-01")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"error: the ledger knows nothing before its first sync on {first}; "
        "--as-of must be on or after that day"
    ]
    code, out, _ = run("--ledger", str(demo_ledger), "--mappings", M, *command, "--as-of", first)
    assert code == 0 and out


# -- h. departments with the same name in two organisations -----------------------------------------
def test_an_ambiguous_department_name_shows_each_with_its_organisation(demo_ledger: Path) -> None:
    code, out, err = run(
        "--ledger", str(demo_ledger), "--mappings", M, "status", "--department", "Odbor informatiky"
    )
    assert code == 0
    assert err.splitlines() == [
        "note: 2 departments are named 'Odbor informatiky' (jablonec.informatika, "
        "ceska-lipa.informatika); showing them all; pass an id to see one"
    ]
    assert [line.rstrip() for line in out.splitlines()[:9]] == [
        "Compliance as of 15 Jun 2026",
        "department                                              requirement      title                 "
        "                    in scope  compliant  expiring  expired  missing  grace  exempt  share  "
        "targets met  targets",
        "------------------------------------------------------  ---------------  "
        "----------------------------------------  --------  ---------  --------  -------  -------  "
        "-----  ------  -----  -----------  -----------------------",
        "Odbor informatiky (Magistrát města Jablonec nad Nisou)  ai-ured          AI v práci úředníka   "
        "                          10          8         0        0        2      0       0    80%",
        "Odbor informatiky (Magistrát města Jablonec nad Nisou)  digital-advisor  "
        "Digitální poradce / digitalni svetovalec         1          1         0        0        0      "
        "0       0   100%",
        "Odbor informatiky (Magistrát města Jablonec nad Nisou)  itsec-cz         "
        "Digitální bezpečnost (každé 2 roky)             11          5         1        2        3      "
        "0       0    55%           no  9 % of 50 %, 2026-2027",
        "Odbor informatiky (Městský úřad Česká Lípa)             ai-ured          AI v práci úředníka   "
        "                           7          5         0        0        2      0       0    71%",
        "Odbor informatiky (Městský úřad Česká Lípa)             digital-advisor  "
        "Digitální poradce / digitalni svetovalec         1          1         0        0        0      "
        "0       0   100%",
        "Odbor informatiky (Městský úřad Česká Lípa)             itsec-cz         "
        "Digitální bezpečnost (každé 2 roky)              8          2         0        2        3      "
        "0       1    29%           no  14 % of 50 %, 2026-2027",
    ]


def test_one_department_by_id_needs_no_note_and_the_whole_tree_keeps_plain_names(demo_ledger: Path) -> None:
    code, out, err = run(
        "--ledger", str(demo_ledger), "--mappings", M, "status", "--department", "jablonec.informatika"
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[3].startswith("Odbor informatiky (Magistrát města Jablonec nad Nisou)  ai-ured")
    code, out, _ = run("--ledger", str(demo_ledger), "--mappings", M, "status")
    names = [line[:36].rstrip() for line in out.splitlines()[3:]]
    assert "  Odbor informatiky" in names and not any("(" in name for name in names)  # under its town


def test_csv_json_and_person_name_the_organisation(demo_ledger: Path) -> None:
    code, out, _ = run(
        "--ledger",
        str(demo_ledger),
        "--mappings",
        M,
        "status",
        "--department",
        "Odbor informatiky",
        "--format",
        "csv",
    )
    lines = out.splitlines()
    assert lines[0] == (
        "department,requirement,in_scope,compliant,expiring,expired,missing,share,targets_met,organisation"
    )
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["jablonec"] * 3 + ["ceska-lipa"] * 3
    code, out, _ = run(
        "--ledger",
        str(demo_ledger),
        "--mappings",
        M,
        "status",
        "--department",
        "ceska-lipa.informatika",
        "--format",
        "json",
    )
    row = json.loads(out)[0]
    assert (row["organisation"], row["organisation_name"]) == ("ceska-lipa", "Městský úřad Česká Lípa")
    code, out, _ = run("--ledger", str(demo_ledger), "--mappings", M, "export")
    assert out.splitlines()[0] == (
        "username,idnumber,department_id,department_name,requirement,status,"
        "valid_until,decided_by_course,decided_by_completed_at,organisation,"
        "organisation_name,decided_by_source,fullname,email"
    )
    code, out, _ = run("--ledger", str(demo_ledger), "--mappings", M, "person", "u001")
    assert out.splitlines()[1] == (
        "department: Odbor informatiky (Magistrát města Jablonec nad Nisou); position: digitální poradce"
    )


# -- f. unplaced people ------------------------------------------------------------------------------
@pytest.fixture
def unplaced_site(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """The demo site with mappings that forget two spellings people use: Jablonec's "MM Jablonec n. N."
    (one person) and Ljubljana's "Oddelek za finance" (renamed). Yields the mappings folder and the
    global options for the CLI (config pointing at the running emulator, ledger, mappings)."""
    from connector.emulator import Emulator, demo_scenario

    mappings = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, mappings)
    cz, si = mappings / "departments-cz.toml", mappings / "departments-si.toml"
    cz.write_text(
        cz.read_text(encoding="utf-8").replace(
            'institution_aliases = ["MM Jablonec n. N.", ', "institution_aliases = ["
        ),
        encoding="utf-8",
    )
    si.write_text(
        si.read_text(encoding="utf-8").replace(
            'department = "Oddelek za finance"\n', 'department = "Oddelek za finance in proračun"\n'
        ),
        encoding="utf-8",
    )
    (tmp_path / "token").write_text("t0ken\n", encoding="utf-8")
    with Emulator(demo_scenario(ANCHOR), tokens={"t0ken": "full"}) as emu:
        (tmp_path / "connector.toml").write_text(
            f'[moodle]\nurl = "{emu.url}"\ntoken_file = "token"\nreport_id = 1\n', encoding="utf-8"
        )
        yield (
            mappings,
            [
                "--config",
                str(tmp_path / "connector.toml"),
                "--ledger",
                str(tmp_path / "ledger.sqlite"),
                "--mappings",
                str(mappings),
            ],
        )


def _apply(mappings: Path, file: str, entry: str, line: str) -> None:
    """Put a printed line into the [[department]] entry with that id, as a person would."""
    path = mappings / file
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(f'id = "{entry}"')
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    key = line.split(" = ", 1)[0]
    same = [i for i in range(start, end) if lines[i].startswith(key + " ")]
    if same:
        lines[same[0]] = line
    else:
        lines.insert(start + 1, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_sync_leaving_many_unplaced_warns_and_unplaced_says_what_to_add(
    unplaced_site: tuple[Path, list[str]],
) -> None:
    mappings, options = unplaced_site
    code, _, err = run(*options, "sync", "--quiet", "--as-of", ANCHOR.isoformat())
    assert code == 0, err
    assert err.splitlines() == [
        "warning: 7 of 59 active people (12 %) are in no department (more than [sync] max_unplaced = 5 %); "
        "run `connector unplaced` for their spellings and the alias lines that place them"
    ]
    code, out, _ = run(*options, "unplaced")
    assert code == 0
    assert [line.rstrip() for line in out.splitlines()] == [
        "7 of 59 active people (12 %) are in no department, under 3 spellings (as of the last sync):",
        "",
        "people  institution              department          closest department    edit                  "
        "                         line to put there",
        "------  -----------------------  ------------------  --------------------  ----------------------"
        "-----------------------  ------------------------------------------------------------------------"
        "------------------",
        "     5  mestna občina ljubljana  oddelek za finance  ljubljana.finance     departments-si.toml, "
        'id = "ljubljana.finance"  department_aliases = ["oddelek za finance"]',
        "     1  (empty)                  (empty)             -                                           "
        "                         (no institution or department in Moodle: fill in the person's profile "
        "fields)",
        "     1  mm jablonec n. n.        odbor informatiky   jablonec.informatika  departments-cz.toml, "
        'id = "jablonec"           institution_aliases = ["MM Jablonec nad Nisou", "Magistrát Jablonec", '
        '"mm jablonec n. n."]',
        "",
        f"Each line goes in the [[department]] entry with that id in {mappings}, replacing its line of "
        "the same key; then `connector mappings check` and the next sync places these people.",
    ]
    code, out, _ = run(*options, "unplaced", "--format", "csv")
    assert out.splitlines() == [
        "people,institution,department,closest,file,entry,line,note",
        f"5,mestna občina ljubljana,oddelek za finance,ljubljana.finance,{mappings / 'departments-si.toml'},"
        'ljubljana.finance,"department_aliases = [""oddelek za finance""]",',
        "1,,,,,,,no institution or department in Moodle: fill in the person's profile fields",
        f"1,mm jablonec n. n.,odbor informatiky,jablonec.informatika,{mappings / 'departments-cz.toml'},"
        'jablonec,"institution_aliases = [""MM Jablonec nad Nisou"", ""Magistrát Jablonec"", '
        '""mm jablonec n. n.""]",',
    ]

    # The printed lines, put where they say, place everyone who has a spelling.
    code, out, _ = run(*options, "unplaced", "--format", "json")
    for spelling in json.loads(out):
        for fix in spelling["fixes"]:
            _apply(mappings, Path(fix["file"]).name, fix["entry"], fix["line"])
    assert run(*options, "mappings", "check")[0] == 0
    code, _, err = run(*options, "sync", "--quiet", "--as-of", ANCHOR.isoformat())
    assert (code, err) == (0, "")  # 1 of 59 is under 5 %: no warning
    code, out, _ = run(*options, "unplaced", "--format", "json")
    assert [(s["people"], s["institution"], s["department"]) for s in json.loads(out)] == [(1, "", "")]


def test_max_unplaced_is_configurable(unplaced_site: tuple[Path, list[str]]) -> None:
    _, options = unplaced_site
    config = Path(options[1])
    config.write_text(
        config.read_text(encoding="utf-8") + '[sync]\nmax_unplaced = "12,5 %"\n', encoding="utf-8"
    )
    code, _, err = run(*options, "sync", "--quiet", "--as-of", ANCHOR.isoformat())
    assert (code, err) == (0, "")  # 7 of 59 is 11.9 %
    config.write_text(config.read_text(encoding="utf-8").replace('"12,5 %"', '"lots"'), encoding="utf-8")
    code, _, err = run(*options, "sync", "--quiet")
    assert code == 2
    assert err.splitlines() == [
        "error: 1 problem found:",
        f"  - {config}: sync.max_unplaced: 'lots' is not a share; write it like \"5 %\"",
    ]


@pytest.mark.parametrize(
    ("text", "share"), [("5 %", 0.05), ("12,5%", 0.125), (0.05, 0.05), ("0 %", 0.0), (1, 1.0)]
)
def test_shares_are_read_as_people_write_them(text: str | float, share: float) -> None:
    from connector.shares import parse_share

    assert parse_share(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["5", "150 %", 5, True, "-1 %"])
def test_a_share_out_of_range_or_without_percent_is_refused(text: str | float) -> None:
    from connector.shares import parse_share

    with pytest.raises(ValueError):
        parse_share(text)


@pytest.mark.parametrize(
    ("share", "text"),
    [(1.0, "100 %"), (7 / 59, "12 %"), (1 / 300, "0.3 %"), (0.05, "5 %"), (0.07, "7 %"), (0.0, "0 %")],
)
def test_shares_are_printed_in_whole_percents_above_ten(share: float, text: str) -> None:
    from connector.shares import format_share

    assert format_share(share) == text


def _progress_every(monkeypatch: pytest.MonkeyPatch, rows: int, *, terminal: bool = True) -> None:
    """``Written`` shows its count every ``rows`` rows, with stderr a terminal or not."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    monkeypatch.setattr(Written, "EVERY", rows)


def test_a_long_write_counts_its_rows_and_shows_the_count_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from connector.i18n import set_language

    _progress_every(monkeypatch, 2)
    set_language("cs")
    try:
        rows = Written(iter("abcde"), Path("/srv/hr/due.csv"), 5)
        assert (list(rows), rows.count) == (list("abcde"), 5)
    finally:
        set_language("en")
    first = "zápis do due.csv         [############..................] 2/5"
    second = "zápis do due.csv         [########################......] 4/5"
    assert capsys.readouterr().err == f"\r{first}\r{second}\r{' ' * len(second)}\r"


def test_a_write_to_a_file_that_is_not_a_terminal_shows_no_progress(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    _progress_every(monkeypatch, 1, terminal=False)
    rows = Written(range(3), Path("export.csv"))
    assert (list(rows), rows.count, capsys.readouterr().err) == ([0, 1, 2], 3, "")


def test_a_write_that_fails_clears_its_progress_line_first(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    def rows() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk full")

    _progress_every(monkeypatch, 1)
    with pytest.raises(OSError):
        list(Written(rows(), Path("export.csv")))
    line = "writing export.csv       2"
    assert capsys.readouterr().err == f"\rwriting export.csv       1\r{line}\r{' ' * len(line)}\r"


def test_a_write_whose_consumer_fails_clears_its_progress_line_before_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The writer may fail (a full disk, a sheet too long) while the rows are still coming."""

    _progress_every(monkeypatch, 1)
    with pytest.raises(OSError), Written(iter(range(9)), Path("due.xlsx"), 9) as rows:
        for n in rows:
            if n == 1:
                raise OSError("disk full")
    first = "writing due.xlsx         [###...........................] 1/9"
    second = "writing due.xlsx         [######........................] 2/9"
    assert capsys.readouterr().err == f"\r{first}\r{second}\r{' ' * len(second)}\r"
