"""Courses as Moodle last listed them, and enrolments in the mapped ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import sqlite_utils

from connector.ledger._batch import batched
from connector.ledger.records import EnrolmentState
from connector.moodle.records import Course

_COURSE_COLUMNS = "course_id, idnumber, shortname, fullname, visible, completion_enabled"


def _course(row: tuple[int, str | None, str | None, str | None, int, int]) -> Course:
    course_id, idnumber, shortname, fullname, visible, completion_enabled = row
    return Course(
        id=int(course_id),
        idnumber=str(idnumber or ""),
        shortname=str(shortname or ""),
        fullname=str(fullname or ""),
        visible=bool(visible),
        completion_enabled=bool(completion_enabled),
    )


class Courses:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def upsert(self, courses: Iterable[Course], run_id: int) -> None:
        self._db.conn.executemany(
            f"INSERT INTO courses ({_COURSE_COLUMNS}, first_seen_run, last_seen_run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(course_id) DO UPDATE SET idnumber = excluded.idnumber, "
            "shortname = excluded.shortname, fullname = excluded.fullname, visible = excluded.visible, "
            "completion_enabled = excluded.completion_enabled, last_seen_run = excluded.last_seen_run",
            [
                (
                    c.id,
                    c.idnumber,
                    c.shortname,
                    c.fullname,
                    int(c.visible),
                    int(c.completion_enabled),
                    run_id,
                    run_id,
                )
                for c in courses
            ],
        )

    def all(self, *, latest_only: bool = False) -> list[Course]:
        """Courses as last seen, the most recently seen first (a re-created course with the same
        idnumber wins over the deleted one when mappings are resolved against this list).
        ``latest_only``: just the courses the most recent successful run listed."""
        where = " WHERE last_seen_run = (SELECT MAX(last_seen_run) FROM courses)" if latest_only else ""
        return [
            _course(r)
            for r in self._db.execute(
                f"SELECT {_COURSE_COLUMNS} FROM courses{where} ORDER BY last_seen_run DESC, course_id"
            )
        ]

    def seen_since(self, run_id: int) -> list[Course]:
        """Courses some run from ``run_id`` on listed."""
        return [
            _course(r)
            for r in self._db.execute(
                f"SELECT {_COURSE_COLUMNS} FROM courses WHERE last_seen_run >= ?", [run_id]
            )
        ]


class Enrolments:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def state(self) -> dict[tuple[int, int], EnrolmentState]:
        """(course_id, user_id) -> the enrolment as last recorded."""
        return {
            (r[0], r[1]): EnrolmentState(lastcourseaccess=r[2], completed=r[3], checked_access=r[4])
            for r in self._db.execute(
                "SELECT course_id, user_id, lastcourseaccess, completed, checked_access FROM enrolments"
            )
        }

    def upsert(self, rows: Iterable[tuple[int, int, int | None]], run_id: int) -> None:
        """rows: (course_id, user_id, lastcourseaccess) seen by this run."""
        for batch in batched(rows):
            self._db.conn.executemany(
                "INSERT INTO enrolments (course_id, user_id, lastcourseaccess, first_seen_run, last_seen_run,"
                " present) VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT(course_id, user_id) DO UPDATE SET "
                "lastcourseaccess = excluded.lastcourseaccess, last_seen_run = excluded.last_seen_run, "
                "present = 1",
                [(c, u, a, run_id, run_id) for c, u, a in batch],
            )

    def record_checks(self, rows: Iterable[tuple[int, int, bool | None, int | None]], run_id: int) -> None:
        """rows: (course_id, user_id, completed, lastcourseaccess at the check)."""
        for batch in batched(rows):
            self._db.conn.executemany(
                "UPDATE enrolments SET completed = ?, checked_run = ?, checked_access = ? "
                "WHERE course_id = ? AND user_id = ?",
                [(None if done is None else int(done), run_id, access, c, u) for c, u, done, access in batch],
            )

    def spans(self) -> dict[int, list[tuple[int, date, date | None]]]:
        """user id -> (course id, the sync day it was first seen, the last sync day it was seen, or
        None while it is still there): when a place in a course was given, as far as the ledger saw."""
        spans: dict[int, list[tuple[int, date, date | None]]] = {}
        for user_id, course_id, first, last, present in self._db.execute(
            "SELECT e.user_id, e.course_id, f.as_of, l.as_of, e.present FROM enrolments e"
            " JOIN sync_runs f ON f.id = e.first_seen_run JOIN sync_runs l ON l.id = e.last_seen_run"
        ):
            if first is None:
                continue
            until = None if present or last is None else date.fromisoformat(last)
            spans.setdefault(int(user_id), []).append((int(course_id), date.fromisoformat(first), until))
        return spans

    def mark_gone(self, course_ids: Sequence[int], run_id: int) -> int:
        """After a full read of these courses: enrolments it did not see are no longer present."""
        total = 0
        for course_id in course_ids:
            total += self._db.execute(
                "UPDATE enrolments SET present = 0 WHERE course_id = ? AND last_seen_run < ?",
                [course_id, run_id],
            ).rowcount
        return total
