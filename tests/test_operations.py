"""Running it in production: where the config is found, the token from systemd, the ledger's file
modes and readers' group, read commands that never upgrade, backups, `check`, the deployment files."""

from __future__ import annotations

import grp
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

import connector.config
from connector.cli import main
from connector.config import load_config
from connector.doctor import Check, format_check
from connector.errors import LedgerError
from connector.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger
from connector.mapping import DEMO_MAPPINGS
from tests.helpers import REPO, Site

ROOT = os.geteuid() == 0
NOBODY = 65534


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def at(site: Site, *args: str) -> Result:
    return cli("--config", str(site.config_path), *args)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def readers_group() -> grp.struct_group:
    """A group the ledger can be given to: as root any but root's own, else one this user is in."""
    if ROOT:
        return next(g for g in grp.getgrall() if g.gr_gid != 0)
    others = [g for g in os.getgroups() if g != os.getegid()]
    return grp.getgrgid(others[0] if others else os.getegid())


def with_group(site: Site, group: str) -> None:
    text = site.config_path.read_text(encoding="utf-8")
    site.config_path.write_text(
        text.replace('path = "ledger.sqlite"', f'path = "ledger.sqlite"\ngroup = "{group}"'), encoding="utf-8"
    )


def old_ledger(path: Path) -> None:
    """A ledger as the connector's first schema version left it, with one run recorded."""
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO sync_runs (started_at, finished_at, outcome, mode) "
        "VALUES ('2026-01-01T02:15:00+00:00', '2026-01-01T02:16:00+00:00', 'ok', 'full')"
    )
    conn.close()
    path.chmod(0o600)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 3. where the config is found -------------------------------------------------------------------
def test_config_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, xdg, home, system = (tmp_path / d for d in ("work", "xdg", "home", "etc"))
    places = [
        work / "connector.toml",
        xdg / "connector" / "connector.toml",
        home / ".config" / "connector" / "connector.toml",
        system / "connector.toml",
    ]
    for index, place in enumerate(places):
        place.parent.mkdir(parents=True)
        place.write_text(f'[moodle]\nurl = "https://m{index}.example.org"\n', encoding="utf-8")
    monkeypatch.setattr("connector.config.SYSTEM_CONFIG", places[3])
    named = tmp_path / "named.toml"
    named.write_text('[moodle]\nurl = "https://named.example.org"\n', encoding="utf-8")
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(home)}

    assert load_config(named, env=dict(env, CONNECTOR_CONFIG=str(places[1])), cwd=work).source == named
    from_env = load_config(None, env=dict(env, CONNECTOR_CONFIG=str(named)), cwd=work)
    assert (from_env.source, from_env.source_origin) == (named, "CONNECTOR_CONFIG")

    def found(environment: dict[str, str]) -> tuple[Path | None, str | None]:
        config = load_config(None, env=environment, cwd=work)
        return config.source, config.moodle_url

    assert found(env) == (places[0], "https://m0.example.org")
    places[0].unlink()
    assert found(env) == (places[1], "https://m1.example.org")
    without_xdg = {"HOME": str(home)}  # XDG_CONFIG_HOME unset: ~/.config is the default
    assert found(without_xdg) == (places[2], "https://m2.example.org")
    places[1].unlink()
    assert found(env) == (places[3], "https://m3.example.org")
    places[2].unlink()
    places[3].unlink()
    nothing = load_config(None, env=without_xdg, cwd=work)
    assert nothing.source is None and nothing.searched == (places[0], places[2], places[3])


def test_a_named_config_that_does_not_exist_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "connector.toml").write_text("[moodle]\n", encoding="utf-8")  # never a silent fallback
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_CONFIG", str(tmp_path / "typo.toml"))
    result = cli("runs")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 1 problem found:",
        f"  - {tmp_path / 'typo.toml'}: config file not found (check the path given to CONNECTOR_CONFIG)",
    ]
    monkeypatch.delenv("CONNECTOR_CONFIG")
    result = cli("--config", str(tmp_path / "other.toml"), "runs")
    assert result.exit_code == 2
    assert (
        f"{tmp_path / 'other.toml'}: config file not found (check the path given to --config)"
        in result.stderr
    )


