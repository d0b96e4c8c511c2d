"""The compliance rules engine: (subjects, evidence, mappings, as_of) -> statuses and roll-ups.

Pure and deterministic: no I/O, no clock, no randomness; ``as_of`` is always passed in, so any
past date can be recomputed. Imports nothing of ours but records and the mapping models.

Decisions (each has a table test in tests/test_rules.py):

* **Dates.** Moodle times are UTC epoch seconds. A completion's date is its local date in the time
  zone of the person's department (its own, an ancestor's or the mappings' default); unplaced
  people use the default. Calendar periods of targets are counted in the same local dates.
* **Evidence after as_of.** A completion whose local date is after ``as_of`` is ignored, never
  trusted: evaluating at D uses exactly the evidence dated up to D. When such completions exist the
  ``detail`` says how many were ignored ("1 completion dated after as_of ignored").
* **Several completions.** The latest (not in the future) wins; ties on the instant prefer the
  finer precision, then the source name, so input order never matters.
* **any-of / all-of.** any-of: the latest completion of any listed course decides. all-of: every
  course needs a completion; the requirement is valid until the earliest expiry among them and the
  completion that expires first decides. A course ref that did not resolve to a Moodle course
  (missing from ``course_ids``) cannot be met.
* **Evidence from outside Moodle** (``connector evidence import``) is a completion with the source
  ``import:<provider>``. Naming a course it counts like a Moodle completion of that course; naming
  a requirement (``requirement_id``) it meets that requirement on its own, even an all-of one. Its
  own ``expires_on`` caps ``valid_until``; when such evidence is involved the candidate valid the
  longest decides (without caps that is the latest, as below).
* **Validity.** ``valid_until = completed_on + valid_for`` in calendar months (29 February 2024 +
  24 months = 28 February 2026; a missing day is clamped to the month's end). The completion counts
  up to and including ``valid_until``; ``since`` of an expired status is the day after.
  No ``valid_for``: never expires (``valid_until`` None).
* **Status order.** ``exempt`` (the exemption covers as_of; ``until`` is inclusive) beats
  everything; then valid evidence: ``expiring`` when ``as_of >= valid_until - warn_before``, else
  ``compliant``; with nothing valid: ``grace`` when the start date is known and
  ``start_date + grace > as_of`` (``due`` = that date), else ``expired`` (old evidence) or
  ``missing`` (none). For monotonicity, the ranks are missing = expired < grace < expiring <
  compliant; adding a completion never lowers a rank at the same as_of.
* **Out of scope.** Inactive subjects (suspended or deleted in Moodle) are ``not_applicable`` for
  every requirement (the ledger keeps their history) and count in no roll-up. Active subjects outside
  ``applies_to`` are ``not_applicable`` but still carry the evidence they hold (for holder targets).
  ``applies_to``: every listed dimension must match; departments include their subtrees; an unplaced
  subject matches only requirements without a department restriction.

Roll-ups (``RollupBuilder``): every department node x every requirement whose department scope
reaches that node's subtree; a parent aggregates its whole subtree; unplaced and inactive subjects
count nowhere. ``in_scope`` counts compliant + expiring + expired + missing + grace + exempt;
``share`` = (compliant + expiring) / (in_scope - exempt), None when that is zero. ``holders`` are
active people of the subtree holding valid evidence, in scope or not. Targets:

* ``share`` (judged by default at every node): without ``period`` its actual value is ``share``;
  with ``period`` only holders whose deciding completion is dated inside the current calendar
  period count. Periods are blocks of N years starting on 1 January of a year divisible by N
  ("2 years": 2024-2025, 2026-2027; in an odd year the block that began in the even year before
  is current), or blocks of N months (N dividing 12) starting in January. Undecidable (None) when
  nobody but exempt people is in scope.
* ``holders`` (judged by default at leaves, departments without sub-departments): at least ``min``
  holders; a department with nobody in scope has 0 holders and misses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from connector.durations import Duration, shift_months
from connector.mapping.models import CourseRef, Exemption, Mappings, Requirement, Target, normalise
from connector.moodle.records import Completion, Subject

# Raise when a decision of the rules changes: statuses stored by other rules are then never reused.
RULES_VERSION = 1


class Status(StrEnum):
    COMPLIANT = "compliant"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    MISSING = "missing"
    GRACE = "grace"
    EXEMPT = "exempt"
    NOT_APPLICABLE = "not_applicable"


_NOT_APPLICABLE, _EXEMPT_STATUS = Status.NOT_APPLICABLE, Status.EXEMPT  # the hot loops compare these

# How good a status is for a person in scope; exempt and not_applicable do not depend on evidence.
RANK: Mapping[Status, int] = {
    Status.MISSING: 0,
    Status.EXPIRED: 0,
    Status.GRACE: 1,
    Status.EXPIRING: 2,
    Status.COMPLIANT: 3,
}


@dataclass(frozen=True, slots=True)
class PersonStatus:
    user_id: int
    requirement_id: str
    status: Status
    valid_until: date | None = None
    since: date | None = None  # expired since (the first day without validity)
    due: date | None = None  # grace: complete by this date
    decided_by: Completion | None = None
    completed_on: date | None = None  # local date of decided_by
    detail: str = ""

    def holds_at(self, as_of: date) -> bool:
        """Whether the deciding evidence is valid at ``as_of`` (whatever the status says)."""
        return self.decided_by is not None and (self.valid_until is None or self.valid_until >= as_of)


def _maker() -> Callable[
    [int, str, Status, date | None, date | None, date | None, Completion | None, date | None, str],
    PersonStatus,
]:
    """``PersonStatus(...)`` with every field given, at about half the cost: a frozen dataclass's
    ``__init__`` goes through ``object.__setattr__`` field by field, and a full evaluation makes
    a million of them. Sets the same slots, so the result is equal in every way."""
    new = object.__new__
    a, b, c, d, e, f, g, h, i = (
        getattr(PersonStatus, name).__set__
        for name in (
            "user_id",
            "requirement_id",
            "status",
            "valid_until",
            "since",
            "due",
            "decided_by",
            "completed_on",
            "detail",
        )
    )

    def made(
        user_id: int,
        requirement_id: str,
        status: Status,
        valid_until: date | None,
        since: date | None,
        due: date | None,
        decided_by: Completion | None,
        completed_on: date | None,
        detail: str,
    ) -> PersonStatus:
        status_ = new(PersonStatus)
        a(status_, user_id)
        b(status_, requirement_id)
        c(status_, status)
        d(status_, valid_until)
        e(status_, since)
        f(status_, due)
        g(status_, decided_by)
        h(status_, completed_on)
        i(status_, detail)
        return status_

    return made


_made = _maker()


@dataclass(frozen=True, slots=True)
class TargetResult:
    kind: str  # "share" or "holders"
    required: float  # a fraction for share, a count for holders
    actual: float | None
    met: bool | None  # None: cannot be decided (nobody in scope)
    period: str | None = None  # "2026-01-01/2027-12-31" for a share target with a period
    judged: str = ""  # the figure in words: "31 % of 50 %, 2026", "not judged in 2027 (even years only)"


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """How many people of a department hold each status for one requirement, and the share valid."""

    in_scope: int
    compliant: int
    expiring: int
    expired: int
    missing: int
    grace: int
    exempt: int
    holders: int
    share: float | None


@dataclass(frozen=True, slots=True)
class DepartmentRollup(StatusCounts):
    department_id: str
    requirement_id: str
    targets: tuple[TargetResult, ...] = ()

    @property
    def targets_met(self) -> bool | None:
        """None: no target judged here (or none decidable); False: any target missed."""
        decided = [t.met for t in self.targets if t.met is not None]
        if not decided:
            return None
        return all(decided)


@dataclass(frozen=True, slots=True)
class Evaluation:
    statuses: list[PersonStatus]
    rollups: list[DepartmentRollup]


def period_bounds(as_of: date, period: Duration) -> tuple[date, date]:
    """The calendar block containing ``as_of``: N-year blocks from years divisible by N, or N-month
    blocks from January (N dividing 12)."""
    if period.unit == "years":
        first = as_of.year - as_of.year % period.amount
        return date(first, 1, 1), date(first + period.amount - 1, 12, 31)
    months = period.amount if period.unit == "months" else 12
    start_month = (as_of.month - 1) // months * months + 1
    start = date(as_of.year, start_month, 1)
    return start, shift_months(start, months) - timedelta(days=1)


# -- one requirement, precomputed for one (mappings, course_ids, as_of) ---------------------------
class _Compiled:
    __slots__ = (
        "requirement",
        "id",
        "course_ids",
        "all_of",
        "unmeetable",
        "valid_for",
        "warn",
        "grace",
        "departments",
        "positions",
        "cohorts",
        "exemptions",
        "appointment_only",
    )

    def __init__(
        self, requirement: Requirement, mappings: Mappings, course_ids: Mapping[CourseRef, int]
    ) -> None:
        self.requirement = requirement
        self.id = requirement.id
        resolved = [course_ids.get(ref) for ref in requirement.courses]
        self.course_ids: tuple[int, ...] = tuple(dict.fromkeys(c for c in resolved if c is not None))
        self.all_of = requirement.require == "all"
        self.unmeetable = not self.course_ids or (self.all_of and None in resolved)
        self.valid_for = requirement.valid_for
        self.warn = requirement.warn_before
        self.grace = requirement.grace
        scope = requirement.applies_to
        self.departments: frozenset[str] | None = (
            frozenset().union(*(mappings.subtree(d) for d in scope.departments if mappings.has_department(d)))
            if scope.departments
            else None
        )
        self.positions = frozenset(normalise(p) for p in scope.positions) or None
        self.cohorts = frozenset(scope.cohorts) or None
        self.exemptions = requirement.exemptions
        self.appointment_only = not requirement.courses  # only appointed targets: nobody must complete

    def applies(self, department_id: str | None, position: str | None, cohorts: frozenset[str]) -> bool:
        if self.departments is not None and department_id not in self.departments:
            return False
        if self.positions is not None and position not in self.positions:
            return False
        return self.cohorts is None or not self.cohorts.isdisjoint(cohorts)

    def exemption_for(self, subject: Subject, as_of: date) -> Exemption | None:
        for exemption in self.exemptions:
            if exemption.covers(subject.username, subject.idnumber, as_of):
                return exemption
        return None


# What a person's evidence says about one requirement, before scope and exemptions:
# (deciding completion, its local date, valid until, detail). A plain tuple: this is the hot path.
_Holding = tuple[Completion | None, date | None, date | None, str]


def _evidence_key(completion: Completion) -> tuple[int, int, str]:
    return (completion.completed_at, -completion.precision_s, completion.source)


class RuleSet:
    """The mappings' requirements prepared once for ``as_of``; evaluate many people with it."""

    def __init__(self, mappings: Mappings, course_ids: Mapping[CourseRef, int], as_of: date) -> None:
        self.mappings = mappings
        self.as_of = as_of
        self.compiled = tuple(_Compiled(r, mappings, course_ids) for r in mappings.requirements)
        self._compiled_by_id = {c.id: c for c in self.compiled}
        zones = {mappings.timezone} | {mappings.timezone_of(d.id) for d in mappings.departments}
        self._zones = {name: ZoneInfo(name) for name in zones}
        next_day = datetime.combine(as_of + timedelta(days=1), time())
        # first epoch second that is already after as_of in each zone
        self._cutoffs = {name: int(next_day.replace(tzinfo=z).timestamp()) for name, z in self._zones.items()}

    def evaluate(self, subject: Subject, evidence: Iterable[Completion]) -> list[PersonStatus]:
        if not subject.active:
            return [
                PersonStatus(
                    subject.user_id,
                    c.id,
                    Status.NOT_APPLICABLE,
                    detail="inactive in Moodle (suspended or deleted)",
                )
                for c in self.compiled
            ]
        zone_name = self.mappings.timezone_of(subject.department_id)
        latest, counts, future, capped = self._group(subject.user_id, evidence, self._cutoffs[zone_name])
        zone = self._zones[zone_name]
        position = normalise(subject.position) if subject.position else None
        decide = self._decide
        if capped:
            capped_holding = self._holding_capped
            return [
                decide(c, subject, position, capped_holding(c, latest, capped, future, zone))
                for c in self.compiled
            ]
        holding = self._holding
        return [decide(c, subject, position, holding(c, latest, counts, future, zone)) for c in self.compiled]

    def stable_days(
        self, subject: Subject, evidence: Iterable[Completion], statuses: Sequence[PersonStatus]
    ) -> tuple[date, date]:
        """The days (first, last, inclusive) on which ``evaluate`` would give ``statuses`` again
        from the same subject and evidence: bounded by the local dates of the evidence next to
        ``as_of`` (a completion counts from its date on) and by every date a decision turns on (valid
        until, the start of the warning, the end of grace, the end of an exemption)."""
        first, last = date.min, date.max
        if not subject.active:
            return first, last
        zone_name = self.mappings.timezone_of(subject.department_id)
        cutoff = self._cutoffs[zone_name]
        counted: int | None = None  # the latest instant that counts at as_of
        ignored: int | None = None  # the earliest one that does not yet
        user_id = subject.user_id
        for completion in evidence:
            if completion.user_id != user_id:
                continue
            at = completion.completed_at
            if at >= cutoff:
                ignored = at if ignored is None or at < ignored else ignored
            elif counted is None or at > counted:
                counted = at
        zone = self._zones[zone_name]
        if counted is not None:
            first = datetime.fromtimestamp(counted, zone).date()
        if ignored is not None:
            last = _day_before(datetime.fromtimestamp(ignored, zone).date())
        as_of = self.as_of
        edges: list[date] = []  # each the first day of a new decision
        compiled_by_id, start = self._compiled_by_id, subject.start_date
        for status in statuses:
            kind = status.status
            if kind is _NOT_APPLICABLE:  # out of scope whatever the day
                continue
            compiled = compiled_by_id[status.requirement_id]
            for exemption in compiled.exemptions:
                if exemption.until is not None:
                    edges.append(_day_after(exemption.until))
            if kind is _EXEMPT_STATUS:  # nothing else turns while the exemption lasts
                continue
            until = status.valid_until
            if until is not None and status.decided_by is not None:
                edges.append(_day_after(until))
                if compiled.warn is not None:
                    edges.append(compiled.warn.before(until))
            if compiled.grace is not None and start is not None:
                edges.append(compiled.grace.after(start))
        for edge in edges:
            if edge <= as_of:
                if edge > first:
                    first = edge
            elif edge <= last:  # the day before the edge is the last one
                last = _day_before(edge)
        return first, last

    @staticmethod
    def _group(
        user_id: int, evidence: Iterable[Completion], cutoff: int
    ) -> tuple[dict[int, Completion], dict[int, int], dict[int, int], list[Completion]]:
        latest: dict[int, Completion] = {}
        counts: dict[int, int] = {}
        future: dict[int, int] = {}
        capped: list[Completion] = []  # imported: naming a requirement or with their own expiry
        for completion in evidence:
            if completion.user_id != user_id:
                continue
            course = completion.course_id
            if completion.completed_at >= cutoff:
                future[course] = future.get(course, 0) + 1
                continue
            if completion.requirement_id is not None or completion.expires_on is not None:
                capped.append(completion)
                continue
            counts[course] = counts.get(course, 0) + 1
            best = latest.get(course)
            if best is None or _evidence_key(completion) > _evidence_key(best):
                latest[course] = completion
        return latest, counts, future, capped

    def _holding(
        self,
        compiled: _Compiled,
        latest: dict[int, Completion],
        counts: dict[int, int],
        future: dict[int, int],
        zone: ZoneInfo,
    ) -> _Holding:
        note = self._future_note(compiled, future) if future else ""
        if compiled.unmeetable:
            return None, None, None, "a course of this requirement is not in Moodle" + note
        course_ids = compiled.course_ids
        if len(course_ids) == 1:  # the common case, without building lists
            deciding = latest.get(course_ids[0])
            if deciding is None:
                return None, None, None, "no completion" + note
            total = counts[course_ids[0]]
            detail = f"latest of {total} completions" if total > 1 else "one completion"
        else:
            have = [latest[c] for c in course_ids if c in latest]
            if compiled.all_of:
                if len(have) < len(course_ids):
                    return None, None, None, f"{len(have)} of {len(course_ids)} courses completed" + note
                deciding = min(have, key=_evidence_key)
                detail = f"all {len(have)} courses completed; the first to expire decides"
            else:
                if not have:
                    return None, None, None, "no completion" + note
                deciding = max(have, key=_evidence_key)
                total = sum(counts.get(c, 0) for c in course_ids)
                detail = f"latest of {total} completions" if total > 1 else "one completion"
        completed_on = datetime.fromtimestamp(deciding.completed_at, zone).date()
        valid_until = compiled.valid_for.after(completed_on) if compiled.valid_for else None
        return deciding, completed_on, valid_until, detail + note

    def _holding_capped(
        self,
        compiled: _Compiled,
        latest: dict[int, Completion],
        capped: list[Completion],
        future: dict[int, int],
        zone: ZoneInfo,
    ) -> _Holding:
        """The holding when imported evidence names the requirement or carries its own expiry.

        Each candidate is valid until ``completed_on + valid_for``, capped by its own expiry; the
        candidate valid the longest wins (without caps that is the latest, as in ``_holding``).
        Evidence naming the requirement meets it on its own, even an all-of one."""
        note = self._future_note(compiled, future) if future else ""

        def judged(c: Completion) -> tuple[Completion, date, date | None]:
            on = datetime.fromtimestamp(c.completed_at, zone).date()
            until = compiled.valid_for.after(on) if compiled.valid_for else None
            if c.expires_on is not None and (until is None or c.expires_on < until):
                until = c.expires_on
            return c, on, until

        def longest(
            items: list[tuple[Completion, date, date | None]],
        ) -> tuple[Completion, date, date | None]:
            return max(items, key=lambda i: (i[2] or date.max, _evidence_key(i[0])))

        direct = [judged(c) for c in capped if c.requirement_id == compiled.id]
        per_course: list[tuple[Completion, date, date | None]] = []
        missing = 0
        for course_id in () if compiled.unmeetable else compiled.course_ids:
            mine = [judged(c) for c in capped if c.requirement_id is None and c.course_id == course_id]
            if course_id in latest:
                mine.append(judged(latest[course_id]))
            if mine:
                per_course.append(longest(mine))
            else:
                missing += 1
        candidates = list(direct)
        if compiled.all_of and per_course and not missing:
            candidates.append(min(per_course, key=lambda i: (i[2] or date.max, _evidence_key(i[0]))))
        elif not compiled.all_of:
            candidates.extend(per_course)
        if not candidates:
            if compiled.unmeetable:
                return None, None, None, "a course of this requirement is not in Moodle" + note
            if compiled.all_of and len(compiled.course_ids) > 1:
                done = len(compiled.course_ids) - missing
                return None, None, None, f"{done} of {len(compiled.course_ids)} courses completed" + note
            return None, None, None, "no completion" + note
        deciding, completed_on, valid_until = longest(candidates)
        return deciding, completed_on, valid_until, f"evidence from {deciding.source}" + note

    @staticmethod
    def _future_note(compiled: _Compiled, future: dict[int, int]) -> str:
        ignored = sum(future.get(c, 0) for c in compiled.course_ids)
        if not ignored:
            return ""
        return f"; {ignored} completion{'s' if ignored != 1 else ''} dated after as_of ignored"

    def _decide(
        self, compiled: _Compiled, subject: Subject, position: str | None, holding: _Holding
    ) -> PersonStatus:
        as_of = self.as_of
        user_id, req_id = subject.user_id, compiled.id
        decided_by, completed_on, valid_until, detail = holding
        if compiled.appointment_only:
            return _made(
                user_id,
                req_id,
                Status.NOT_APPLICABLE,
                None,
                None,
                None,
                None,
                None,
                "an appointment: nobody must complete a course",
            )
        if not compiled.applies(subject.department_id, position, subject.cohorts):
            return _made(
                user_id,
                req_id,
                Status.NOT_APPLICABLE,
                valid_until,
                None,
                None,
                decided_by,
                completed_on,
                "outside the requirement's applies_to; " + detail,
            )
        exemption = compiled.exemption_for(subject, as_of) if compiled.exemptions else None
        if exemption is not None:
            until = f" until {exemption.until.isoformat()}" if exemption.until else ""
            return _made(
                user_id,
                req_id,
                Status.EXEMPT,
                valid_until,
                None,
                None,
                decided_by,
                completed_on,
                f"exempt{until}: {exemption.reason}",
            )
        if decided_by is not None and (valid_until is None or valid_until >= as_of):
            status = Status.COMPLIANT
            if (
                valid_until is not None
                and compiled.warn is not None
                and as_of >= compiled.warn.before(valid_until)
            ):
                status = Status.EXPIRING
            return _made(user_id, req_id, status, valid_until, None, None, decided_by, completed_on, detail)
        if compiled.grace is not None and subject.start_date is not None:
            due = compiled.grace.after(subject.start_date)
            if due > as_of:
                return _made(
                    user_id,
                    req_id,
                    Status.GRACE,
                    valid_until,
                    None,
                    due,
                    decided_by,
                    completed_on,
                    f"newcomer since {subject.start_date.isoformat()}; " + detail,
                )
        if decided_by is not None and valid_until is not None:
            return _made(
                user_id,
                req_id,
                Status.EXPIRED,
                valid_until,
                valid_until + timedelta(days=1),
                None,
                decided_by,
                completed_on,
                detail,
            )
        return _made(user_id, req_id, Status.MISSING, None, None, None, None, None, detail)


