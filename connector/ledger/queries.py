"""The read side that views, reports and health checks use: counts and lookups across tables.

Each query answers one question a command asks; none writes.
"""

from __future__ import annotations

import sqlite_utils


class Queries:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def placement_counts(self) -> tuple[int, int, int]:
        """Active people: (in no department, matching several departments, all of them)."""
        unplaced, conflicts, active = self._db.execute(
            "SELECT SUM(department_id IS NULL AND placement_conflicts IS NULL), "
            "SUM(placement_conflicts IS NOT NULL), COUNT(*) FROM people WHERE active = 1"
        ).fetchone()
        return unplaced or 0, conflicts or 0, active or 0

    def unplaced_spellings(self) -> list[tuple[str | None, str | None]]:
        """(institution, department text) of every active person in no department."""
        return [
            (institution, department)
            for institution, department in self._db.execute(
                "SELECT institution, department_text FROM people WHERE active = 1 "
                "AND department_id IS NULL AND placement_conflicts IS NULL"
            )
        ]

    def course_counts(self) -> dict[int, tuple[int, int]]:
        """course id -> (present enrolments, people with a completion Moodle still has)."""
        return {
            course_id: (enrolled, completed)
            for course_id, enrolled, completed in self._db.execute(
                "SELECT e.course_id, COUNT(*), "
                "(SELECT COUNT(DISTINCT v.user_id) FROM evidence v WHERE v.course_id = e.course_id "
                " AND v.gone_since_run IS NULL) "
                "FROM enrolments e WHERE e.present = 1 GROUP BY e.course_id"
            )
        }
