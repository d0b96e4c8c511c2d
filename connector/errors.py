"""The connector's one exception hierarchy.

Every error a person can meet carries a message they can act on: what went wrong, where, and
what to do. The CLI catches ``ConnectorError`` in one place, prints ``message`` (and ``hint``)
and exits with ``exit_code``. Nothing here may ever contain the Moodle token.

    ConnectorError
    +-- ConfigError              bad connector.toml / environment        (exit 2)
    +-- MappingError             bad files in mappings/                  (exit 2)
    +-- MoodleError              anything Moodle answered or failed to answer
    |   +-- MoodleAuthError          invalid/expired token (never retried)
    |   +-- MoodlePermissionError    function not in the service / missing capability
    |   +-- MoodleRequestError       a parameter Moodle refused
    |   +-- MoodleNotFound           unknown course, user or report
    |   |   +-- MoodleFunctionNotFound   the web-service function does not exist on this Moodle
    |   +-- MoodleUnavailable        network, 5xx/429, HTML pages, truncated bodies (retried)
    |   +-- MoodleProtocolError      a well-formed answer we cannot understand
    |   +-- SurveyUnusable           a Feedback that cannot be the needs survey (anonymous, ...)
    +-- LedgerError              the SQLite ledger cannot be opened or written
    +-- UsageError               a command-line value that cannot be used   (exit 2)
    +-- SyncRefused              a guard stopped a sync whose answer would be wrong (exit 1)
    +-- SyncLocked               another sync holds the lock                (exit 75)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypedDict, Unpack

from connector.i18n import _, ngettext


class ExitStatus(IntEnum):
    """The connector's exit codes (README "Exit codes"; cron jobs and systemd rely on them).

    `connector check` is the exception: it follows the monitoring-plugin convention
    (connector.health: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    """

    OK = 0
    FAILED = 1  # the run failed; a sync records it in the ledger
    BAD_INPUT = 2  # configuration, mappings or a command-line value; nothing was written
    LOCKED = 75  # EX_TEMPFAIL from sysexits.h: cron may simply try again later
    INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C)
    TERMINATED = 143  # 128 + SIGTERM (systemd stop, kill)


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    exit_code: ExitStatus = ExitStatus.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return self.message + "\n" + _("  hint: {hint}").format(hint=self.hint)
        return self.message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where, what, and what to do."""

    file: str
    key: str
    message: str
    hint: str | None = None
    line: int | None = None

    def what(self) -> str:
        """Where and what, without the hint (for output that puts the hint on its own line)."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"

    def __str__(self) -> str:
        return f"{self.what()} ({self.hint})" if self.hint else self.what()


class _ProblemsError(ConnectorError):
    exit_code = ExitStatus.BAD_INPUT

    def __init__(self, problems: list[Problem] | Problem | str, *, hint: str | None = None) -> None:
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__(problems, hint=hint)
            return
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        count = len(self.problems)
        heading = ngettext("{n} problem found", "{n} problems found", count).format(n=count)
        super().__init__(heading + ":\n" + "\n".join(f"  - {p}" for p in self.problems), hint=hint)


class ConfigError(_ProblemsError):
    """connector.toml or the environment is missing something or holds a bad value."""


class MappingError(_ProblemsError):
    """The mapping files in mappings/ are invalid; ``problems`` lists every one of them."""


class MoodleError(ConnectorError):
    """Moodle refused a call or could not be reached.

    ``function`` is the web-service function, ``errorcode`` Moodle's own code when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        function: str | None = None,
        errorcode: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.function = function
        self.errorcode = errorcode


class MoodleAuthError(MoodleError):
    """The token is invalid, expired or restricted to other IP addresses. Never retried."""


class MoodlePermissionError(MoodleError):
    """The function is not in the token's service, or its user lacks a capability."""


class MoodleRequestError(MoodleError):
    """Moodle rejected a parameter (``invalidparameter``)."""


class MoodleNotFound(MoodleError):
    """An unknown course, user, report or web-service function."""


class MoodleFunctionNotFound(MoodleNotFound):
    """The web-service function itself is unknown to this Moodle (an older release, a plugin missing)."""


class _MoodleErrorDetails(TypedDict, total=False):
    """MoodleError's keyword arguments, for the subclasses that add their own."""

    function: str | None
    errorcode: str | None
    hint: str | None


class MoodleUnavailable(MoodleError):
    """Transient: connection error, timeout, HTTP 5xx/429, maintenance page, truncated body."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, **details: Unpack[_MoodleErrorDetails]
    ) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class MoodleProtocolError(MoodleError):
    """Moodle answered something well-formed that does not have the expected shape."""


class SurveyUnusable(MoodleError):
    """A Moodle Feedback activity that cannot serve as the needs survey: anonymous (no user ids),
    or without the question the survey is read by."""


class LedgerError(ConnectorError):
    """The ledger file cannot be opened, migrated or written."""


class UsageError(ConnectorError):
    """A command-line value that cannot be used (a busy port, a date before the ledger's first
    sync, an empty reason): like a bad configuration, nothing was done."""

    exit_code = ExitStatus.BAD_INPUT


class SyncRefused(ConnectorError):
    """A guard stopped the sync before it wrote: its answer would probably be wrong (a course
    vanished, requirements dropped). The hint names the flag that confirms it on purpose."""


class SyncLocked(ConnectorError):
    """Another sync holds this ledger's lock."""

    exit_code = ExitStatus.LOCKED


class ImportFileError(_ProblemsError):
    """A file to import (declared needs, ...) has problems, each with its line: nothing was imported."""