def _day_after(day: date) -> date:
    return day if day == date.max else day + timedelta(days=1)


def _day_before(day: date) -> date:
    return day if day == date.min else day - timedelta(days=1)


def evaluate_person(
    subject: Subject,
    evidence: Sequence[Completion],
    mappings: Mappings,
    course_ids: Mapping[CourseRef, int],
    as_of: date,
) -> list[PersonStatus]:
    """Statuses of one subject for every requirement (in the mappings' order).

    Prepares the requirements on every call; to evaluate many people use ``RuleSet`` or ``evaluate``.
    """
    return RuleSet(mappings, course_ids, as_of).evaluate(subject, evidence)


# -- roll-ups -------------------------------------------------------------------------------------
_COMPLIANT, _EXPIRING, _EXPIRED, _MISSING, _GRACE, _EXEMPT, _HOLDERS = range(7)
_SLOT = {
    Status.COMPLIANT: _COMPLIANT,
    Status.EXPIRING: _EXPIRING,
    Status.EXPIRED: _EXPIRED,
    Status.MISSING: _MISSING,
    Status.GRACE: _GRACE,
    Status.EXEMPT: _EXEMPT,
}


class RollupBuilder:
    """Counts statuses per (department, requirement) as subjects stream by; ``build`` aggregates the
    tree. Memory is one small row per placed department and requirement, whatever the headcount."""

    def __init__(
        self,
        mappings: Mappings,
        as_of: date,
        *,
        course_ids: Mapping[CourseRef, int] | None = None,
        needs: Mapping[str, frozenset[int]] | None = None,
        enrolled: Mapping[int, Sequence[tuple[int, date, date | None]]] | None = None,
    ) -> None:
        """``needs``: requirement id -> the user ids the year's saved needs analysis lists (share
        targets ``of = "needs"``; None: no analysis of the year is saved); ``enrolled``: user id ->
        (course id, from, until or None) of their enrolments, and ``course_ids`` to resolve the
        requirements' courses (``counts = "enrolled"``)."""
        self.mappings = mappings
        self.as_of = as_of
        self._needs = needs or {}
        self._needs_saved = needs is not None
        self._enrolled = enrolled or {}
        self._index = {r.id: i for i, r in enumerate(mappings.requirements)}
        # per requirement: the start dates of its share targets' periods (one counter slot each)
        self._period_starts: list[tuple[date, ...]] = [
            tuple(sorted({period_bounds(as_of, t.period)[0] for t in r.targets if t.period is not None}))
            for r in mappings.requirements
        ]
        # per requirement: one counter slot per appointed target (people in its positions), after
        # the period slots
        self._appointed: list[tuple[tuple[int, frozenset[str]], ...]] = [
            tuple(
                (7 + len(starts) + k, frozenset(normalise(p) for p in t.positions))
                for k, t in enumerate(t for t in r.targets if t.kind == "appointed")
            )
            for r, starts in zip(mappings.requirements, self._period_starts, strict=True)
        ]
        self._with_appointed = [i for i, slots in enumerate(self._appointed) if slots]
        # per requirement: the share targets written "of needs" or "counts enrolled", each with two
        # slots (counted, base) after the appointed ones, its period and the requirement's course ids
        resolved = course_ids or {}
        self._custom: list[tuple[_Custom, ...]] = []
        for requirement, starts, appointed in zip(
            mappings.requirements, self._period_starts, self._appointed, strict=True
        ):
            first = 7 + len(starts) + len(appointed)
            special = [
                t
                for t in requirement.targets
                if t.kind == "share" and (t.of, t.counts) != ("in_scope", "completed")
            ]
            courses = frozenset(resolved[ref] for ref in requirement.courses if ref in resolved)
            self._custom.append(
                tuple(
                    _Custom(t, first + 2 * k, *_bounds(as_of, t.period), courses)
                    for k, t in enumerate(special)
                )
            )
        self._rows: dict[str, list[list[int]]] = {}

    def _new_rows(self) -> list[list[int]]:
        return [
            [0] * (7 + len(starts) + len(appointed) + 2 * len(custom))
            for starts, appointed, custom in zip(
                self._period_starts, self._appointed, self._custom, strict=True
            )
        ]

    def add(self, subject: Subject, statuses: Iterable[PersonStatus]) -> None:
        department = subject.department_id
        if department is None or not subject.active or not self.mappings.has_department(department):
            return
        rows = self._rows_of(department)
        if self._with_appointed and subject.position:
            self._count_position(rows, subject.position, 1)
        as_of = self.as_of
        indexes, customs, starts = self._index, self._custom, self._period_starts
        for status in statuses:
            index = indexes.get(status.requirement_id)
            if index is None:
                continue
            row = rows[index]
            slot = _SLOT.get(status.status)
            if slot is not None:
                row[slot] += 1
            until, completed_on = status.valid_until, status.completed_on
            holds = status.decided_by is not None and (until is None or until >= as_of)  # holds_at
            custom = customs[index]
            if custom:
                self._count_custom(row, custom, subject.user_id, index, holds, completed_on, slot, 1)
            if holds:
                row[_HOLDERS] += 1
                if completed_on is not None and (slot == _COMPLIANT or slot == _EXPIRING):
                    for offset, start in enumerate(starts[index]):
                        if completed_on >= start:
                            row[7 + offset] += 1

    # -- counts made elsewhere (SQL over the stored statuses) ------------------------------------
    @property
    def period_starts(self) -> tuple[date, ...]:
        """Every period start a share target counts from at ``as_of`` (``add_counts`` wants them)."""
        return tuple(sorted({start for starts in self._period_starts for start in starts}))

    @property
    def counts_positions(self) -> bool:
        """Whether an appointed target counts people by position (``add_positions``)."""
        return bool(self._with_appointed)

    @property
    def needs_people(self) -> frozenset[str]:
        """The requirements whose targets need to know who counts (``add_person_status``)."""
        return frozenset(
            r.id for r, custom in zip(self.mappings.requirements, self._custom, strict=True) if custom
        )

    def add_positions(self, department_id: str, position: str | None, people: int, sign: int = 1) -> None:
        """``people`` active subjects of a department holding ``position`` (as ``add`` counts them)."""
        if position and self._with_appointed and self.mappings.has_department(department_id):
            self._count_position(self._rows_of(department_id), position, sign * people)

    def add_counts(
        self,
        department_id: str,
        requirement_id: str,
        status: str,
        count: int,
        holders: int,
        held_since: Sequence[int],
        sign: int = 1,
    ) -> None:
        """``count`` statuses ``status`` of a department and requirement, ``holders`` of them valid at
        ``as_of`` and ``held_since[i]`` of those decided on or after ``period_starts[i]``: what ``add``
        counts of them, but for the targets of ``needs_people``."""
        index = self._index.get(requirement_id)
        if index is None or not self.mappings.has_department(department_id):
            return
        row = self._rows_of(department_id)[index]
        slot = _SLOT.get(Status(status))
        if slot is not None:
            row[slot] += sign * count
        row[_HOLDERS] += sign * holders
        if slot in (_COMPLIANT, _EXPIRING):
            since = dict(zip(self.period_starts, held_since, strict=True))
            for offset, start in enumerate(self._period_starts[index]):
                row[7 + offset] += sign * since[start]

    def add_person_status(
        self,
        user_id: int,
        department_id: str,
        requirement_id: str,
        status: str,
        holds: bool,
        completed_on: date | None,
        sign: int = 1,
    ) -> None:
        """One stored status for the targets of ``needs_people`` (counted by ``add_counts`` otherwise)."""
        index = self._index.get(requirement_id)
        if index is None or not self._custom[index] or not self.mappings.has_department(department_id):
            return
        row = self._rows_of(department_id)[index]
        slot = _SLOT.get(Status(status))
        self._count_custom(row, self._custom[index], user_id, index, holds, completed_on, slot, sign)

    def _rows_of(self, department: str) -> list[list[int]]:
        rows = self._rows.get(department)
        if rows is None:
            rows = self._rows[department] = self._new_rows()
        return rows

    def _count_position(self, rows: list[list[int]], position: str, people: int) -> None:
        normalised = normalise(position)
        for appointed in self._with_appointed:
            for counter, positions in self._appointed[appointed]:
                if normalised in positions:
                    rows[appointed][counter] += people

    def _count_custom(
        self,
        row: list[int],
        custom: tuple[_Custom, ...],
        user_id: int,
        index: int,
        holds: bool,
        completed_on: date | None,
        slot: int | None,
        sign: int,
    ) -> None:
        requirement_id = self.mappings.requirements[index].id
        for target in custom:
            if target.target.of == "needs":
                in_base = user_id in self._needs.get(requirement_id, frozenset())
            else:
                in_base = slot is not None and slot != _EXEMPT
            if not in_base:
                continue
            row[target.slot + 1] += sign
            completed = holds and completed_on is not None and target.start <= completed_on <= self.as_of
            if completed or (target.target.counts == "enrolled" and self._enrolled_in(user_id, target)):
                row[target.slot] += sign

    def _enrolled_in(self, user_id: int, target: _Custom) -> bool:
        """A place given: an enrolment in one of the courses that overlaps the period up to as_of."""
        return any(
            course in target.courses and start <= self.as_of and (until is None or until >= target.start)
            for course, start, until in self._enrolled.get(user_id, ())
        )

    def build(self) -> list[DepartmentRollup]:
        totals = self._subtree_totals()
        result: list[DepartmentRollup] = []
        for dept in self.mappings.departments:
            for index, requirement in enumerate(self.mappings.requirements):
                if self._relevant(dept.id, requirement):
                    result.append(self._rollup(dept.id, index, requirement, totals[dept.id][index]))
        return result

    def _subtree_totals(self) -> dict[str, list[list[int]]]:
        totals = {d.id: self._new_rows() for d in self.mappings.departments}
        for dept_id, rows in self._rows.items():
            for node in (dept_id, *self.mappings.ancestors(dept_id)):
                for total, row in zip(totals[node], rows, strict=False):
                    for i, value in enumerate(row):
                        total[i] += value
        return totals

    def _relevant(self, dept_id: str, requirement: Requirement) -> bool:
        scope = requirement.applies_to.departments
        if not scope:
            return True
        chain = (dept_id, *self.mappings.ancestors(dept_id))
        return any(
            s in chain or dept_id in self.mappings.ancestors(s)
            for s in scope
            if self.mappings.has_department(s)
        )

    def _rollup(self, dept_id: str, index: int, requirement: Requirement, row: list[int]) -> DepartmentRollup:
        in_scope = sum(row[_COMPLIANT : _EXEMPT + 1])
        judged = in_scope - row[_EXEMPT]
        share = (row[_COMPLIANT] + row[_EXPIRING]) / judged if judged else None
        appointed = [t for t in requirement.targets if t.kind == "appointed"]
        slots = {id(t): slot for t, (slot, _) in zip(appointed, self._appointed[index], strict=True)}
        slots.update({id(c.target): c.slot for c in self._custom[index]})
        targets = tuple(
            self._judge(t, index, row, judged, share, slots.get(id(t), 0))
            for t in requirement.targets
            if self._judged_here(t, dept_id)
        )
        return DepartmentRollup(
            in_scope=in_scope,
            compliant=row[_COMPLIANT],
            expiring=row[_EXPIRING],
            expired=row[_EXPIRED],
            missing=row[_MISSING],
            grace=row[_GRACE],
            exempt=row[_EXEMPT],
            holders=row[_HOLDERS],
            share=share,
            department_id=dept_id,
            requirement_id=requirement.id,
            targets=targets,
        )

    def _judged_here(self, target: Target, dept_id: str) -> bool:
        if target.departments and not any(
            self.mappings.has_department(d) and dept_id in self.mappings.subtree(d)
            for d in target.departments
        ):
            return False
        if target.judged_at == "leaves":
            return not self.mappings.children(dept_id)
        if target.judged_at == "organisations":
            return not self.mappings.ancestors(dept_id)
        return True

    def _judge(
        self, target: Target, index: int, row: list[int], judged: int, share: float | None, slot: int = 0
    ) -> TargetResult:
        minimum = target.minimum
        if target.kind == "appointed":
            count = row[slot]
            met: bool | None = count >= minimum
            words = f"{count} of {minimum:g} appointed"
            if not met and target.by is not None and self.as_of <= target.by:
                met, words = None, words + f", due by {target.by.isoformat()}"
            return TargetResult("appointed", minimum, float(count), met, None, words)
        if target.kind == "holders":
            holders = row[_COMPLIANT] + row[_EXPIRING] if target.among == "in_scope" else row[_HOLDERS]
            who = "holders in scope" if target.among == "in_scope" else "holders"
            return TargetResult(
                "holders",
                minimum,
                float(holders),
                holders >= minimum,
                None,
                f"{holders} of {minimum:g} {who}",
            )
        year = self.as_of.year
        if target.years != "all" and (year % 2 == 0) != (target.years == "even"):
            return TargetResult(
                "share", minimum, None, None, None, f"not judged in {year} ({target.years} years only)"
            )
        if (target.of, target.counts) != ("in_scope", "completed"):
            counted, base = row[slot], row[slot + 1]
            start, end = _bounds(self.as_of, target.period)
            label = f"{start.isoformat()}/{end.isoformat()}" if target.period else None
            when = "" if target.period is None else _years(start, end)
            actual = counted / base if base else None
            met = None if actual is None else actual >= minimum
            how = [f"of {base} who need it"] if target.of == "needs" else []
            how += ["a place given"] if target.counts == "enrolled" else []
            if actual is None:
                nobody = "nobody in scope"
                if target.of == "needs":
                    nobody = "nobody needs it" if self._needs_saved else f"no needs analysis saved for {year}"
                words = f"not judged{when}: {nobody}"
            else:
                words = f"{_percent(actual)} of {_percent(minimum)}{when} ({', '.join(how)})"
            return TargetResult("share", minimum, actual, met, label, words)
        if target.period is None:
            actual = share
            label = None
            when = ""
        else:
            start, end = period_bounds(self.as_of, target.period)
            offset = self._period_starts[index].index(start)
            actual = row[7 + offset] / judged if judged else None
            label = f"{start.isoformat()}/{end.isoformat()}"
            when = _years(start, end)
        met = None if actual is None else actual >= minimum
        words = (
            f"not judged{when}: nobody in scope"
            if actual is None
            else f"{_percent(actual)} of {_percent(minimum)}{when}"
        )
        return TargetResult("share", minimum, actual, met, label, words)


