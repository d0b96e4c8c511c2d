"""One sync run: check inputs -> lock -> check the ledger -> read Moodle -> guards -> write -> commit.

Moodle is read first with no write transaction open (``erase`` and other writers are not blocked
while Moodle is slow): what arrives goes batch by batch into the ledger's staging area
(``ledger.staging``: TEMP tables of this connection, so memory stays flat at any size); then it is
moved into the ledger in ONE short transaction that also records the run's outcome, so a run
lands whole (data and "ok" together) or not at all. The run's row is started in its own small
transaction first, so a failed run is recorded with its reason and a killed one is found and
marked failed by the next run.

Guards stop a run whose answer would probably be wrong before it writes anything (exit 1, the run
recorded as failed, the hint names the flag that confirms it): many people vanishing, a mapped
course with completions on record no longer listed, none of the mapped courses listed,
requirements that hold statuses gone from the mappings. People erased from the ledger are kept out.

``CONNECTOR_TEST_KILL_AT=<point>`` (tests only) SIGKILLs the process at a named commit point
(``KILL_POINTS``) so the tests can prove each leaves a consistent ledger; unset, it costs nothing.

What is fetched, and how cheaply:

* People and enrolments: ``core_enrol_get_enrolled_users`` for every mapped course (paged), or the
  report-builder report's rows, plus cohort members the mappings name; then
  ``core_user_get_users_by_field`` in large batches for the authoritative profile (``suspended``):
  everyone the ledger knows on full runs, only the people a delta read names on delta nights
  (``[sync] profiles_every_run`` reads everyone every night; so does a night after the mappings
  or ``[privacy] personal_fields`` changed; after ``unsuppress`` the next run is a full one).
* Completions, by the cheapest path the site allows (``auto``):
  - ``report``: one custom report lists every enrolment with its completion time; a full run
    reads it whole, a nightly only the rows completed since the last run minus a look-back
    (``moodle/report/filters.py``; a whole read whenever that cannot be trusted);
  - ``per_user``: ``core_enrol_get_users_courses`` per person, then the completion status only
    for courses it flags completed;
  - ``per_course``: the completion status per enrolment.
  The two fallback paths are incremental between full runs: an enrolment (or person) whose
  ``lastcourseaccess`` (``lastaccess``) has not moved since it was last read is not read again.
  A teacher can mark someone complete without that person touching the course, so this can
  miss a completion until the next full run: a full run happens every ``full_every_days``
  (default 7) and whenever ``--full`` is given, and it reconciles everything.

Cost: every Moodle call holds a server PHP worker, so independent calls (the courses' enrolled
users, user batches, report pages, per-user and per-enrolment reads) go side by side through
``MoodleClient.map``, never more at once than ``concurrency``; report pages are sized so each
worker reads one (rows cost the server too). ``tests/benchmarks/bench_sync.py`` measures it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connector.config import Config
from connector.errors import (
    ConfigError,
    ConnectorError,
    LedgerError,
    MappingError,
    MoodleError,
    MoodlePermissionError,
    MoodleProtocolError,
    Problem,
    SyncLocked,
    SyncRefused,
)
from connector.evaluation import evaluate_into_ledger, evaluation_fingerprint, resolve_courses
from connector.i18n import _, format_day, format_number
from connector.ledger import EnrolmentState, Ledger, ledger_error
from connector.ledger.runs import FULL_RUN_WANTED
from connector.mapping import Mappings, load_mappings
from connector.moodle.api import MoodleApi
from connector.moodle.client import MoodleClient
from connector.moodle.functions import (
    COHORT_FUNCTIONS,
    PER_USER_FUNCTION,
    REPORT_FUNCTION,
    REQUIRED_FUNCTIONS,
    add_to_service_hint,
    capabilities_needed,
)
from connector.moodle.records import Completion, Course, Person
from connector.moodle.report.calibration import ZoneWitness, witnesses_from_text, witnesses_to_text
from connector.moodle.report.filters import DeltaCheck, ReportDelta
from connector.reports.unplaced import unplaced_warning
from connector.reports.words import run_word

log = logging.getLogger("connector.sync")

ProgressFn = Callable[[str, int, int | None], None]

# Moodle 4.1 requires PHP's max_input_vars >= 5000; a batch of 4000 values stays well inside it,
# so a 20,000-person site needs 5 calls instead of 20.
USERS_BATCH = 4000
# Report rows staged per executemany: a page's worth, so nothing grows with the site.
STAGE_BATCH = 5000
# People batches asked and not yet staged: enough to keep one in flight while one is placed.
PEOPLE_AHEAD = 2
# Calibration needs a few hundred completed rows, not a full page: every report row costs the server.
CALIBRATION_PER_PAGE = 250
ZONE_BOOKMARK = "report_timezone"
WITNESS_BOOKMARK = "report_timezone_witnesses"  # the exact times that decided the zone
PERSONAL_FIELDS_BOOKMARK = "personal_fields"  # [privacy] personal_fields the ledger was last written with
# How long the sync's writes wait for another writer (an `erase`) to finish before failing.
LEDGER_WAIT_S = 30.0
KILL_POINTS = ("locked", "stale_runs_failed", "run_started", "fetched", "written", "finished", "committed")
_KILL_AT = os.environ.get("CONNECTOR_TEST_KILL_AT")


def _checkpoint(name: str) -> None:
    if _KILL_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class SyncOptions:
    full: bool = False
    as_of: date | None = None
    completion_path: str | None = None  # overrides the config's completion_path
    allow_mass_deletion: bool = False  # accept that many people vanished from Moodle at once
    allow_vanished_courses: bool = False  # accept that mapped courses with evidence are no longer listed
    allow_dropped_requirements: bool = (
        False  # accept ending the statuses of requirements removed from mappings
    )


@dataclass
class SyncResult:
    run_id: int
    mode: str
    completion_path: str
    as_of: date
    counts: dict[str, int]
    calls_by_function: dict[str, int]
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    # seconds spent reading Moodle, moving what was read into the ledger, evaluating, committing
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(self.calls_by_function.values())

    def summary_line(self) -> str:
        c = self.counts
        # counts after a label (not "60 people"): no plural forms to get wrong in Czech and Slovenian
        return _(
            "sync #{run} ok ({mode}, {path} path, as of {date}): {people} people ({unplaced} unplaced), "
            "{enrolments} enrolments, {new} new completions, {gone} no longer in Moodle, "
            "{changes} status changes; {inactive}{calls} Moodle calls in {seconds} s"
        ).format(
            run=self.run_id,
            mode=run_word(self.mode),
            path=self.completion_path,
            date=format_day(self.as_of),
            people=c.get("people", 0),
            unplaced=c.get("unplaced", 0),
            enrolments=c.get("enrolments", 0),
            new=c.get("evidence_new", 0),
            gone=c.get("evidence_gone", 0),
            changes=c.get("status_changes", 0),
            inactive=self._inactive_part(),
            calls=self.calls,
            seconds=format_number(self.duration_s, decimals=1),
        )

    def _inactive_part(self) -> str:
        """Fallback paths only: completions behind inactive enrolments are invisible to them."""
        if "inactive_enrolments" not in self.counts:
            return ""
        return _("{n} inactive enrolments (completions unreadable on this path); ").format(
            n=self.counts["inactive_enrolments"]
        )


class SyncLock:
    """An exclusive, non-blocking flock on ``<ledger>.lock``; the kernel frees it if we are killed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> SyncLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise LedgerError(
                _("cannot create the sync lock {path}: {strerror}").format(
                    path=self.path, strerror=exc.strerror
                ),
                hint=_("the connector's user must be able to write the ledger's directory"),
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SyncLocked(
                _("another sync is running on this ledger (lock {path})").format(path=self.path),
                hint=_("wait for it to finish; cron can simply retry later"),
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_path_for(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".lock")


def run_sync(
    config: Config,
    options: SyncOptions = SyncOptions(),
    *,
    now: datetime,
    progress: ProgressFn | None = None,
) -> SyncResult:
    """Run one sync at the moment ``now`` (UTC, from the CLI's clock); raises ConnectorError
    subclasses (MappingError/ConfigError before any write)."""
    mappings, settings = _validated_inputs(config)  # bad input stops before anything is touched
    zone = mappings.timezone or config.timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    as_of = options.as_of or today
    if as_of > today:
        raise ConfigError(
            Problem(
                "--as-of",
                "",
                _("{as_of} is in the future").format(as_of=as_of),
                _(
                    "a sync records what Moodle says today; to look ahead use `connector "
                    "status --as-of` (it recomputes without writing)"
                ),
            )
        )
    with SyncLock(lock_path_for(config.ledger_path)):
        _checkpoint("locked")
        _refuse_emptied_ledger(config.ledger_path)
        try:
            ledger = Ledger.open(config.ledger_path, group=config.ledger_group)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise ledger_error(exc, config.ledger_path) from None
        with ledger:
            try:
                ledger.wait_for_writers(LEDGER_WAIT_S)
                ledger.require_sound()  # before anything is written: a damaged page reads as numbers
                stale = ledger.runs.fail_stale(now=now)
                _checkpoint("stale_runs_failed")
                if stale:
                    log.warning("%d earlier run(s) had been interrupted; recorded as failed", stale)
                mode = _choose_mode(ledger, options, config, now)
                run_id = ledger.runs.start(mode, as_of, now=now)
            except (sqlite3.Error, UnicodeDecodeError) as exc:
                raise ledger_error(exc, config.ledger_path) from None
            _checkpoint("run_started")
            try:
                return _run(ledger, run_id, mode, as_of, now, mappings, settings, config, options, progress)
            except (sqlite3.Error, UnicodeDecodeError) as exc:
                raise ledger_error(exc, config.ledger_path) from None


def _run(
    ledger: Ledger,
    run_id: int,
    mode: str,
    as_of: date,
    now: datetime,
    mappings: Mappings,
    settings: Any,
    config: Config,
    options: SyncOptions,
    progress: ProgressFn | None,
) -> SyncResult:
    """Read, then write in one transaction with the run's outcome; a failure is recorded."""
    started = time.monotonic()
    run: _Run | None = None
    try:
        ledger.staging.begin()
        with MoodleClient(settings) as client:
            run = _Run(
                MoodleApi(client), ledger, mappings, config, options, run_id, mode, as_of, now, progress
            )
            run.refuse_dropped_requirements()
            staged = run.fetch()
            calls = client.calls_by_function()
        run.phases["read"] = time.monotonic() - started
        _checkpoint("fetched")
        with ledger.transaction():
            run.write(staged)
            _checkpoint("written")
            result = SyncResult(
                run_id,
                mode,
                run.path,
                as_of,
                run.counts,
                calls,
                time.monotonic() - started,
                run.warnings,
                run.phases,
            )
            unplaced = unplaced_warning(ledger, config.max_unplaced)  # reads what was just written
            if unplaced:
                result.warnings.append(unplaced)
            ledger.runs.finish(
                run_id, "ok", now=now, counts=dict(run.counts, calls=result.calls), completion_path=run.path
            )
            _checkpoint("finished")
        _checkpoint("committed")
        ledger.checkpoint()
        result.duration_s = time.monotonic() - started
        run.phases["commit"] = result.duration_s - sum(run.phases.values())
    except BaseException as exc:
        _record_failure(ledger, run_id, run, exc, now)
        raise
    finally:
        _end_staging(ledger)
    log.info(result.summary_line())
    log.info("sync #%d took %s", run_id, ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items()))
    return result


def _record_failure(ledger: Ledger, run_id: int, run: _Run | None, exc: BaseException, now: datetime) -> None:
    """Mark the run failed if the ledger can still be written; if not, the next run marks it."""
    try:
        ledger.runs.finish(
            run_id,
            "failed",
            now=now,
            counts=run.counts if run else None,
            completion_path=run.path if run else None,
            error=_describe(exc),
        )
    except sqlite3.Error as second:
        log.warning("the failed run #%d could not be recorded (%s); the next sync records it", run_id, second)


def _end_staging(ledger: Ledger) -> None:
    try:
        ledger.staging.end()
    except sqlite3.Error as exc:  # the connection closing drops the TEMP tables anyway
        log.debug("staging not cleared: %s", exc)


def _refuse_emptied_ledger(path: Path) -> None:
    """A ledger file emptied to 0 bytes (a failed copy, a truncation) must not become a fresh
    ledger silently: its history would be gone and the next numbers would look fine."""
    wal = path.with_name(path.name + "-wal")
    if path.exists() and path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0):
        raise LedgerError(
            _("the ledger {path} is an empty file (0 bytes)").format(path=path),
            hint=_(
                "restore the last backup of the ledger; on a new installation delete the "
                "empty file and run the sync again"
            ),
        )


