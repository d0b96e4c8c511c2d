"""What the ledger hands out and takes in, as named records instead of positional tuples."""

from __future__ import annotations

from dataclasses import dataclass

from connector.moodle.records import Completion


@dataclass(frozen=True)
class EvidenceCounts:
    new: int
    seen: int


@dataclass(frozen=True)
class EvidenceItem:
    """One evidence row: its id in the ledger and the completion it records."""

    id: int
    completion: Completion


@dataclass(frozen=True)
class EnrolmentState:
    """An enrolment as the ledger last recorded it (what an incremental sync compares against)."""

    lastcourseaccess: int | None
    completed: int | None  # 1/0 as last read from Moodle; None: never read, or unreadable
    checked_access: int | None  # lastcourseaccess when its completion was last read


@dataclass(frozen=True)
class StatusRow:
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

    def values(self) -> tuple[object, ...]:
        return (
            self.user_id,
            self.requirement_id,
            self.status,
            self.valid_until,
            self.since,
            self.due,
            self.evidence_id,
            self.completed_on,
            self.detail,
        )
