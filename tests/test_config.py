"""connector.toml + environment -> Config: precedence, relative paths, every problem at once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connector.config import load_config
from connector.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_file_values_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("abc123\n")
    cfg = write(
        tmp_path / "connector.toml",
        """
[moodle]
url = "https://moodle.example.org"
token_file = "secret"
concurrency = 3
report_id = 7
[ledger]
path = "data/ledger.sqlite"
[mappings]
dir = "maps"
[organisation]
timezone = "Europe/Ljubljana"
""",
    )
    config = load_config(cfg, env={})
    assert config.moodle_url == "https://moodle.example.org"
    assert config.token == "abc123"
    assert config.concurrency == 3 and config.report_id == 7
    assert config.ledger_path == tmp_path / "data" / "ledger.sqlite"
    assert config.mappings_dir == tmp_path / "maps"
    assert config.timezone == "Europe/Ljubljana"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[moodle]\nurl = "https://a.example.org"\n')
    config = load_config(cfg, env={"MOODLE_URL": "https://b.example.org", "MOODLE_TOKEN": " t0k "})
    assert config.moodle_url == "https://b.example.org"
    assert config.token == "t0k"


def test_token_never_in_repr(tmp_path: Path) -> None:
    config = load_config(None, env={"MOODLE_TOKEN": "supersecret-token-value"})
    assert "supersecret" not in repr(config)


def test_every_problem_is_listed_with_file_and_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml",
        """
[moodle]
urll = "https://x"
concurrency = "four"
completion_path = "fastest"
[organisation]
timezone = "Mars/Olympus"
[ledgr]
path = "x"
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(cfg, env={})
    text = str(info.value)
    assert "moodle.urll: unknown key (did you mean 'url'?)" in text
    assert "moodle.concurrency: must be int, not str" in text
    assert "ledgr: unknown section (did you mean 'ledger'?)" in text
    assert "Mars/Olympus" in text
    assert "'fastest' is not a completion path" in text
    assert len(info.value.problems) == 5


def test_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '[moodle]\nurl = "https://x.example.org"\ntoken_file = "nope"\n')
    with pytest.raises(ConfigError, match="cannot read the token file"):
        load_config(cfg, env={})


def test_explicit_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})


def test_require_moodle_says_where_to_configure() -> None:
    config = load_config(None, env={})
    with pytest.raises(ConfigError) as info:
        config.require_moodle()
    assert "MOODLE_URL" in str(info.value) and "MOODLE_TOKEN_FILE" in str(info.value)


# -- secrets in the URL, exposed token files, bounds -------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://admin:s3cret@moodle.example.org",
            "url https://***@moodle.example.org carries a user name or "
            "password; write the site root without them (the connector authenticates with the token file)",
        ),
        (
            "https://moodle.example.org/webservice/rest/server.php?wstoken=0123456789abcdef0123456789abcdef",
            "url https://moodle.example.org/webservice/rest/server.php?*** looks like it holds a token; "
            "write only the site root, e.g. https://moodle.example.org, and put the token in the token file",
        ),
    ],
)
def test_a_url_with_credentials_is_refused_at_load_and_shown_redacted(
    tmp_path: Path, url: str, message: str
) -> None:
    cfg = write(tmp_path / "c.toml", f'[moodle]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(cfg, env={"MOODLE_TOKEN": "t"})
    assert [str(p) for p in raised.value.problems] == [f"{cfg}: moodle.url: {message}"]
    assert "s3cret" not in str(raised.value) and "0123456789abcdef" not in str(raised.value)
    with pytest.raises(ConfigError) as from_env:
        load_config(None, env={"MOODLE_URL": url, "MOODLE_TOKEN": "t"})
    assert [str(p) for p in from_env.value.problems] == [f"environment: MOODLE_URL: {message}"]


def test_the_cli_refuses_a_url_with_credentials_with_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from connector.cli import main

    cfg = write(tmp_path / "c.toml", '[moodle]\nurl = "https://bob:pw@moodle.example.org"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "sync"], env={"MOODLE_TOKEN": "t"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 1 problem found:",
        f"  - {cfg}: moodle.url: url https://***@moodle.example.org carries a user name or password; "
        "write the site root without them (the connector authenticates with the token file)",
    ]


def test_a_token_file_others_can_read_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    token.write_text("abc123\n")
    cfg = write(tmp_path / "c.toml", '[moodle]\nurl = "https://moodle.example.org"\ntoken_file = "token"\n')
    token.chmod(0o600)
    assert load_config(cfg, env={}).token_file_exposure() is None
    token.chmod(0o640)
    config = load_config(cfg, env={})
    expected = (
        f"the token file {token} can be read by its group (mode 0640); anyone who reads it can act as "
        f"the connector in Moodle: chmod 600 {token}"
    )
    assert config.token_file_exposure() == expected
    config.client_settings()  # what sync, doctor and courses use before sending the token
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [expected]
    token.chmod(0o604)
    assert "can be read by other users (mode 0604)" in str(load_config(cfg, env={}).token_file_exposure())
    assert load_config(cfg, env={"MOODLE_TOKEN": "t"}).token_file_exposure() is None  # the file is not used


def test_response_cap_and_run_deadline_reach_the_client(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml",
        '[moodle]\nurl = "https://moodle.example.org"\nmax_response_mb = 8\n[sync]\nmax_minutes = 90\n',
    )
    settings = load_config(cfg, env={"MOODLE_TOKEN": "t"}).client_settings()
    assert settings.max_response_bytes == 8 * 2**20 and settings.run_deadline_s == 90 * 60
    unlimited = load_config(
        None, env={"MOODLE_TOKEN": "t", "MOODLE_URL": "https://m.example.org"}
    ).client_settings()
    assert unlimited.max_response_bytes == 64 * 2**20 and unlimited.run_deadline_s is None
    bad = write(tmp_path / "bad.toml", "[moodle]\nmax_response_mb = 0\n[sync]\nmax_minutes = -1\n")
    with pytest.raises(ConfigError) as raised:
        load_config(bad, env={})
    assert [str(p) for p in raised.value.problems] == [
        f"{bad}: moodle.max_response_mb: must be positive (64 holds a report page of about 100,000 rows)",
        f"{bad}: sync.max_minutes: must be positive (leave it out for no limit on a run's duration)",
    ]


def test_a_nesting_bomb_in_connector_toml_is_a_config_problem(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(cfg, env={})
    assert [str(p) for p in raised.value.problems] == [
        f"{cfg}: values are nested too deeply to read (look for a long run of '[' or '{{')"
    ]