def _validated_inputs(config: Config) -> tuple[Mappings, Any]:
    """Mappings and client settings, or one ConfigError listing every problem of both."""
    problems: list[Problem] = []
    mappings = settings = None
    try:
        mappings = load_mappings(config.mappings_dir)
    except MappingError as exc:
        problems += exc.problems or [Problem(str(config.mappings_dir), "", exc.message, exc.hint)]
    try:
        settings = config.client_settings()
    except ConfigError as exc:
        problems += exc.problems or [
            Problem(str(config.source or "environment"), "moodle", exc.message, exc.hint)
        ]
    if problems:
        raise ConfigError(problems)
    assert mappings is not None
    return mappings, settings


def _choose_mode(ledger: Ledger, options: SyncOptions, config: Config, now: datetime) -> str:
    """Full on request, on a new ledger, after `unsuppress` (a person let back is read whole),
    and when the last full run started full_every_days or more before ``now`` (not --as-of,
    which says which day to evaluate, not when we ran)."""
    if options.full or ledger.bookmarks.get(FULL_RUN_WANTED) is not None:  # after `unsuppress`
        return "full"
    last_full = ledger.runs.last("ok", mode="full")
    if last_full is None:
        return "full"
    ran = datetime.fromisoformat(last_full["started_at"])
    if config.full_every_days and (now - ran).days >= config.full_every_days:
        return "full"
    return "incremental"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectorError):
        return f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Staged:
    """What one run keeps in memory until the write transaction: the small things. Enrolments,
    completion checks, completions and people go into the ledger's staging area as they arrive
    (``ledger.staging``), so a run's memory does not grow with the site."""

    courses: list[Course] = field(default_factory=list)
    bookmarks: dict[str, str] = field(default_factory=dict)
    tracked: list[int] = field(default_factory=list)
    mapped: list[int] = field(default_factory=list)


