"""[privacy] personal_fields: which personal fields beyond the username a sync stores, and where
they show (`due`, `export`). A real sync of the demo site (emulator over loopback)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.config import load_config
from connector.errors import ConfigError
from tests.helpers import ANCHOR, Site

# (what connector.toml says, fullname stored for u001, e-mail stored for u001)
CASES = [
    ("", "Jan Novák", None),  # the default: the full name as always, no e-mail address
    ('personal_fields = ["fullname", "email"]', "Jan Novák", "u001@example.org"),
    ('personal_fields = ["email"]', "", "u001@example.org"),
    ("personal_fields = []", "", None),
]


@pytest.mark.parametrize(("line", "fullname", "email"), CASES)
def test_a_sync_stores_only_the_allowed_personal_fields(
    demo_site: Site, line: str, fullname: str, email: str | None
) -> None:
    with demo_site.config_path.open("a", encoding="utf-8") as config:
        config.write(f"[privacy]\n{line}\n")
    base = ["--config", str(demo_site.config_path)]
    synced = CliRunner().invoke(main, [*base, "sync", "--as-of", ANCHOR.isoformat()])
    assert synced.exit_code == 0, synced.output
    with sqlite3.connect(demo_site.tmp / "ledger.sqlite") as db:
        assert db.execute("SELECT fullname, email FROM people WHERE username = 'u001'").fetchone() == (
            fullname,
            email,
        )
    exported = CliRunner().invoke(main, [*base, "export", "--format", "json"])
    row = json.loads(exported.stdout)[0]
    assert (row["username"], row["fullname"], row["email"]) == ("u001", fullname or None, email)


def test_an_unknown_personal_field_is_a_config_problem(tmp_path: Path) -> None:
    (tmp_path / "connector.toml").write_text('[privacy]\npersonal_fields = ["phone"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "connector.toml")
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'connector.toml'}: privacy.personal_fields: unknown field 'phone' "
        "(the ledger may keep: fullname, email)"
    ]