@pytest.mark.slow
def test_a_config_this_user_may_not_look_at_is_a_clear_config_error(tmp_path: Path) -> None:
    private = Path(tempfile.mkdtemp(prefix="connector-ops-"))  # a folder only its owner may enter
    try:
        (private / "connector.toml").write_text("[moodle]\n", encoding="utf-8")
        private.chmod(0o700 if ROOT else 0o000)
        env = {"CONNECTOR_CONFIG": str(private / "connector.toml")}
        if ROOT:  # root may look anywhere: ask as another user
            public = Path(tempfile.mkdtemp(prefix="connector-ops-"))
            public.chmod(0o755)
            try:
                result = as_other_user([], "runs", cwd=public, **env)
            finally:
                shutil.rmtree(public)
            code, err = result.returncode, result.stderr
        else:
            outcome = CliRunner(env=env).invoke(main, ["runs"])
            code, err = outcome.exit_code, outcome.stderr
    finally:
        private.chmod(0o700)
        shutil.rmtree(private)
    assert code == 2
    assert err.splitlines() == [
        "error: 1 problem found:",
        f"  - {private / 'connector.toml'}: this user may not read it (permission denied) (it holds no "
        "secret (the token has its own file): make it and its directory readable for this user's group, "
        "or pass --config)",
    ]


def test_doctor_names_the_config_file_it_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MOODLE_URL", "MOODLE_TOKEN", "MOODLE_TOKEN_FILE", "CONNECTOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    xdg = Path(os.environ["XDG_CONFIG_HOME"])
    system = connector.config.SYSTEM_CONFIG
    result = cli("--mappings", str(DEMO_MAPPINGS), "doctor")
    expected = format_check(
        Check(
            "config",
            True,
            f"no config file found (looked for connector.toml, "
            f"{xdg / 'connector' / 'connector.toml'}, {system}); defaults and "
            "environment in use",
        )
    )
    assert result.stdout.splitlines()[: len(expected)] == expected
    (tmp_path / "connector.toml").write_text('[ledger]\npath = "l.sqlite"\n', encoding="utf-8")
    result = cli("--mappings", str(DEMO_MAPPINGS), "doctor")
    assert result.stdout.splitlines()[0] == "[ok  ] config: connector.toml (from the working directory)"


def test_the_systemd_credential_is_a_token_source(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "moodle-token").write_text("from-systemd\n", encoding="utf-8")
    (tmp_path / "file-token").write_text("from-config\n", encoding="utf-8")
    (tmp_path / "env-token").write_text("from-env-file\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[moodle]\nurl = "https://m.example.org"\ntoken_file = "file-token"\n', encoding="utf-8")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert load_config(cfg, env={}).token == "from-config"
    assert load_config(cfg, env=env).token == "from-systemd"
    assert (
        load_config(cfg, env=dict(env, MOODLE_TOKEN_FILE=str(tmp_path / "env-token"))).token
        == "from-env-file"
    )
    assert load_config(cfg, env=dict(env, MOODLE_TOKEN="from-env")).token == "from-env"
    (creds / "moodle-token").unlink()  # a credentials directory without ours: the file's token
    assert load_config(cfg, env=env).token == "from-config"


def test_an_unknown_readers_group_is_a_config_error(demo_site: Site) -> None:
    with_group(demo_site, "no-such-group-xyz")
    result = at(demo_site, "sync")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 1 problem found:",
        f"  - {demo_site.config_path}: ledger.group: there is no group 'no-such-group-xyz' on this machine "
        "(create it (groupadd) or fix the name)",
    ]
    assert not demo_site.ledger_path.exists()


