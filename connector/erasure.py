"""Erasing a person from the ledger, so that it lasts and the numbers follow at once.

``erase`` removes every row about the person, audits it under a pseudonym, puts the person on the
suppression list (later syncs leave them out) and rebuilds the roll-ups of their department and
its parents from the stored statuses, all in one transaction. A sync holds the ledger's write
lock only for its short final write, so ``erase`` waits for that (``ERASE_WAIT_S``) rather than
failing with "database is locked".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from connector.evaluation import rollups_from_statuses
from connector.ledger import Ledger
from connector.mapping import Mappings

ERASE_WAIT_S = 300.0  # far above a sync's write transaction (seconds even at 20,000 people)


@dataclass(frozen=True)
class Erasure:
    user_id: int
    rows_removed: int
    rollups_departments: tuple[str, ...]  # roll-ups recomputed now; () when none were affected
    rollups_pending: bool = False  # affected, but the mappings could not be read: the next sync does it


def erase(ledger: Ledger, user_id: int, reason: str, mappings: Mappings | None, *, now: datetime) -> Erasure:
    """Erase one person; ``mappings`` None (unreadable) leaves roll-ups to the next sync."""
    ledger.wait_for_writers(ERASE_WAIT_S)
    with ledger.transaction():
        department = ledger.people.department_of(user_id)
        removed = ledger.suppressions.erase(user_id, reason, now=now)
        affected: tuple[str, ...] = ()
        run = ledger.runs.last("ok")
        if run is not None and department and mappings is None:
            return Erasure(user_id, removed, (), rollups_pending=True)
        if mappings is not None and run is not None and department and mappings.has_department(department):
            affected = (department, *mappings.ancestors(department))
            rows = rollups_from_statuses(ledger, mappings, date.fromisoformat(run["as_of"]))
            ledger.rollups.replace(run["id"], affected, rows)
    return Erasure(user_id, removed, affected)
