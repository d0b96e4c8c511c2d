"""The SQLite ledger behind one API; no other package holds SQL (tests/test_ledger_boundary.py).

``Ledger`` (core.py) opens, closes and runs transactions, and exposes one object per concern:
``runs``, ``bookmarks``, ``courses``, ``enrolments``, ``people``, ``evidence``, ``statuses``,
``imports`` (evidence from outside Moodle), ``rollups``, ``suppressions`` (erasure), and
``queries``, the read side views and reports use.
The tables are in schema.py, their versions in migrations.py, file modes and failures in files.py,
consistent copies in backup.py.
"""

from connector.ledger.backup import BackupResult, copy_database
from connector.ledger.core import Ledger
from connector.ledger.files import ledger_error
from connector.ledger.migrations import MIGRATIONS, SCHEMA_VERSION, subject_key
from connector.ledger.records import EnrolmentState, EvidenceCounts, EvidenceItem, StatusRow

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "BackupResult",
    "EnrolmentState",
    "EvidenceCounts",
    "EvidenceItem",
    "Ledger",
    "StatusRow",
    "copy_database",
    "ledger_error",
    "subject_key",
]