# -- 5. file modes, the readers' group, read commands that never upgrade ----------------------------------
@pytest.fixture
def held_open(demo_site: Site) -> Iterator[sqlite3.Connection]:
    """A synced ledger with a second connection open in WAL mode, so its -wal/-shm files exist."""
    assert at(demo_site, "sync").exit_code == 0
    conn = sqlite3.connect(demo_site.ledger_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("SELECT COUNT(*) FROM people").fetchone()
    yield conn
    conn.close()


def sidecars(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def test_a_loose_ledger_and_its_wal_are_tightened_by_every_writing_open(
    demo_site: Site, held_open: sqlite3.Connection
) -> None:
    files = sidecars(demo_site.ledger_path)
    for file in files:
        file.chmod(0o644)
    result = at(demo_site, "upgrade")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"the ledger {demo_site.ledger_path} already has schema version "
        f"{SCHEMA_VERSION}; nothing to upgrade\n"
    )
    assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
    for file in files:
        file.chmod(0o644)
    assert at(demo_site, "sync").exit_code == 0
    assert [mode(f) for f in files] == [0o600, 0o600, 0o600]


def test_a_readers_group_gets_0640_on_the_ledger_wal_and_shm(demo_site: Site) -> None:
    group = readers_group()
    with_group(demo_site, group.gr_name)
    assert at(demo_site, "sync").exit_code == 0
    ledger = demo_site.ledger_path
    assert (mode(ledger), ledger.stat().st_gid) == (0o640, group.gr_gid)
    conn = sqlite3.connect(ledger, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("SELECT 1 FROM people").fetchone()
    try:
        for file in sidecars(ledger):
            file.chmod(0o600)
        assert at(demo_site, "upgrade").exit_code == 0
        assert [(mode(f), f.stat().st_gid) for f in sidecars(ledger)] == [(0o640, group.gr_gid)] * 3
    finally:
        conn.close()
    assert mode(demo_site.tmp / "token") == 0o600  # the token file is not the ledger's business


@pytest.mark.slow
def test_a_group_that_cannot_be_set_is_a_clear_error(tmp_path: Path) -> None:
    if ROOT:  # root may give a file to any group: ask as a user who is a member of none
        shared = Path(tempfile.mkdtemp(prefix="connector-ops-"))
        try:
            shared.chmod(0o777)
            code = (
                "import os, sys\nfrom connector.ledger import Ledger\nfrom connector.errors import LedgerError\n"
                f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
                "try:\n    Ledger.open(sys.argv[1], group=sys.argv[2])\n"
                "except LedgerError as exc:\n    print(exc)\n"
            )
            group = readers_group().gr_name
            out = subprocess.run(
                [sys.executable, "-c", code, str(shared / "l.sqlite"), group],
                capture_output=True,
                text=True,
                check=True,
                cwd=shared,
            ).stdout
            path = shared / "l.sqlite"
        finally:
            shutil.rmtree(shared)
    else:
        group = next(g.gr_name for g in grp.getgrall() if g.gr_gid not in os.getgroups())
        path = tmp_path / "l.sqlite"
        with pytest.raises(LedgerError) as info:
            Ledger.open(path, group=group)
        out = str(info.value) + "\n"
    assert out == (
        f"cannot give {path} to group '{group}' with mode 640\n"
        f"  hint: the connector's user must own it and be a member of '{group}' "
        f"(usermod -aG {group} USER; in the systemd unit: SupplementaryGroups={group})\n"
    )


def test_doctor_accepts_the_group_mode_only_with_a_group(demo_site: Site) -> None:
    assert at(demo_site, "sync").exit_code == 0
    demo_site.ledger_path.chmod(0o640)
    output = at(demo_site, "doctor").stdout
    assert (
        "\n".join(
            format_check(
                Check(
                    "ledger",
                    False,
                    f"{demo_site.ledger_path} (mode 640)",
                    f"it holds personal data: chmod 600 {demo_site.ledger_path} (`connector upgrade` resets it)",
                )
            )
        )
        in output
    )
    with_group(demo_site, readers_group().gr_name)
    expected = "\n".join(format_check(Check("ledger", True, f"{demo_site.ledger_path} (mode 640)")))
    assert expected in at(demo_site, "doctor").stdout


READ_COMMANDS = [("status",), ("export",), ("person", "u001"), ("runs",), ("courses", "--offline")]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c))
def test_read_commands_never_upgrade_an_old_ledger(tmp_path: Path, command: tuple[str, ...]) -> None:
    ledger = tmp_path / "old.sqlite"
    old_ledger(ledger)
    before = digest(ledger)
    result = cli("--ledger", str(ledger), "--mappings", str(DEMO_MAPPINGS), *command)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the ledger {ledger} has schema version 1, this connector needs "
        f"{SCHEMA_VERSION}: upgrade it with `connector upgrade` (it makes a backup "
        "first) or `connector sync`\n"
    )
    assert digest(ledger) == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.sqlite"]


