"""Rendering rows as an aligned text table, CSV or JSON.

Table widths are measured in terminal cells, not code points: Czech and Slovenian names carry
combining marks when not NFC-normalised, and East Asian wide characters take two cells.

Names and course titles come from Moodle, where anyone with a profile can type them, so output
must not let them act on their reader:

* tables: control characters (C0, DEL, C1, lone surrogates) and bidirectional overrides are shown
  escaped (``\x1b``, ``\u202e``), so a name cannot move the cursor, recolour or reorder the
  terminal (:func:`terminal_safe`, used for every cell);
* CSV: a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
  leading ``'`` (OWASP's advice against formula injection), so a spreadsheet shows it as text
  (:func:`spreadsheet_safe`). Only text cells: the numbers the connector writes (counts,
  shares) are never negative, and stay numbers.

CSV comes in two dialects (:data:`CSV_DIALECTS`): ``plain`` (comma, dot decimals, ``true``/``false``,
for scripts) and ``excel-cs`` (UTF-8 with a byte-order mark, ``;``, decimal comma, yes/no words),
which a Czech or Slovenian spreadsheet opens into the right columns with numbers as numbers.
Shares are rounded to 4 decimals in both.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from connector.i18n import _, format_day, format_moment, format_percent
from connector.reports.columns import DAY_KEYS, MOMENT_KEYS, spreadsheet_heading
from connector.reports.words import status_word

FORMATS = ("table", "csv", "json")
CSV_DIALECTS = ("plain", "excel-cs")
SHARE_DECIMALS = 4

_TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def terminal_safe(text: str) -> str:
    """``text`` with every character that could act on a terminal written as a visible escape."""
    return _TERMINAL_UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula, prefixed with ``'``; anything else as is."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def cell_width(text: str) -> int:
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - cell_width(text))
    return gap + text if right else text + gap


def _text(value: Any, key: str = "") -> str:
    if value is None:
        return ""
    if key in DAY_KEYS and isinstance(value, str):
        return format_day(value)
    if key in MOMENT_KEYS and isinstance(value, (str, int)):
        return format_moment(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return format_percent(value) if 0 <= value <= 1 else f"{value:g}"
    return str(value)


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """columns: (key, heading) pairs; headings are translated here (columns.py marks them).
    Numbers are right-aligned, shares shown as percentages in the reader's language."""
    if not rows:
        return _("(nothing to show)")
    texts = [
        [terminal_safe(unicodedata.normalize("NFC", _text(row.get(key), key))) for key, _ in columns]
        for row in rows
    ]
    headings = [terminal_safe(_(heading)) for _key, heading in columns]
    widths = [max([cell_width(h)] + [cell_width(t[i]) for t in texts]) for i, h in enumerate(headings)]
    numeric = [
        all(isinstance(row.get(key), (int, float)) or row.get(key) is None for row in rows)
        and any(isinstance(row.get(key), (int, float)) for row in rows)
        for key, _ in columns
    ]
    lines = [
        "  ".join(_pad(h, w, r) for h, w, r in zip(headings, widths, numeric, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for t in texts:
        lines.append("  ".join(_pad(v, w, r) for v, w, r in zip(t, widths, numeric, strict=True)).rstrip())
    return "\n".join(lines)


def _csv_cell(value: Any, dialect: str, key: str = "") -> Any:
    if value is None:
        return ""
    if key == "status" and dialect == "excel-cs":
        return status_word(value)
    if isinstance(value, bool):
        if dialect == "excel-cs":
            return _("yes") if value else _("no")
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(round(value, SHARE_DECIMALS))
        return text.replace(".", ",") if dialect == "excel-cs" else text
    return spreadsheet_safe(value)


def render_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], dialect: str = "plain") -> str:
    """CSV text; ``excel-cs`` starts with a byte-order mark so a spreadsheet reads it as UTF-8."""
    return "".join(csv_lines(rows, columns, dialect)).rstrip("\n")


# Rows rendered at once: a million-row export is written in chunks, never held whole.
CSV_CHUNK_ROWS = 2000
# Cells the csv module already writes exactly as `_csv_cell` would (None as empty), as long as no
# text cell starts like a formula and none holds a bare \r (`_needs_care` looks for those).
_AS_IS_TYPES = frozenset({str, int, type(None)})


def _needs_care(text: str, delimiter: str) -> bool:
    """Whether rendered CSV may hold a cell starting like a formula, or a bare \r (substring
    searches: many times faster than a regular expression over a million rows)."""
    if "\r" in text or text.startswith(_FORMULA_START) or text.startswith('"'):
        return True
    return any(
        before + quote + start in text
        for start in _FORMULA_START
        for before in (delimiter, "\n")
        for quote in ("", '"')
    )


def csv_lines(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], dialect: str = "plain"
) -> Iterator[str]:
    """``render_csv`` a chunk of rows at a time, each piece ending in a newline: an export of a
    million rows goes onto its file without being held in memory.

    A plain chunk of text and integers is rendered by the csv module in one go; only a chunk in
    which a cell needs care (a formula start, a bare carriage return, a yes/no, a share, a status
    word) is rendered again cell by cell by `_csv_cell`, the one set of rules."""
    delimiter = ";" if dialect == "excel-cs" else ","
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    keys = list(columns)
    if dialect == "excel-cs":  # for people: headings in their language (plain CSV keeps the keys)
        writer.writerow([spreadsheet_heading(k) for k in keys])
    else:
        writer.writerow(keys)
    yield ("\ufeff" if dialect == "excel-cs" else "") + _taken(out)
    chunk: list[tuple[Any, ...]] = []
    as_is = dialect == "plain"
    for row in rows:
        cells = tuple(map(row.get, keys))
        chunk.append(cells)
        if as_is and not _AS_IS_TYPES.issuperset(map(type, cells)):
            as_is = False
        if len(chunk) == CSV_CHUNK_ROWS:
            yield _render_chunk(chunk, keys, dialect, as_is, out, delimiter)
            chunk = []
            as_is = dialect == "plain"
    if chunk:
        yield _render_chunk(chunk, keys, dialect, as_is, out, delimiter)


