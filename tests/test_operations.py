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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

import connector.config
from click.testing import CliRunner, Result

from connector import health
from connector.cli import main
from connector.config import load_config
from connector.errors import ConfigError, LedgerError
from connector.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger
from connector.mapping import DEMO_MAPPINGS

from .conftest import REPO, Site

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
    site.config_path.write_text(text.replace('path = "ledger.sqlite"',
                                             f'path = "ledger.sqlite"\ngroup = "{group}"'), encoding="utf-8")


def old_ledger(path: Path) -> None:
    """A ledger as the connector's first schema version left it, with one run recorded."""
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO sync_runs (started_at, finished_at, outcome, mode) "
                 "VALUES ('2026-01-01T02:15:00+00:00', '2026-01-01T02:16:00+00:00', 'ok', 'full')")
    conn.close()
    path.chmod(0o600)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 3. where the config is found -------------------------------------------------------------------
def test_config_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, xdg, home, system = (tmp_path / d for d in ("work", "xdg", "home", "etc"))
    places = [work / "connector.toml", xdg / "connector" / "connector.toml",
              home / ".config" / "connector" / "connector.toml", system / "connector.toml"]
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


def test_a_named_config_that_does_not_exist_is_a_config_error(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "connector.toml").write_text("[moodle]\n", encoding="utf-8")  # never a silent fallback
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_CONFIG", str(tmp_path / "typo.toml"))
    result = cli("runs")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 1 problem found:",
        f"  - {tmp_path / 'typo.toml'}: config file not found (check the path given to CONNECTOR_CONFIG)"]
    monkeypatch.delenv("CONNECTOR_CONFIG")
    result = cli("--config", str(tmp_path / "other.toml"), "runs")
    assert result.exit_code == 2
    assert f"{tmp_path / 'other.toml'}: config file not found (check the path given to --config)" \
        in result.stderr


def test_doctor_names_the_config_file_it_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MOODLE_URL", "MOODLE_TOKEN", "MOODLE_TOKEN_FILE", "CONNECTOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    xdg = Path(os.environ["XDG_CONFIG_HOME"])
    system = connector.config.SYSTEM_CONFIG
    result = cli("--mappings", str(DEMO_MAPPINGS), "doctor")
    assert (f"[ok  ] config: no config file found (looked for {tmp_path / 'connector.toml'}, "
            f"{xdg / 'connector' / 'connector.toml'}, {system}); defaults and environment in use") \
        in result.stdout.splitlines()
    (tmp_path / "connector.toml").write_text("[ledger]\npath = \"l.sqlite\"\n", encoding="utf-8")
    result = cli("--mappings", str(DEMO_MAPPINGS), "doctor")
    assert f"[ok  ] config: {tmp_path / 'connector.toml'} (from the working directory)" \
        in result.stdout.splitlines()


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
    assert load_config(cfg, env=dict(env, MOODLE_TOKEN_FILE=str(tmp_path / "env-token"))).token == "from-env-file"
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
        "(create it (groupadd) or fix the name)"]
    assert not demo_site.ledger_path.exists()
