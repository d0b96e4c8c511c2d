"""connector.toml + environment -> Config: precedence, relative paths, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import load_config
from connector.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_file_values_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("abc123\n")
    cfg = write(tmp_path / "connector.toml", """
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
""")
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
    cfg = write(tmp_path / "c.toml", """
[moodle]
urll = "https://x"
concurrency = "four"
completion_path = "fastest"
[organisation]
timezone = "Mars/Olympus"
[ledgr]
path = "x"
""")
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
