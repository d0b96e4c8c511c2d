"""What the ledger hands out and takes in, as named records instead of positional tuples.

The per-row records are NamedTuples: immutable and named like a frozen dataclass, but built at
tuple speed (a sync makes one per person x requirement) and bound to SQL parameters as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from connector.moodle.records import Completion


@dataclass(frozen=True)
class EvidenceCounts:
    new: int
    seen: int


class EvidenceItem(NamedTuple):
    """One evidence row: its id in the ledger and the completion it records."""

    id: int
    completion: Completion


class EnrolmentState(NamedTuple):
    """An enrolment as the ledger last recorded it (what an incremental sync compares against)."""

    lastcourseaccess: int | None
    completed: int | None  # 1/0 as last read from Moodle; None: never read, or unreadable
    checked_access: int | None  # lastcourseaccess when its completion was last read


class StatusRow(NamedTuple):
    """One person's status for one requirement, as stored in ``statuses`` (dates as ISO text)."""

    user_id: int
    requirement_id: str
    status: str
    valid_until: str | None
    since: str | None
    due: str | None
    evidence_id: int | None
    completed_on: str | None
    detail: str | None
    department_id: str | None = None  # the roll-up it counts in (None: unplaced or inactive)


class ExportRow(NamedTuple):
    """A stored status with what an export names beside it (its person, the deciding evidence)."""

    user_id: int
    requirement_id: str
    status: str
    valid_until: str | None
    evidence_id: int | None  # > 0: Moodle's evidence; < 0: an imported row (its id negated)
    username: str | None
    idnumber: str | None
    department_id: str | None
    fullname: str | None
    email: str | None
    course: str | None  # the deciding Moodle course's idnumber, else its short name
    completed_at: int | None
    imported_course: str | None  # the deciding imported row's course key ...
    imported_requirement: str | None  # ... or requirement id
    imported_on: str | None  # its local date
    provider: str | None