def test_upgrade_backs_the_old_ledger_up_first_and_names_the_copy(tmp_path: Path) -> None:
    ledger = tmp_path / "compliance.sqlite"
    old_ledger(ledger)
    manual = tmp_path / "before-upgrading.sqlite"  # `backup` copies any schema, for exactly this moment
    result = cli("--ledger", str(ledger), "backup", str(manual))
    assert (
        result.stdout == f"wrote {manual} ({manual.stat().st_size} bytes, schema version 1, integrity ok)\n"
    )
    result = cli("--ledger", str(ledger), "upgrade")
    assert result.exit_code == 0, result.output
    backups = list(tmp_path.glob("compliance.schema1-*.sqlite"))
    assert len(backups) == 1 and re.fullmatch(r"compliance\.schema1-\d{8}T\d{6}Z\.sqlite", backups[0].name)
    assert result.stdout == (
        f"upgraded the ledger {ledger} from schema version 1 to {SCHEMA_VERSION}; "
        f"the previous one is kept in {backups[0]}\n"
    )
    copy = sqlite3.connect(backups[0])
    assert copy.execute("PRAGMA user_version").fetchone() == (1,)
    assert copy.execute("SELECT outcome, mode FROM sync_runs").fetchall() == [("ok", "full")]
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copy.close()
    assert mode(backups[0]) == 0o600
    with Ledger.open_readonly(ledger) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION and len(upgraded.runs.recent()) == 1