class _Custom(NamedTuple):
    """A share target over the needs base or counting places given: where its counters sit."""

    target: Target
    slot: int  # counted; slot + 1: the base
    start: date
    end: date
    courses: frozenset[int]


def _bounds(as_of: date, period: Duration | None) -> tuple[date, date]:
    return period_bounds(as_of, period) if period is not None else (date.min, as_of)


def _years(start: date, end: date) -> str:
    return f", {start.year}" if start.year == end.year else f", {start.year}-{end.year}"


def _percent(fraction: float) -> str:
    """31 %: whole percent, with the space Czech and Slovenian write (shown in every language)."""
    return f"{fraction * 100:.0f} %"


E = TypeVar("E")


def evaluate_sorted(
    subjects: Iterable[Subject],
    evidence_by_user: Iterable[tuple[int, Sequence[E]]],
    completion_of: Callable[[E], Completion],
    rules: RuleSet,
    rollups: RollupBuilder,
) -> Iterator[tuple[Subject, Sequence[E], list[PersonStatus]]]:
    """The one evaluation path (a sync, ``status --as-of``, ``evaluate``): a merge-join of subjects
    and their evidence, both ordered by user id, adding each subject's statuses to ``rollups``.

    Streams: memory holds one person at a time. Evidence of users who are not subjects (erased,
    never placed) is skipped. ``E`` is whatever carries a completion (the ledger's rows with ids,
    or plain completions), so a caller gets back the items that decided each status.
    """
    groups = iter(evidence_by_user)
    pending = next(groups, None)
    previous: int | None = None
    for subject in subjects:
        if previous is not None and subject.user_id < previous:
            raise ValueError("evaluate_sorted needs subjects ordered by user id")
        previous = subject.user_id
        while pending is not None and pending[0] < subject.user_id:
            pending = next(groups, None)
        items: Sequence[E] = pending[1] if pending is not None and pending[0] == subject.user_id else ()
        statuses = rules.evaluate(subject, [completion_of(item) for item in items])
        rollups.add(subject, statuses)
        yield subject, items, statuses


def evaluate(
    subjects: Iterable[Subject],
    evidence: Iterable[Completion],
    mappings: Mappings,
    course_ids: Mapping[CourseRef, int],
    as_of: date,
) -> Evaluation:
    """Every subject x requirement and the department roll-ups, in one call (statuses by user id)."""
    by_user: dict[int, list[Completion]] = {}
    for completion in evidence:
        by_user.setdefault(completion.user_id, []).append(completion)
    rollups = RollupBuilder(mappings, as_of)
    statuses: list[PersonStatus] = []
    for _, _, person in evaluate_sorted(
        sorted(subjects, key=lambda s: s.user_id),
        sorted(by_user.items()),
        _same,
        RuleSet(mappings, course_ids, as_of),
        rollups,
    ):
        statuses.extend(person)
    return Evaluation(statuses, rollups.build())


def _same(completion: Completion) -> Completion:
    return completion


__all__ = [
    "DepartmentRollup",
    "StatusCounts",
    "Evaluation",
    "PersonStatus",
    "RANK",
    "RULES_VERSION",
    "RollupBuilder",
    "RuleSet",
    "Status",
    "TargetResult",
    "evaluate",
    "evaluate_person",
    "evaluate_sorted",
    "period_bounds",
]
