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


def test_a_field_left_out_is_emptied_for_people_moodle_deleted_too(demo_site: Site) -> None:
    """No sync reads a person Moodle deleted again: what the ledger kept of them is emptied when
    the field leaves [privacy] personal_fields, like everyone else's."""
    base = ["--config", str(demo_site.config_path)]
    config = demo_site.config_path.read_text(encoding="utf-8")

    def sync_with(fields: str) -> None:
        demo_site.config_path.write_text(
            config + f"[privacy]\npersonal_fields = {fields}\n", encoding="utf-8"
        )
        synced = CliRunner().invoke(main, [*base, "sync", "--as-of", ANCHOR.isoformat()])
        assert synced.exit_code == 0, synced.output

    def u001() -> tuple[str, str | None, int]:
        with sqlite3.connect(demo_site.tmp / "ledger.sqlite") as db:
            return db.execute("SELECT fullname, email, deleted FROM people WHERE user_id = 3").fetchone()

    sync_with('["fullname", "email"]')
    demo_site.emulator.delete_user(3)  # type: ignore[attr-defined]  # u001
    sync_with('["fullname", "email"]')
    assert u001() == ("Jan Novák", "u001@example.org", 1)
    sync_with('["fullname"]')
    assert u001() == ("Jan Novák", None, 1)
    sync_with("[]")
    assert u001() == ("", None, 1)


def test_a_ledger_whose_setting_changed_before_the_upgrade_is_emptied_too(demo_site: Site) -> None:
    """A ledger written by an older connector may already remember the narrower setting while a
    deleted person's e-mail address stays: every sync empties what the setting leaves out."""
    base = ["--config", str(demo_site.config_path)]
    config = demo_site.config_path.read_text(encoding="utf-8")
    demo_site.config_path.write_text(config + '[privacy]\npersonal_fields = ["fullname", "email"]\n')
    assert CliRunner().invoke(main, [*base, "sync", "--as-of", ANCHOR.isoformat()]).exit_code == 0
    demo_site.emulator.delete_user(3)  # type: ignore[attr-defined]  # u001
    assert CliRunner().invoke(main, [*base, "sync", "--as-of", ANCHOR.isoformat()]).exit_code == 0
    with sqlite3.connect(demo_site.tmp / "ledger.sqlite") as db:  # what an older connector left
        db.execute("UPDATE bookmarks SET value = '[\"fullname\"]' WHERE stream = 'personal_fields'")
    demo_site.config_path.write_text(config + '[privacy]\npersonal_fields = ["fullname"]\n')
    assert CliRunner().invoke(main, [*base, "sync", "--as-of", ANCHOR.isoformat()]).exit_code == 0
    with sqlite3.connect(demo_site.tmp / "ledger.sqlite") as db:
        assert db.execute("SELECT email, deleted FROM people WHERE user_id = 3").fetchone() == (None, 1)
        assert db.execute("SELECT COUNT(*) FROM people WHERE email IS NOT NULL").fetchone() == (0,)