class _Run:
    """The work of one run: ``fetch`` reads (Moodle, and the ledger for what it knows), ``write``
    records it all inside the caller's transaction."""

    def __init__(
        self,
        api: MoodleApi,
        ledger: Ledger,
        mappings: Mappings,
        config: Config,
        options: SyncOptions,
        run_id: int,
        mode: str,
        as_of: date,
        now: datetime,
        progress: ProgressFn | None,
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.mappings = mappings
        self.config = config
        self.options = options
        self.run_id = run_id
        self.mode = mode
        self.full = mode == "full"
        self.full_wanted = ledger.bookmarks.get(FULL_RUN_WANTED)  # cleared by this run if full
        self.as_of = as_of
        self.now = now
        self.progress = progress or (lambda stage, done, total: None)
        self.path = "unknown"
        self.counts: dict[str, int] = {}
        self.warnings: list[str] = []
        self.phases: dict[str, float] = {}
        self.staged = _Staged()
        self._conflicts: list[tuple[int, str]] = []  # (user id, warning): warned in id order
        self._people: _PeopleReader

    # -- guards -----------------------------------------------------------------------------------
    def refuse_dropped_requirements(self) -> None:
        current = {r.id for r in self.mappings.requirements}
        dropped = {r: n for r, n in self.ledger.statuses.per_requirement().items() if r not in current}
        if not dropped:
            return
        named = ", ".join(f"{r} ({n} people)" for r, n in sorted(dropped.items()))
        if not self.options.allow_dropped_requirements:
            raise SyncRefused(
                _(
                    "requirements that hold statuses are no longer in the mappings: {named}; "
                    "nothing was written"
                ).format(named=named),
                hint=_(
                    "if they were removed on purpose, run `connector sync "
                    "--allow-dropped-requirements` once (their statuses end, each with a "
                    "history row); otherwise restore the mapping files and run `connector "
                    "mappings check`"
                ),
            )
        self.warnings.append(
            _("requirements removed from the mappings, their statuses end: {named}").format(named=named)
        )

    def _refuse_vanished_courses(self, courses: list[Course]) -> None:
        """A mapped course that holds completions and is no longer listed (deleted, hidden from the
        token's user, or Moodle answering an empty list) would turn its holders `missing`."""
        if self.options.allow_vanished_courses:
            return
        listed = {c.id for c in courses}
        refs = self.mappings.course_refs()
        if refs and not self.course_ids:
            raise SyncRefused(
                _(
                    "Moodle lists none of the {n} mapped courses (it listed {n2} courses); "
                    "nothing was written"
                ).format(n=len(refs), n2=len(courses)),
                hint=_(
                    "check the token's user can see the courses (moodle/course:view, "
                    "moodle/course:viewhiddencourses; `connector doctor`, `connector "
                    "courses`); if the courses are really gone, run `connector sync "
                    "--allow-vanished-courses` once"
                ),
            )
        evidence = self.ledger.evidence.per_course()
        gone: dict[int, list[str]] = {}
        for ref, course_id in resolve_courses(
            self.mappings, self.ledger.courses.all(latest_only=True)
        ).items():
            if course_id not in listed and evidence.get(course_id):
                gone.setdefault(course_id, []).append(str(ref))
        if gone:
            named = "; ".join(
                f"{', '.join(sorted(refs_))} (course id {cid}, {evidence[cid]} completions on record)"
                for cid, refs_ in sorted(gone.items())
            )
            raise SyncRefused(
                _(
                    "mapped courses with completions on record are no longer listed by Moodle: "
                    "{named}; nothing was written"
                ).format(named=named),
                hint=_(
                    "check the course still exists and the token's user can see it "
                    "(moodle/course:viewhiddencourses; `connector courses`); if it was "
                    "deleted on purpose, run `connector sync --allow-vanished-courses` once"
                ),
            )

    # -- reading ----------------------------------------------------------------------------------
    def fetch(self) -> _Staged:
        staged = self.staged
        self.progress(_("site info"), 0, None)
        site = self.site = self.api.site_info()
        missing = [f for f in REQUIRED_FUNCTIONS if not site.can_call(f)]
        if missing:
            raise MoodlePermissionError(
                _("the token's web service lacks {functions}").format(functions=", ".join(missing)),
                hint=_("{hint}; `connector doctor` lists all").format(hint=add_to_service_hint(missing)),
            )
        courses = self.api.courses()
        staged.courses = courses
        self.course_ids = resolve_courses(self.mappings, courses)
        self._refuse_vanished_courses(courses)
        by_id = {c.id: c for c in courses}
        mapped = staged.mapped = sorted(set(self.course_ids.values()))
        tracked = staged.tracked = [cid for cid in mapped if by_id[cid].completion_enabled]
        for ref in sorted(self.mappings.course_refs() - set(self.course_ids), key=str):
            self.warnings.append(
                _("mapped course {by}={value} does not exist in Moodle").format(by=ref.by, value=ref.value)
            )
        self.counts["courses_mapped"] = len(mapped)

        cohorts = self._cohorts(site)
        self.path = self._choose_path(site)
        stage = self.ledger.staging
        # people the ledger still counts as present are asked about too: one Moodle no longer
        # returns was deleted there, and becomes inactive here (their history stays). They, and
        # the cohorts' members, are known now: asked while Moodle's other answers are in flight.
        people = self._people = _PeopleReader(self, cohorts)
        try:
            people.want(sorted(self._people_to_ask(cohorts)), now=True)
            if self.path == "report":
                self._read_report(set(mapped))
                stage.check_every_enrolment()
                if "report_delta_since" not in self.counts:  # no delta after all: ask about everyone
                    people.want(sorted(self._everyone(cohorts)), now=True)
            else:
                profiles, enrolments = self._read_enrolments(mapped)
                people.profiles = profiles
                people.want(sorted(profiles), now=True)  # asked while the completions are read
                stage.add_enrolments(enrolments)
                inactive = self._inactive_enrolments(mapped, enrolments)
                readable = [e for e in enrolments if (e[0], e[1]) not in inactive]
                del enrolments
                completions = self._read_completions(readable, set(tracked), profiles)
                stage.add_completions(
                    (c.user_id, c.course_id, c.completed_at, c.source, c.precision_s) for c in completions
                )
            people.finish()
        finally:
            people.close()
        self.counts["enrolments"] = stage.enrolment_count()
        return staged

    def _delta_expected(self) -> bool:
        if self.path != "report" or self.config.report_id is None:
            return False
        delta = ReportDelta(
            self.api.client, self.config.report_id, self.site.can_call, self.ledger.bookmarks.get
        )
        return delta.expected

    def _people_to_ask(self, cohorts: dict[int, frozenset[str]]) -> set[int]:
        """Whom to ask about before the rows name anyone. Everyone the ledger counts as present,
        so one Moodle no longer returns becomes deleted here (history kept), and every cohort
        member. An incremental run on the report path with ``[sync] profiles_every_run = false``
        asks only about the cohort members who are new or whose cohorts changed (and, as the rows
        come, the people they name); if its read turns out a whole one (no delta), everyone is
        asked after it. On delta nights everyone's department, suspension and deletion are read
        again at the next full run (25 calls per 100,000 people saved every night)."""
        if (
            self.full
            or self.config.profiles_every_run
            or not self._delta_expected()
            or self._mappings_changed()  # everyone placed again by the new mappings
            or self.ledger.bookmarks.get(PERSONAL_FIELDS_BOOKMARK) != self._personal_fields()
        ):
            return self._everyone(cohorts)
        if not self.mappings.cohort_idnumbers():
            return set()
        return cohort_changes(
            cohorts, self.ledger.people.cohorts_of_present(), self.ledger.people.present_ids()
        )

    def _everyone(self, cohorts: dict[int, frozenset[str]]) -> set[int]:
        """Every cohort member and everyone the ledger counts as present."""
        return set(cohorts) | self.ledger.people.present_ids()

    def _mappings_changed(self) -> bool:
        """Whether the mappings (or the courses they name, or the rules) differ from those of the
        stored statuses: placement, position and start date are the mappings' reading of a profile."""
        return self.ledger.evaluated.fingerprint() != evaluation_fingerprint(self.mappings, self.course_ids)

    def _personal_fields(self) -> str:
        """``[privacy] personal_fields`` as remembered: a field left out is emptied for everyone
        at the next sync, so a night after they changed asks about everyone."""
        return json.dumps(sorted(self.config.personal_fields))

    # -- writing ----------------------------------------------------------------------------------
    def write(self, staged: _Staged) -> None:
        """Move everything staged into the ledger, inside the caller's transaction; erased people
        stay out."""
        moving = time.monotonic()
        ledger = self.ledger
        stage = ledger.staging
        suppressed = ledger.suppressions.suppressed_among(stage.user_ids())
        if suppressed:
            stage.drop_users(suppressed)
            self.counts["people"] = stage.people_count()
        self.counts["suppressed"] = len(suppressed)
        ledger.courses.upsert(staged.courses, self.run_id)
        for stream, value in staged.bookmarks.items():
            ledger.bookmarks.set(stream, value, self.run_id)
        fields = self._personal_fields()
        if ledger.bookmarks.get(PERSONAL_FIELDS_BOOKMARK) != fields:  # this run asked everyone
            ledger.bookmarks.set(PERSONAL_FIELDS_BOOKMARK, fields, self.run_id)
        # every run, for everyone it cannot ask (people Moodle deleted), and for ledgers whose
        # setting changed before this was done; it writes nothing once they are empty
        ledger.people.empty_fields_not_kept(self.config.personal_fields)
        stage.apply_enrolments(self.run_id, full=self.full)
        evidence = stage.apply_evidence(self.run_id, now=self.now, full=self.full)
        stage.apply_people(self.run_id, self.as_of, full=self.full)
        if self.full:
            if self.full_wanted is not None:
                ledger.bookmarks.clear(FULL_RUN_WANTED, self.full_wanted)
            self.counts["evidence_gone"] = ledger.evidence.mark_gone(staged.tracked, self.run_id)
            ledger.enrolments.mark_gone(staged.mapped, self.run_id)
        else:
            self.counts["evidence_gone"] = 0
        self.counts.update(evidence_new=evidence.new, evidence_seen=evidence.seen)
        self.progress(_("evaluating"), 0, None)
        evaluating = time.monotonic()
        self.phases["move"] = evaluating - moving
        self.counts.update(  # a full run evaluates everyone again; otherwise only who changed
            evaluate_into_ledger(
                ledger, self.mappings, self.course_ids, self.as_of, self.run_id, full=self.full
            )
        )
        self.phases["evaluate"] = time.monotonic() - evaluating

    # -- choosing ---------------------------------------------------------------------------------
    def _choose_path(self, site: Any) -> str:
        wanted = self.options.completion_path or self.config.completion_path
        report_ok = self.config.report_id is not None and site.can_call(REPORT_FUNCTION)
        if wanted == "report":
            if not report_ok:
                raise MoodlePermissionError(
                    _(
                        "the report path needs [moodle] report_id and "
                        "core_reportbuilder_retrieve_report in the web service"
                    ),
                    function=REPORT_FUNCTION,
                    hint=_("set report_id to the custom report's id, or use completion_path = 'auto'"),
                )
            return "report"
        if wanted == "auto" and report_ok:
            if site.lang != "en":
                self.warnings.append(
                    _(
                        "report path skipped: the web-service user's language is '{lang}', its "
                        "dates cannot be read reliably; set that user's language to English to "
                        "use it"
                    ).format(lang=site.lang)
                )
            else:
                return "report"
        if wanted in ("per_user", "per_course"):
            if wanted == "per_user" and not site.can_call(PER_USER_FUNCTION):
                raise MoodlePermissionError(
                    _("the per_user path needs core_enrol_get_users_courses"), function=PER_USER_FUNCTION
                )
            return wanted
        return "auto-fallback"  # decided once enrolments are known

    # -- cohorts ----------------------------------------------------------------------------------
    def _cohorts(self, site: Any) -> dict[int, frozenset[str]]:
        wanted = self.mappings.cohort_idnumbers()
        if not wanted:
            return {}
        if not all(site.can_call(f) for f in COHORT_FUNCTIONS):
            raise MoodlePermissionError(
                _("the mappings use cohorts but the web service lacks {functions}").format(
                    functions=" / ".join(COHORT_FUNCTIONS)
                ),
                hint=_("{hint} and grant {capabilities}").format(
                    hint=add_to_service_hint(COHORT_FUNCTIONS),
                    capabilities=", ".join(capabilities_needed(COHORT_FUNCTIONS)),
                ),
            )
        by_id = {c.id: c.idnumber for c in self.api.cohorts() if c.idnumber in wanted}
        members: dict[int, set[str]] = {}
        if by_id:
            for group in self.api.cohort_members(sorted(by_id)):
                for user_id in group.user_ids:
                    members.setdefault(user_id, set()).add(by_id[group.cohort_id])
        return {u: frozenset(s) for u, s in members.items()}

    # -- report path ------------------------------------------------------------------------------
    def _read_report(self, mapped: set[int]) -> None:
        report_id = self.config.report_id
        assert report_id is not None
        delta = ReportDelta(self.api.client, report_id, self.site.can_call, self.ledger.bookmarks.get)
        self._read_report_rows(report_id, mapped, delta)
        latest = self.ledger.staging.latest_completion()  # it stands for every completion read
        self.staged.bookmarks.update(
            delta.bookmarks([] if latest is None else [Completion(0, 0, latest, "report", 60)])
        )

    def _read_report_rows(self, report_id: int, mapped: set[int], delta: ReportDelta) -> int:
        remembered = self.ledger.bookmarks.get(ZONE_BOOKMARK)
        witnesses = witnesses_from_text(self.ledger.bookmarks.get(WITNESS_BOOKMARK)) if self.full else ()
        if not self.full and remembered is not None:  # only what completed since the last run
            last = self.ledger.runs.last("ok")
            since = delta.since_for(last["started_at"] if last else None, self.config.report_lookback_hours)
            read = delta.read(
                since, lambda seen: self._report_rows(report_id, ZoneInfo(remembered), mapped, seen)
            )
            if read is not None:
                if delta.since is not None:
                    self.counts["report_delta_since"] = delta.since
                return read
        delta.before_whole_read(probe=self.full)
        if remembered is None or (self.full and not witnesses):
            return self._report_rows(report_id, self._calibrate(report_id), mapped)
        zone = ZoneInfo(remembered)
        if not self.full:
            return self._report_rows(report_id, zone, mapped)
        # A full run reads every row anyway: the rows of the exact times that decided the zone say
        # whether it still holds, without calibrating again (13.5). If not, calibrate and re-read.
        witness = ZoneWitness(zone, witnesses)
        read = self._report_rows(report_id, zone, mapped, witness)
        if witness.fits:
            return read
        log.info("report %d: the remembered zone %s no longer fits; calibrating again", report_id, zone)
        self.ledger.staging.clear_report()  # what was staged was read in the wrong zone
        return self._report_rows(report_id, self._calibrate(report_id), mapped)

    def _calibrate(self, report_id: int) -> ZoneInfo:
        """Find the report's zone; remember it with the exact times that decided it."""
        preferred = self.config.report_timezone or self.mappings.timezone or self.config.timezone
        calibration = self.api.calibrate_report(
            report_id,
            preferred=preferred,
            per_page=min(self.config.report_per_page, CALIBRATION_PER_PAGE),
            site=self.site,
        )
        self.staged.bookmarks[ZONE_BOOKMARK] = str(calibration.zone)
        self.staged.bookmarks[WITNESS_BOOKMARK] = witnesses_to_text(calibration.witnesses)
        return calibration.zone

    def _report_rows(
        self,
        report_id: int,
        zone: ZoneInfo,
        mapped: set[int],
        witness: ZoneWitness | DeltaCheck | None = None,
    ) -> int:
        """Every row of a mapped course, times read in ``zone``, staged a batch at a time (people
        asked about as they appear); ``witness`` sees every row. Returns the rows read."""
        idnumber_to_course: dict[str, int] = {}
        for course in [*self.staged.courses, *self.ledger.courses.all()]:  # this run's list wins
            if course.idnumber:
                idnumber_to_course.setdefault(course.idnumber, course.id)
        stage = self.ledger.staging
        people = self._people
        unknown_usernames: dict[str, list[tuple[int, int | None]]] = {}
        enrolments: list[tuple[int, int, None]] = []
        completions: list[tuple[int, int, int, str, int]] = []
        new_people: list[int] = []
        rows = 0
        rows_read = self.api.report_completions(
            report_id, per_page=self.config.report_per_page, tz=zone, concurrent=True
        )
        for row in witness.watch(rows_read) if witness is not None else rows_read:
            rows += 1
            course_id = row.course_id or idnumber_to_course.get(row.course_idnumber)
            if course_id not in mapped:
                continue
            user_id = row.user_id
            if user_id is None:
                unknown_usernames.setdefault(row.username, []).append((course_id, row.completed_at))
                continue
            new_people.append(user_id)
            enrolments.append((course_id, user_id, None))
            if row.completed_at is not None:
                completions.append((user_id, course_id, row.completed_at, "report", 60))
            if len(enrolments) >= STAGE_BATCH:
                self.progress(_("reading the report"), rows, None)
                stage.add_enrolments(enrolments)
                stage.add_completions(completions)
                people.want(new_people)
                enrolments, completions, new_people = [], [], []
        stage.add_enrolments(enrolments)
        stage.add_completions(completions)
        people.want(new_people)
        if unknown_usernames:  # a report without the user link column: resolve usernames once
            for person in self.api.users_by_field(
                "username", sorted(unknown_usernames), batch_size=USERS_BATCH
            ):
                for course_id, at in unknown_usernames[person.username]:
                    stage.add_enrolments([(course_id, person.id, None)])
                    if at is not None:
                        stage.add_completions([(person.id, course_id, at, "report", 60)])
                people.want([person.id])
        self.counts["report_rows"] = rows
        return rows

    # -- fallback paths ---------------------------------------------------------------------------
    def _read_enrolments(
        self, mapped: list[int]
    ) -> tuple[dict[int, Person], list[tuple[int, int, int | None]]]:
        profiles: dict[int, Person] = {}
        enrolments: list[tuple[int, int, int | None]] = []
        self.progress(_("reading enrolments"), 0, len(mapped))
        courses = self.api.enrolled_users_of(mapped, page_size=self.config.page_size)
        for index, (course_id, rows) in enumerate(courses, 1):
            for row in rows:
                profiles.setdefault(row.person.id, row.person)
                enrolments.append((course_id, row.person.id, row.enrolment.lastcourseaccess))
            self.progress(_("reading enrolments"), index, len(mapped))
        self.progress(_("reading enrolments"), len(mapped), len(mapped))
        return profiles, enrolments

    def _inactive_enrolments(
        self, mapped: list[int], enrolments: list[tuple[int, int, int | None]]
    ) -> set[tuple[int, int]]:
        """(course, user) of suspended or ended enrolments: listed without ``onlyactive``, not with.

        Moodle keeps the completions behind them but answers ``usernotenroled`` for their status
        and leaves their courses out of the per-user list: no fallback call can read them, so
        they are not asked about, and the run says how many there are."""
        active: set[tuple[int, int]] = set()
        for course_id, rows in self.api.enrolled_users_of(
            mapped, page_size=self.config.page_size, userfields=("id",), only_active=True
        ):
            active.update((course_id, row.person.id) for row in rows)
        inactive = {(c, u) for c, u, _ in enrolments} - active
        self.counts["inactive_enrolments"] = len(inactive)
        if inactive:
            self.warnings.append(
                _(
                    "{n} enrolments in mapped courses are suspended or have ended in Moodle; "
                    "the completions behind them cannot be read on the per_user/per_course "
                    "paths, only through the report path with the report's 'Enrolment status' "
                    "condition removed (README: Setting up the Moodle side, step 5)"
                ).format(n=len(inactive))
            )
        return inactive

    def _read_completions(
        self, enrolments: list[tuple[int, int, int | None]], tracked: set[int], profiles: dict[int, Person]
    ) -> list[Completion]:
        state = self.ledger.enrolments.state()

        def needs_check(course_id: int, user_id: int, access: int | None) -> bool:
            if self.full:
                return True
            known = state.get((course_id, user_id))
            if known is None or known.checked_access is None and known.completed is None:
                return True  # new enrolment, or never read
            return (access or 0) != (known.checked_access or 0)  # the person touched the course since

        pairs = [(c, u, a) for c, u, a in enrolments if c in tracked and needs_check(c, u, a)]
        users = sorted({u for _, u, _ in pairs})
        if self.path == "auto-fallback":
            completed_ratio = self._completed_ratio(state)
            per_user_cost = len(users) + completed_ratio * len(pairs)
            cheaper = per_user_cost < len(pairs) and self.site.can_call(PER_USER_FUNCTION)
            self.path = "per_user" if cheaper else "per_course"
        self.counts["completion_checks"] = len(pairs)
        if self.path == "per_user":
            return self._per_user(pairs, users)
        return self._per_course(pairs)

    @staticmethod
    def _completed_ratio(state: dict[tuple[int, int], EnrolmentState]) -> float:
        known = [s.completed for s in state.values() if s.completed is not None]
        return sum(known) / len(known) if known else 0.5

    def _per_course(self, pairs: list[tuple[int, int, int | None]]) -> list[Completion]:
        completions: list[Completion] = []
        checks: list[tuple[int, int, bool | None, int | None]] = []
        results = self.api.course_completions([(c, u) for c, u, _ in pairs])
        for index, ((course_id, user_id, access), result) in enumerate(zip(pairs, results, strict=False), 1):
            if index % 200 == 0 or index == len(pairs):
                self.progress(_("reading completions"), index, len(pairs))
            if isinstance(result, MoodleError):
                checks.append((course_id, user_id, None, access))
                continue
            checks.append((course_id, user_id, result.completed, access))
            if result.completed and result.completed_at is not None:
                completions.append(Completion(user_id, course_id, result.completed_at))
        self.ledger.staging.add_checks(checks)
        return completions

    def _per_user(self, pairs: list[tuple[int, int, int | None]], users: list[int]) -> list[Completion]:
        """Every pair here needs reading (new, or its access moved): the per-user call says which
        are completed, and only those cost a status call (for the time: a renewal has a new one).
        Pairs the per-user call does not list (e.g. a suspended enrolment) get a status call too."""
        wanted = {(c, u): a for c, u, a in pairs}
        to_read: list[tuple[int, int, int | None]] = []
        checks: list[tuple[int, int, bool | None, int | None]] = []
        for index, (user_id, courses) in enumerate(self.api.users_courses(users), 1):
            if index % 200 == 0 or index == len(users):
                self.progress(_("reading users' courses"), index, len(users))
            for course in courses:
                key = (course.course_id, user_id)
                if key not in wanted:
                    continue
                access = wanted.pop(key)
                if course.completed:
                    to_read.append((course.course_id, user_id, access))
                else:
                    checks.append((course.course_id, user_id, course.completed, access))
        to_read.extend((c, u, a) for (c, u), a in wanted.items())
        self.ledger.staging.add_checks(checks)
        return self._per_course(to_read)

    # -- people -----------------------------------------------------------------------------------
    def person_row(
        self, person: Person, cohorts: frozenset[str], profile: Person | None
    ) -> tuple[object, ...]:
        """The people row (``PEOPLE_COLUMNS`` order) of one person as Moodle answered."""
        placement = self.mappings.place(person, cohorts)
        if placement.department_id is None:
            self.counts["unplaced"] += 1
        if placement.conflicts:
            self.counts["placement_conflicts"] += 1
            self._conflicts.append(
                (
                    person.id,
                    f"user id {person.id} matches several departments: " + ", ".join(placement.conflicts),
                )
            )
        start = self.mappings.start_date_of(person) or self._first_login(person)
        self.counts["suspended"] += int(bool(person.suspended))
        fields = self.config.personal_fields
        return (
            person.id,
            person.username,
            person.idnumber,
            person.fullname if "fullname" in fields else "",
            person.email if "email" in fields else None,
            person.institution,
            person.department,
            self.mappings.position_of(person),
            json.dumps(sorted(cohorts)) if cohorts else "[]",
            placement.department_id,
            json.dumps(list(placement.conflicts)) if placement.conflicts else None,
            start.isoformat() if start else None,
            (profile or person).lastaccess,
            0 if person.suspended else 1,
            int(bool(person.suspended)),
        )

    def people_read(self, asked: int, deleted: int) -> None:
        """After every person was asked about: the mass-deletion guard, then the counts."""
        if deleted > max(3, asked // 20) and not self.options.allow_mass_deletion:
            raise MoodleProtocolError(
                _(
                    "Moodle no longer returns {n} of the {n2} people asked about; recording "
                    "them all as deleted could be wrong (a token user who lost "
                    "moodle/user:viewdetails sees fewer people), so nothing was written"
                ).format(n=deleted, n2=asked),
                function="core_user_get_users_by_field",
                hint=_(
                    "check the token user's capabilities (`connector doctor`); if Moodle "
                    "really deleted them, run `connector sync --allow-mass-deletion` once"
                ),
            )
        self.warnings.extend(text for _, text in sorted(self._conflicts))
        self.counts.update(people=self.ledger.staging.people_count(), deleted=deleted)

    def _first_login(self, person: Person) -> date | None:
        """Without a start-date profile field, a person's first Moodle login stands for their start."""
        if not person.firstaccess:
            return None
        zone = ZoneInfo(self.mappings.timezone or self.config.timezone)
        return datetime.fromtimestamp(person.firstaccess, zone).date()


def cohort_changes(
    cohorts: dict[int, frozenset[str]], recorded: dict[int, frozenset[str]], present: set[int]
) -> set[int]:
    """The people whose cohorts Moodle now lists differently from what the ledger recorded: new
    members, members whose cohorts changed, and people who left every cohort."""
    changed = {u for u, c in cohorts.items() if u not in present or recorded.get(u, frozenset()) != c}
    return changed | {u for u in recorded if u not in cohorts}


class _PeopleReader:
    """People asked about by id in ``USERS_BATCH`` batches as soon as their ids are known (before
    the report is read: the ledger's people and cohort members; then as report rows name them),
    their answers placed and staged as they come back. At most ``PEOPLE_AHEAD`` batches are asked
    and not yet staged, so memory stays flat however many people there are; the client's limit on
    calls in flight holds across these and the report's pages."""

    def __init__(self, run: _Run, cohorts: dict[int, frozenset[str]]) -> None:
        self.run = run
        self.cohorts = cohorts
        self.profiles: dict[int, Person] = {}
        self.asked: set[int] = set()
        self.deleted = 0
        self._pending: list[int] = []
        self._batches: deque[list[int]] = deque()
        self._futures: deque[Future[tuple[list[int], list[Person]]]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=PEOPLE_AHEAD, thread_name_prefix="people")
        run.counts.update(unplaced=0, placement_conflicts=0, suspended=0)

    def want(self, user_ids: Iterable[int], *, now: bool = False) -> None:
        """Ask about these people (those not asked yet): in full batches, or at once with ``now``."""
        asked = self.asked
        for user_id in user_ids:
            if user_id not in asked:
                asked.add(user_id)
                self._pending.append(user_id)
        while len(self._pending) >= USERS_BATCH:
            self._batches.append(self._pending[:USERS_BATCH])
            del self._pending[:USERS_BATCH]
        if now and self._pending:
            self._batches.append(self._pending)
            self._pending = []
        self._take(wait=False)

    def finish(self) -> None:
        if self._pending:
            self._batches.append(self._pending)
            self._pending = []
        self.run.progress(_("reading people"), 0, len(self.asked))
        self._take(wait=True)
        self.run.progress(_("reading people"), len(self.asked), len(self.asked))
        self.run.people_read(len(self.asked), self.deleted)

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _pump(self) -> None:
        api = self.run.api

        def ask(ids: list[int]) -> tuple[list[int], list[Person]]:
            return ids, api.users_batch("id", ids)

        while self._batches and len(self._futures) < PEOPLE_AHEAD:
            self._futures.append(self._pool.submit(ask, self._batches.popleft()))

    def _take(self, *, wait: bool) -> None:
        """Stage the answers that are in (every one still to come with ``wait``), in the order
        asked, asking the next batches as room frees."""
        futures = self._futures
        self._pump()
        while futures and (wait or futures[0].done()):
            ids, answered = futures.popleft().result()
            self._pump()
            found = {p.id: p for p in answered if not p.deleted}  # a deleted account still
            # answers by id, renamed: it counts as deleted here, its last real username kept
            del answered
            rows = [
                self.run.person_row(found[u], self.cohorts.get(u, frozenset()), self.profiles.get(u))
                for u in ids
                if u in found
            ]
            self.run.ledger.staging.add_people(rows)
            gone = [u for u in ids if u not in found]
            if gone:
                self.deleted += len(gone)
                self.run.ledger.staging.add_deleted(gone)