def _render_chunk(
    chunk: list[tuple[Any, ...]], keys: list[str], dialect: str, as_is: bool, out: io.StringIO, delimiter: str
) -> str:
    if as_is:
        csv.writer(out, lineterminator="\n", delimiter=delimiter).writerows(chunk)
        text = _taken(out)
        if not _needs_care(text, delimiter):
            return text
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    # csv quotes a field holding the line terminator only; one holding a bare \r must be quoted too,
    # or a spreadsheet breaks the row there
    quoted = csv.writer(out, lineterminator="\n", delimiter=delimiter, quoting=csv.QUOTE_ALL)
    for cells in chunk:
        safe = [_csv_cell(value, dialect, key) for key, value in zip(keys, cells, strict=True)]
        (quoted if any(isinstance(v, str) and "\r" in v for v in safe) else writer).writerow(safe)
    return _taken(out)


def _taken(out: io.StringIO) -> str:
    """What ``out`` holds, leaving it empty."""
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def render_json(rows: Iterable[Any]) -> str:
    """``rows`` as one indented JSON array (what ``json_lines`` writes in pieces)."""
    return "".join(json_lines(rows))


JSON_CHUNK_ROWS = 2000
# json.dumps with ``indent`` runs the pure-Python encoder (about 30 us a row); the C encoder
# writes a flat row in one call when its separators carry the indentation of a row in the array
_FLAT_ROW = json.JSONEncoder(ensure_ascii=False, separators=(",\n    ", ": "), default=str)
_ANY_ROW = json.JSONEncoder(ensure_ascii=False, indent=2, default=str)
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def json_lines(rows: Iterable[Any]) -> Iterator[str]:
    """``json.dumps(list(rows), ensure_ascii=False, indent=2, default=str)``, the same bytes, a
    chunk of rows at a time: a million rows are never one string (nor one list)."""
    chunk: list[str] = []
    opened = False
    for row in rows:
        chunk.append(_json_row(row))
        if len(chunk) == JSON_CHUNK_ROWS:
            yield ("," if opened else "[") + "\n" + ",\n".join(chunk)
            opened, chunk = True, []
    if chunk:
        yield ("," if opened else "[") + "\n" + ",\n".join(chunk)
        opened = True
    yield "\n]" if opened else "[]"


def _json_row(row: Any) -> str:
    """One element of ``json_lines``' array, indented as ``json.dumps(..., indent=2)`` indents it."""
    if isinstance(row, dict) and row and _is_flat(row.values()):
        return "  {\n    " + _FLAT_ROW.encode(row)[1:-1] + "\n  }"
    # anything nested: the general encoder, each line moved in by one level (JSON text never
    # holds a raw newline inside a string, so its lines are its structure)
    return "\n".join("  " + line for line in _ANY_ROW.encode(row).split("\n"))


def _is_flat(values: Iterable[Any]) -> bool:
    values = list(values)
    if _SCALAR_TYPES.issuperset(map(type, values)):
        return True
    return not any(isinstance(v, list | tuple | dict) for v in values)
