"""Evidence from outside Moodle: attendance lists of in-person sessions and outside certificates.

A CSV file (UTF-8, ``,`` or ``;``) with a header naming its columns:

* ``username`` or ``idnumber``: who (a person the ledger knows);
* ``course`` (a course key of the mappings, ``[course.KEY]``) or ``requirement`` (a requirement
  id): what the evidence is for;
* ``date``: when (YYYY-MM-DD; not after today);
* ``provider``: who held the session or issued the certificate;
* ``expiry`` (optional): the certificate's own end of validity, capping the requirement's.

The whole file is checked before anything is stored: every problem is listed with its line and
column, and one problem stores nothing. Rows count for the rules like a Moodle completion dated at
noon UTC of that day (the source is ``import:<provider>``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from connector.errors import ConnectorError, ExitStatus
from connector.i18n import _, ngettext
from connector.ledger import EvidenceItem
from connector.ledger.imports import ImportedRow
from connector.mapping import CourseRef, Mappings
from connector.moodle.records import Completion

IMPORT_PRECISION_S = 86400  # a day: coarser than any Moodle time, so Moodle's wins a tie
WHO = ("username", "idnumber")
WHAT = ("course", "requirement")
ALL_COLUMNS = (*WHO, *WHAT, "date", "provider", "expiry")


class ImportRefused(ConnectorError):
    """The file cannot be imported: every problem, each with its line and column."""

    exit_code = ExitStatus.BAD_INPUT


def file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def parse_import(
    content: bytes,
    file_name: str,
    mappings: Mappings,
    people: tuple[dict[str, int], dict[str, int]],
    today: date,
) -> list[ImportedRow]:
    """Every row of the file, validated; ImportRefused listing every problem otherwise."""
    problems: list[str] = []
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            _("{file_name} is not UTF-8 text (byte {start})").format(file_name=file_name, start=exc.start),
            hint=_("save it from the spreadsheet as 'CSV UTF-8'"),
        ) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ImportRefused(
            _("{file_name} is empty").format(file_name=file_name),
            hint=_("the first line names the columns: {join}").format(join=", ".join(ALL_COLUMNS)),
        )
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    unknown = [h for h in header if h not in ALL_COLUMNS]
    for name in unknown:
        problems.append(
            _("line 1, column '{name}': unknown column (known: {known})").format(
                name=name, known=", ".join(ALL_COLUMNS)
            )
        )
    for group in (WHO, WHAT):
        present = [c for c in group if c in header]
        if len(present) != 1:
            problems.append(
                _("line 1: needs exactly one of the columns {first} or {second}").format(
                    first=group[0], second=group[1]
                )
            )
    for needed in ("date", "provider"):
        if needed not in header:
            problems.append(_("line 1: the column '{name}' is missing").format(name=needed))
    if problems:
        raise _refused(file_name, problems)
    by_username, by_idnumber = people
    course_keys = {c.name for c in mappings.courses}
    requirement_ids = {r.id for r in mappings.requirements}
    rows: list[ImportedRow] = []
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                _("line {number}: {values} values for {columns} columns").format(
                    number=number, values=len(values), columns=len(header)
                )
            )
            continue
        row = {h: v.strip() for h, v in zip(header, values, strict=True)}
        where = _("line {number}, column").format(number=number)
        user_id: int | None = None
        if "username" in row:
            user_id = by_username.get(row["username"])
            if user_id is None:
                problems.append(
                    _("{where} 'username': no person '{username}' in the ledger").format(
                        where=where, username=row["username"]
                    )
                )
        else:
            user_id = by_idnumber.get(row["idnumber"])
            if user_id is None:
                problems.append(
                    _("{where} 'idnumber': no person with idnumber '{idnumber}' in the ledger").format(
                        where=where, idnumber=row["idnumber"]
                    )
                )
        course = row.get("course")
        requirement = row.get("requirement")
        if course is not None and course not in course_keys:
            problems.append(
                _("{where} 'course': '{course}' is not a course key of the mappings").format(
                    where=where, course=course
                )
            )
        if requirement is not None and requirement not in requirement_ids:
            problems.append(
                _("{where} 'requirement': '{requirement}' is not a requirement id").format(
                    where=where, requirement=requirement
                )
            )
        on = _date(row["date"], f"{where} 'date'", problems)
        if on is not None and on > today:
            problems.append(
                _("{where} 'date': {on} is after today ({today})").format(where=where, on=on, today=today)
            )
        if not row["provider"]:
            problems.append(
                _("{where} 'provider': empty; name who held the session or issued the certificate").format(
                    where=where
                )
            )
        expiry = _date(row["expiry"], f"{where} 'expiry'", problems) if row.get("expiry") else None
        if on is not None and expiry is not None and expiry < on:
            problems.append(
                _("{where} 'expiry': {expiry} is before the date {on}").format(
                    where=where, expiry=expiry, on=on
                )
            )
        if user_id is not None and on is not None:
            rows.append(ImportedRow(number, user_id, course, requirement, on, row["provider"], expiry))
    if problems:
        raise _refused(file_name, problems)
    if not rows:
        raise ImportRefused(_("{file_name} has no rows below its header").format(file_name=file_name))
    return rows


def _date(value: str, where: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(_("{where}: '{value}' is not a date (YYYY-MM-DD)").format(where=where, value=value))
        return None


def _refused(file_name: str, problems: Sequence[str]) -> ImportRefused:
    count = len(problems)
    listed = "\n".join(f"  {file_name}: {p}" for p in problems)
    return ImportRefused(
        ngettext(
            "{file_name}: {count} problem, nothing was imported:\n{listed}",
            "{file_name}: {count} problems, nothing was imported:\n{listed}",
            count,
        ).format(file_name=file_name, count=count, listed=listed),
        hint=_("correct the file and import it again; the whole file is imported or nothing"),
    )


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportRefused(
            _("cannot read {path}: {strerror}").format(path=path, strerror=exc.strerror)
        ) from None


# -- evaluation ------------------------------------------------------------------------------------
def completion_of(row: Mapping[str, Any], course_ids: Mapping[str, int]) -> Completion | None:
    """An imported row as the rules see it; None when its course key no longer resolves."""
    course_id = 0
    if row["course"] is not None:
        found = course_ids.get(row["course"])
        if found is None:
            return None
        course_id = found
    on = date.fromisoformat(row["completed_on"])
    return Completion(
        row["user_id"],
        course_id,
        int(datetime.combine(on, time(12), tzinfo=UTC).timestamp()),
        f"import:{row['provider']}",
        IMPORT_PRECISION_S,
        requirement_id=row["requirement_id"],
        expires_on=date.fromisoformat(row["expires_on"]) if row["expires_on"] else None,
    )


def course_ids_by_key(mappings: Mappings, course_ids: Mapping[CourseRef, int]) -> dict[str, int]:
    """Mapped course key -> Moodle course id (keys whose course is not in Moodle left out)."""
    return {c.name: course_ids[c.ref] for c in mappings.courses if c.ref in course_ids}


def merged_evidence(
    moodle: Iterable[tuple[int, list[EvidenceItem]]],
    imported: Iterable[Mapping[str, Any]],
    course_ids: Mapping[str, int],
) -> Iterator[tuple[int, list[EvidenceItem]]]:
    """Moodle's evidence by user with the imported rows added (item id: minus the row id); both
    streams and the result are ordered by user id."""
    extra: dict[int, list[EvidenceItem]] = {}
    for row in imported:
        completion = completion_of(row, course_ids)
        if completion is not None:
            extra.setdefault(row["user_id"], []).append(EvidenceItem(-int(row["id"]), completion))
    pending = sorted(extra)
    index = 0
    for user_id, items in moodle:
        while index < len(pending) and pending[index] < user_id:
            yield pending[index], extra[pending[index]]
            index += 1
        if index < len(pending) and pending[index] == user_id:
            index += 1
            yield user_id, items + extra[user_id]
        else:
            yield user_id, items
    for user_id in pending[index:]:
        yield user_id, extra[user_id]