@pytest.mark.slow
def test_sync_upgrades_an_old_ledger_and_names_the_backup(demo_site: Site) -> None:
    old_ledger(demo_site.ledger_path)
    result = subprocess.run(
        [sys.executable, "-m", "connector.cli", "--config", str(demo_site.config_path), "sync", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    backup = next(demo_site.tmp.glob("ledger.schema1-*.sqlite"))
    assert result.stdout == ""
    assert result.stderr.endswith(
        f" WARNING connector.ledger: upgraded the ledger {demo_site.ledger_path} "
        f"from schema version 1 to {SCHEMA_VERSION}; the previous one is kept in "
        f"{backup}\n"
    )


AS_OTHER_USER = """
import os, sys
import connector.cli, connector.ledger, connector.mapping, connector.health, connector.ledger.backup
import connector.reports.views, connector.reports.formats, connector.evaluation, connector.rules
import importlib.metadata  # what the CLI would import lazily after the user changed
uid, groups = int(sys.argv[1]), [int(g) for g in sys.argv[2].split(",") if g]
os.setgroups(groups); os.setgid(uid); os.setuid(uid)
sys.argv = ["connector", *sys.argv[3:]]
connector.cli.main()
"""


def as_other_user(groups: list[int], *args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(cwd), XDG_CONFIG_HOME=str(cwd), **extra)
    return subprocess.run(
        [sys.executable, "-c", AS_OTHER_USER, str(NOBODY), ",".join(map(str, groups)), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
def test_a_group_member_reads_the_ledger_without_writing_it(demo_site: Site) -> None:
    group = readers_group()
    with_group(demo_site, group.gr_name)
    assert at(demo_site, "sync").exit_code == 0
    if not ROOT:  # no other uid to become: at least a read-only open of a read-only file and folder
        demo_site.ledger_path.chmod(0o440)
        demo_site.tmp.chmod(0o555)
        try:
            result = cli("--ledger", str(demo_site.ledger_path), "--mappings", str(DEMO_MAPPINGS), "runs")
        finally:
            demo_site.tmp.chmod(0o755)
        assert result.exit_code == 0 and "ok" in result.stdout
        return
    home = Path(tempfile.mkdtemp(prefix="connector-ops-"))
    try:
        home.chmod(0o755)
        ledger = home / "state" / "compliance.sqlite"
        ledger.parent.mkdir(mode=0o755)
        shutil.copy2(demo_site.ledger_path, ledger)
        os.chown(ledger, -1, group.gr_gid)
        ledger.chmod(0o640)
        before = digest(ledger)
        args = ["--ledger", str(ledger), "--mappings", str(DEMO_MAPPINGS)]
        status = as_other_user([group.gr_gid], *args, "status", cwd=home)
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("Compliance as of ")
        runs = as_other_user([group.gr_gid], *args, "runs", "--format", "csv", cwd=home)
        assert runs.returncode == 0 and runs.stdout.splitlines()[1].split(",")[3] == "ok"
        assert as_other_user([group.gr_gid], *args, "check", cwd=home).stdout.startswith("CONNECTOR OK - ")
        # while a writer holds it in WAL mode (a sync running), readers still get in
        writer = Ledger.open(ledger, create=False, group=group.gr_name)
        try:
            writer.db.execute("SELECT COUNT(*) FROM people").fetchone()
            during = as_other_user([group.gr_gid], *args, "runs", "--format", "csv", cwd=home)
            assert during.returncode == 0, during.stderr
        finally:
            writer.close()
        assert sorted(p.name for p in ledger.parent.iterdir()) == ["compliance.sqlite"]
        before = digest(ledger)
        # click refuses an unreadable --ledger itself; the configured path reaches the ledger's own error
        outsider = as_other_user(
            [], "--mappings", str(DEMO_MAPPINGS), "status", cwd=home, CONNECTOR_LEDGER=str(ledger)
        )
        assert outsider.returncode == 1
        assert outsider.stderr.splitlines()[0] == (
            f"error: cannot read the ledger {ledger}: unable to open database file"
        )
        assert digest(ledger) == before
    finally:
        shutil.rmtree(home)


# -- 6. backups -------------------------------------------------------------------------------------
def test_backup_writes_a_checked_private_copy_and_never_overwrites(demo_site: Site) -> None:
    assert at(demo_site, "sync").exit_code == 0
    backups = demo_site.tmp / "backups"
    backups.mkdir()
    target = backups / "copy.sqlite"
    result = at(demo_site, "backup", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"wrote {target} ({target.stat().st_size} bytes, schema version {SCHEMA_VERSION}, integrity ok)\n"
    )
    assert mode(target) == 0o600
    with Ledger.open_readonly(target) as copy, Ledger.open_readonly(demo_site.ledger_path) as original:
        count = "SELECT COUNT(*) FROM evidence"
        assert copy.db.execute(count).fetchone() == original.db.execute(count).fetchone() != (0,)
    first = digest(target)
    again = at(demo_site, "backup", str(target))
    assert again.exit_code == 1
    assert again.stderr == (
        f"error: {target} already exists; nothing was written\n"
        "  hint: choose a new name, or pass --force to replace it\n"
    )
    assert digest(target) == first
    assert at(demo_site, "backup", "--force", str(target)).exit_code == 0
    assert sorted(p.name for p in backups.iterdir()) == ["copy.sqlite"]  # no temporary left behind


def test_backup_is_consistent_while_a_sync_writes(demo_site: Site, tmp_path: Path) -> None:
    assert at(demo_site, "sync").exit_code == 0
    writer = sqlite3.connect(demo_site.ledger_path, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO sync_runs (started_at, outcome, mode) VALUES ('committed', 'ok', 'full')")
        writer.execute("BEGIN IMMEDIATE")  # a sync in the middle of its transaction
        writer.execute(
            "INSERT INTO sync_runs (started_at, outcome, mode) VALUES ('uncommitted', 'running', 'full')"
        )
        naive = tmp_path / "cp.sqlite"
        shutil.copyfile(demo_site.ledger_path, naive)  # what `cp` gets: the -wal is left behind
        result = at(demo_site, "backup", str(tmp_path / "b.sqlite"))
        assert result.exit_code == 0, result.output
        writer.execute("COMMIT")
    finally:
        writer.close()
    seen = "SELECT started_at FROM sync_runs WHERE started_at IN ('committed', 'uncommitted')"
    assert sqlite3.connect(naive).execute(seen).fetchall() == []
    copy = sqlite3.connect(tmp_path / "b.sqlite")
    assert copy.execute(seen).fetchall() == [("committed",)]
    assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_backup_with_a_readers_group_and_of_a_missing_ledger(demo_site: Site, tmp_path: Path) -> None:
    missing = at(demo_site, "backup", str(tmp_path / "b.sqlite"))
    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[0] == f"error: no ledger at {demo_site.ledger_path}"
    group = readers_group()
    with_group(demo_site, group.gr_name)
    assert at(demo_site, "sync").exit_code == 0
    assert at(demo_site, "backup", str(tmp_path / "b.sqlite")).exit_code == 0
    target = tmp_path / "b.sqlite"
    assert (mode(target), target.stat().st_gid) == (0o640, group.gr_gid)


# -- 7. check ---------------------------------------------------------------------------------------
@pytest.fixture
def synced(demo_site: Site) -> Iterator[tuple[Site, datetime]]:
    assert at(demo_site, "sync").exit_code == 0
    with Ledger.open_readonly(demo_site.ledger_path) as ledger:
        finished = datetime.fromisoformat(ledger.runs.last("ok")["finished_at"])  # type: ignore[index]
    yield demo_site, finished


def check_at(site: Site, when: datetime, *options: str) -> Result:
    """`connector check` with the CLI's clock set to ``when`` (no time is faked below it)."""
    return CliRunner().invoke(
        main, ["--config", str(site.config_path), "check", *options], obj={"clock": lambda: when}
    )


PERF_TAIL = "unplaced=0.0169;0.05;;0;1 missing_courses=0;0;;0;4"


def test_check_ok(synced: tuple[Site, datetime]) -> None:
    site, finished = synced
    result = check_at(site, finished + timedelta(hours=5))
    assert (result.exit_code, result.output) == (
        0,
        (
            "CONNECTOR OK - last good sync 5 h ago (#1, full); 1 of 59 active people in no department (1.7 %); "
            "all 4 mapped courses in Moodle | age=18000s;93600;129600;0 last_failed=0;0;;0;1 "
            + PERF_TAIL
            + "\n"
        ),
    )


def test_check_warning_and_critical_by_age(synced: tuple[Site, datetime]) -> None:
    site, finished = synced
    result = check_at(site, finished + timedelta(hours=27))
    assert (result.exit_code, result.output) == (
        1,
        (
            "CONNECTOR WARNING - last good sync 27 h ago (#1, full), more than 26 h; 1 of 59 active people in no "
            "department (1.7 %); all 4 mapped courses in Moodle | age=97200s;93600;129600;0 last_failed=0;0;;0;1 "
            + PERF_TAIL
            + "\n"
        ),
    )
    result = check_at(site, finished + timedelta(hours=40), "--max-age", "2d", "--warn-age", "90m")
    assert (result.exit_code, result.output) == (
        1,
        (
            "CONNECTOR WARNING - last good sync 40 h ago (#1, full), more than 90 min; 1 of 59 active people in no "
            "department (1.7 %); all 4 mapped courses in Moodle | age=144000s;5400;172800;0 last_failed=0;0;;0;1 "
            + PERF_TAIL
            + "\n"
        ),
    )
    result = check_at(site, finished + timedelta(days=4))
    assert (result.exit_code, result.output) == (
        2,
        (
            "CONNECTOR CRITICAL - last good sync 4 days ago (#1, full), more than 36 h; 1 of 59 active people in no "
            "department (1.7 %); all 4 mapped courses in Moodle | age=345600s;93600;129600;0 last_failed=0;0;;0;1 "
            + PERF_TAIL
            + "\n"
        ),
    )


def test_check_warns_on_a_failed_run_unplaced_people_and_missing_courses(
    synced: tuple[Site, datetime],
) -> None:
    site, finished = synced
    conn = sqlite3.connect(site.ledger_path, isolation_level=None)
    conn.execute(
        "INSERT INTO sync_runs (started_at, finished_at, outcome, mode, error) VALUES "
        "(?, ?, 'failed', 'incremental', 'MoodleUnavailable: Moodle did not answer | twice\nmore')",
        [finished.isoformat(), finished.isoformat()],
    )
    conn.execute("UPDATE courses SET last_seen_run = 0 WHERE idnumber = 'ITSEC-CZ'")
    conn.close()
    result = check_at(site, finished + timedelta(hours=1), "--max-unplaced", "1 %")
    assert (result.exit_code, result.output) == (
        1,
        (
            "CONNECTOR WARNING - last good sync 60 min ago (#1, full); last run #2 failed: MoodleUnavailable: "
            "Moodle did not answer / twice; 1 of 59 active people in no department (1.7 %), more than 1 %; "
            "1 of 4 mapped courses missing in Moodle: idnumber:ITSEC-CZ | age=3600s;93600;129600;0 last_failed=1;0;;0;1 "
            "unplaced=0.0169;0.01;;0;1 missing_courses=1;0;;0;4\n"
        ),
    )


def test_check_warns_at_the_share_the_sync_warns_at(synced: tuple[Site, datetime]) -> None:
    site, finished = synced
    with site.config_path.open("a", encoding="utf-8") as config:
        config.write('max_unplaced = "1 %"\n')  # in [sync], the file's last section
    result = check_at(site, finished + timedelta(minutes=30))
    assert (result.exit_code, result.output) == (
        1,
        (
            "CONNECTOR WARNING - last good sync 30 min ago (#1, full); 1 of 59 active people in no department "
            "(1.7 %), more than 1 %; all 4 mapped courses in Moodle | age=1800s;93600;129600;0 "
            "last_failed=0;0;;0;1 unplaced=0.0169;0.01;;0;1 missing_courses=0;0;;0;4\n"
        ),
    )


def test_check_critical_without_any_good_sync(tmp_path: Path) -> None:
    Ledger.open(tmp_path / "new.sqlite").close()
    result = cli("--ledger", str(tmp_path / "new.sqlite"), "--mappings", str(DEMO_MAPPINGS), "check")
    assert (result.exit_code, result.output) == (
        2,
        (
            "CONNECTOR CRITICAL - no successful sync in the ledger yet; 0 of 0 active people in no department "
            "(0 %) | age=U;93600;129600;0 last_failed=0;0;;0;1 unplaced=0;0.05;;0;1\n"
        ),
    )


def test_check_unknown(tmp_path: Path) -> None:
    base = ["--mappings", str(DEMO_MAPPINGS)]
    result = cli("--ledger", str(tmp_path / "none.sqlite"), *base, "check")
    assert (result.exit_code, result.output) == (
        3,
        f"CONNECTOR UNKNOWN - no ledger at {tmp_path / 'none.sqlite'}\n",
    )
    old_ledger(tmp_path / "old.sqlite")
    result = cli("--ledger", str(tmp_path / "old.sqlite"), *base, "check")
    assert (result.exit_code, result.output) == (
        3,
        (
            f"CONNECTOR UNKNOWN - the ledger {tmp_path / 'old.sqlite'} has schema version 1, this connector needs "
            f"{SCHEMA_VERSION}: upgrade it with `connector upgrade` (it makes a backup first) or `connector sync`\n"
        ),
    )
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    result = cli("--ledger", str(tmp_path / "junk.sqlite"), *base, "check")
    assert (result.exit_code, result.output) == (
        3,
        (f"CONNECTOR UNKNOWN - the ledger {tmp_path / 'junk.sqlite'} is damaged (file is not a database)\n"),
    )
    assert cli("check", "--max-age", "soon").output == (
        "CONNECTOR UNKNOWN - --max-age, --warn-age or --max-unplaced: 'soon' is not an age; "
        "write e.g. 36h, 90m, 2d or 3600s\n"
    )
    result = cli("check", "--max-unplaced", "150%")
    assert (result.exit_code, result.output) == (
        3,
        (
            "CONNECTOR UNKNOWN - --max-age, --warn-age or --max-unplaced: '150%' is not between 0 and 100 %; "
            'write it like "5 %"\n'
        ),
    )
    result = cli("check", "--bogus")
    assert (result.exit_code, result.output) == (3, "CONNECTOR UNKNOWN - No such option '--bogus'.\n")


def test_check_help_says_its_exit_codes_are_the_plugin_convention() -> None:
    text = cli("check", "--help").output
    assert "Exit codes follow the plugin convention, NOT the connector's 0/1/2/75:" in text
    assert "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN" in text


# -- 4. the deployment files ------------------------------------------------------------------------------
CONTRIB = REPO / "contrib"
SERVICE = CONTRIB / "systemd" / "connector-sync.service"
TIMER = CONTRIB / "systemd" / "connector-sync.timer"
INSTALLED = "/opt/connector/bin/connector"


def directives(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_units_hold_what_production_needs() -> None:
    service, timer = directives(SERVICE), directives(TIMER)
    required = {
        "Type": ["oneshot"],
        "User": ["connector"],
        "StateDirectory": ["connector"],
        "LoadCredential": ["moodle-token:/etc/connector/moodle-token"],
        "ProtectSystem": ["strict"],
        "NoNewPrivileges": ["yes"],
        "PrivateTmp": ["yes"],
        "StandardOutput": ["journal"],
        "StandardError": ["journal"],
        "ExecStart": [f"{INSTALLED} sync --quiet"],
    }
    assert {key: service.get(key) for key in required} == required
    assert timer["OnCalendar"] == ["*-*-* 02:15"] and timer["Persistent"] == ["true"]
    assert timer["WantedBy"] == ["timers.target"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    # ExecStart is what the README's install creates, and the install ends by enabling the timer
    assert "sudo python3 -m venv /opt/connector" in readme and f"{INSTALLED} --version" in readme
    assert "sudo systemctl enable --now connector-sync.timer" in readme
    cron = (CONTRIB / "cron" / "connector").read_text(encoding="utf-8")
    sync_line = next(line for line in cron.splitlines() if " sync " in line and not line.startswith("#"))
    assert sync_line.split()[5:] == [
        "connector",
        INSTALLED,
        "sync",
        "--quiet",
        ">>/var/lib/connector/sync.log",
        "2>&1",
    ]
    assert "/var/log" not in sync_line and "/var/log/connector.log" not in readme
    sample = load_config(CONTRIB / "connector.toml", env={})
    assert sample.ledger_path == Path("/var/lib/connector/compliance.sqlite")  # inside StateDirectory


VERIFY = shutil.which("systemd-analyze")


@pytest.mark.slow
@pytest.mark.skipif(
    VERIFY is None,
    reason="systemd-analyze is not installed, so `systemd-analyze verify` "
    "cannot run here; test_the_units_hold_what_production_needs still checks the units' content",
)
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point a copy at a stand-in, change nothing else
    stand_in = tmp_path / "connector"
    stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
    stand_in.chmod(0o755)
    service = SERVICE.read_text(encoding="utf-8")
    assert service.count(INSTALLED) == 1
    (tmp_path / SERVICE.name).write_text(service.replace(INSTALLED, str(stand_in)), encoding="utf-8")
    shutil.copy(TIMER, tmp_path / TIMER.name)
    result = subprocess.run(
        [str(VERIFY), "verify", str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
