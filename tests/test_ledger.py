"""The ledger: private file, migrations without loss, append-only evidence, status history."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connector.errors import LedgerError
from connector.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, StatusRow
from connector.moodle.records import Completion

AS_OF = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # the clock every write here is given


def test_created_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger.open(path) as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        run = ledger.runs.start("full", AS_OF, now=NOW)
        ledger.runs.finish(run, "ok", now=NOW)
        for name in os.listdir(tmp_path):  # the WAL and SHM files too
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_open_without_create_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="connector sync"):
        Ledger.open(tmp_path / "absent.sqlite", create=False)


def test_not_a_ledger_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger.open(path)


def test_older_ledger_is_upgraded_in_place_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    MIGRATIONS[0](db)  # a version-1 ledger, as an earlier release left it
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO evidence (user_id, course_id, completed_at, completed_minute, source, "
        "precision_s, first_seen_run, last_seen_run, first_seen_at, last_seen_at) "
        "VALUES (3, 2, 1748088000, 29134800, 'completion_status', 1, 1, 1, 'x', 'x')"
    )
    conn.commit()
    conn.close()
    with Ledger.open(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION > 1
        assert ledger.db["bookmarks"].exists()
        rows = list(ledger.evidence.by_user())
        assert rows[0][0] == 3 and rows[0][1][0].completion.completed_at == 1748088000
        indexes = {r[0] for r in ledger.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"evidence_course", "evidence_user_time", "enrolments_user"} <= indexes  # schema 4


def test_newer_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    with Ledger.open(path) as ledger:
        ledger.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerError, match="upgrade the connector"):
        Ledger.open(path)


def test_evidence_is_kept_and_merged_across_paths(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run1 = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            counts = ledger.evidence.record([Completion(3, 2, 1748088000, "report", 60)], run1, now=NOW)
        assert (counts.new, counts.seen) == (1, 0)
        run2 = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            # the same completion, read exactly by a status call: same evidence, better precision
            counts = ledger.evidence.record([Completion(3, 2, 1748088017)], run2, now=NOW)
            gone = ledger.evidence.mark_gone([2], run2)
        assert (counts.new, counts.seen, gone) == (0, 1, 0)
        [(_, [item])] = list(ledger.evidence.by_user())
        completion = item.completion
        assert completion.completed_at == 1748088017 and completion.precision_s == 1
        run3 = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            gone = ledger.evidence.mark_gone([2], run3)  # Moodle forgot it (course reset)
        assert gone == 1
        rows = ledger.evidence.for_user(3)
        assert len(rows) == 1 and rows[0]["gone_since_run"] == run3


def test_statuses_replace_and_history_records_transitions(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run1 = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            changes = ledger.statuses.write(
                [StatusRow(3, "sec", "missing", None, None, None, None, None, "")], run1, AS_OF
            )
        assert changes == 1
        run2 = ledger.runs.start("full", date(2026, 6, 2), now=NOW)
        with ledger.transaction():
            same = ledger.statuses.write(
                [StatusRow(3, "sec", "missing", None, None, None, None, None, "")], run2, date(2026, 6, 2)
            )
            changed = ledger.statuses.write(
                [StatusRow(3, "sec", "compliant", "2028-06-01", None, None, None, "2026-06-01", "")],
                run2,
                date(2026, 6, 2),
            )
        assert (same, changed) == (0, 1)
        history = ledger.statuses.history_for(3)
        assert [(h["from_status"], h["to_status"]) for h in history] == [
            (None, "missing"),
            ("missing", "compliant"),
        ]
        assert ledger.statuses.for_user(3)[0]["valid_until"] == "2028-06-01"


def test_failed_transaction_leaves_previous_state(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            ledger.evidence.record([Completion(3, 2, 100_000)], run, now=NOW)
        with pytest.raises(RuntimeError):
            with ledger.transaction():
                ledger.evidence.record([Completion(4, 2, 200_000)], run, now=NOW)
                raise RuntimeError("network went away")
        assert [u for u, _ in ledger.evidence.by_user()] == [3]


def test_stale_running_runs_are_marked_failed(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.runs.start("full", AS_OF, now=NOW)  # the process was killed before runs.finish
        assert ledger.runs.fail_stale(now=NOW) == 1
        [run] = ledger.runs.recent()
        assert run["outcome"] == "failed" and "interrupted" in run["error"]


def test_erasure_removes_personal_data_and_is_audited(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            ledger.evidence.record([Completion(3, 2, 100_000)], run, now=NOW)
            ledger.people.upsert(
                [
                    {
                        "user_id": 3,
                        "username": "u001",
                        "idnumber": "E1",
                        "fullname": "K V",
                        "institution": "",
                        "department_text": "",
                        "position": None,
                        "cohorts": "[]",
                        "department_id": None,
                        "placement_conflicts": None,
                        "start_date": None,
                        "lastaccess": 0,
                        "active": 1,
                        "suspended": 0,
                    }
                ],
                run,
                AS_OF,
            )
        removed = ledger.suppressions.erase(3, "GDPR request 42", now=NOW)
        assert removed == 2
        assert ledger.people.by_username("u001") is None and list(ledger.evidence.by_user()) == []
        audit = ledger.db.execute("SELECT subject_key, reason, rows_removed FROM erasures").fetchall()
        assert audit == [
            (ledger.suppressions.subject_key(3), "GDPR request 42", 2)
        ]  # audited without the user id
        assert ledger.suppressions.suppressed_among([3, 4]) == {3}  # and kept out of later syncs


def test_a_version_2_erasure_audit_is_rekeyed_without_the_user_id(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path)
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    MIGRATIONS[0](db)
    MIGRATIONS[1](db)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO erasures (user_id, erased_at, reason, rows_removed) "
        "VALUES (3, '2026-01-02T10:00:00+00:00', 'GDPR 7', 12)"
    )
    conn.commit()
    conn.close()
    with Ledger.open(path) as ledger:
        columns = [r[1] for r in ledger.db.execute("PRAGMA table_info(erasures)")]
        assert "user_id" not in columns
        assert ledger.db.execute("SELECT subject_key, reason, rows_removed FROM erasures").fetchall() == [
            (ledger.suppressions.subject_key(3), "GDPR 7", 12)
        ]
        assert (
            ledger.suppressions.subject_key(3) != ledger.suppressions.subject_key(4)
            and len(ledger.suppressions.subject_key(3)) == 64
        )
        assert (
            ledger.suppressions.suppressed_among([3]) == set()
        )  # an erasure from before suppression existed


def test_a_status_that_ends_without_successor_gets_a_dropped_history_row(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.runs.start("full", AS_OF, now=NOW)
        with ledger.transaction():
            ledger.statuses.write(
                [
                    StatusRow(3, "a", "compliant", None, None, None, None, None, ""),
                    StatusRow(3, "b", "missing", None, None, None, None, None, ""),
                    StatusRow(4, "b", "missing", None, None, None, None, None, ""),
                ],
                run,
                AS_OF,
            )
        later = ledger.runs.start("full", date(2026, 6, 2), now=NOW)
        with ledger.transaction():
            changes = ledger.statuses.write(
                [StatusRow(3, "b", "missing", None, None, None, None, None, "")], later, date(2026, 6, 2)
            )
        assert changes == 2
        ended = ledger.db.execute(
            "SELECT user_id, requirement_id, from_status, to_status, reason "
            "FROM status_history WHERE run_id = ? ORDER BY 1, 2",
            [later],
        ).fetchall()
        assert ended == [
            (3, "a", "compliant", "dropped", "requirement removed from the mappings"),
            (4, "b", "missing", "dropped", "person no longer evaluated"),
        ]


def test_the_run_outcome_joins_an_open_transaction(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.runs.start("full", AS_OF, now=NOW)
        with pytest.raises(RuntimeError):
            with ledger.transaction():
                ledger.runs.finish(run, "ok", now=NOW)
                raise RuntimeError("the data write failed after the outcome was set")
        assert ledger.runs.recent()[0]["outcome"] == "running"  # rolled back with the data
