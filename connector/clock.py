"""The one wall clock. The CLI reads it at its edge and passes the moment in (``now=``) to the
sync, the ledger's writes and ``check``; nothing below the CLI reads the time itself, so a test
sets the clock instead of rewriting the ledger's rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
