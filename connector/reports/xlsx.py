"""Excel workbooks that open right: typed cells, frozen headers, filters, readable widths.

One sheet per view. Dates are dates and shares percentages (number formats), so a spreadsheet in
any locale shows them its own way and can sort and sum them. Text cells go through
:func:`connector.reports.formats.spreadsheet_safe` (no formula from a name) and are stored as text;
characters the file format cannot hold are shown escaped, like in the terminal tables.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain, islice
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from connector.errors import ConnectorError
from connector.i18n import _, format_number
from connector.reports import columns
from connector.reports.columns import spreadsheet_heading
from connector.reports.formats import spreadsheet_safe, terminal_safe
from connector.reports.words import status_word

Kind = Literal["text", "int", "percent", "date", "datetime", "bool", "status"]
NUMBER_FORMATS: dict[str, str] = {"percent": "0.0%", "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm"}
MAX_WIDTH = 48  # characters; longer names wrap in the cell's own view rather than widen the sheet
WIDTH_SAMPLE_ROWS = 1000  # a column is as wide as the longest of its heading and its first rows
MAX_ROWS = 1_048_575  # a worksheet holds 1,048,576 rows, one of them the headings


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    kind: Kind = "text"


@dataclass(frozen=True, slots=True)
class Sheet:
    title: str  # at most 31 characters (Excel's limit)
    columns: Sequence[Column]
    rows: Iterable[dict[str, Any]]
    length: int | None = None  # how many rows, when known: one too long is refused before any is written


STATUS_SHEET_COLUMNS = (
    Column("department"),
    Column("department_name"),
    Column("requirement"),
    Column("requirement_title"),
    Column("in_scope", "int"),
    Column("compliant", "int"),
    Column("expiring", "int"),
    Column("expired", "int"),
    Column("missing", "int"),
    Column("grace", "int"),
    Column("exempt", "int"),
    Column("holders", "int"),
    Column("share", "percent"),
    Column("targets_met", "bool"),
    Column("organisation"),
    Column("organisation_name"),
)
_EXPORT_KINDS: dict[str, Kind] = {
    "valid_until": "date",
    "decided_by_completed_at": "datetime",
    "status": "status",
}
EXPORT_SHEET_COLUMNS = tuple(Column(key, _EXPORT_KINDS.get(key, "text")) for key in columns.EXPORT.csv)


def _typed(value: Any, kind: Kind) -> Any:
    if value is None or value == "":
        return None
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "datetime" and isinstance(value, str):
        # the export's UTC timestamps ("...Z"); Excel has no time zones, the heading's key says UTC
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    if kind in ("int", "percent", "bool"):
        return value
    if kind == "status":  # the status word in the reader's language (the key stays in CSV and JSON)
        value = status_word(value)
    text = ILLEGAL_CHARACTERS_RE.sub(lambda m: terminal_safe(m.group()), str(value))
    return spreadsheet_safe(text)


def _shown_width(value: Any, kind: Kind) -> int:
    if value is None:
        return 0
    if kind in ("date", "percent"):
        return 10
    if kind == "datetime":
        return 16
    return len(str(value))


def workbook_bytes(sheets: Sequence[Sheet]) -> bytes:
    """The workbook as the bytes of an .xlsx file; each sheet's rows are read once, as they come
    (openpyxl's write-only mode: time and memory grow with the rows, not with their square)."""
    book = Workbook(write_only=True)
    try:
        for spec in sheets:
            _write_sheet(book, spec)
    except BaseException:
        # openpyxl writes each sheet to a temporary file (personal data) that only saving removes
        for sheet in book.worksheets:
            with contextlib.suppress(Exception):
                sheet.close()
            writer = getattr(sheet, "_writer", None)
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.cleanup()
        raise
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write_sheet(book: Workbook, spec: Sheet) -> None:
    if spec.length is not None and spec.length > MAX_ROWS:
        raise _too_long(spec)
    sheet = book.create_sheet(spec.title[:31])
    kinds = [c.kind for c in spec.columns]
    rows = (_typed_row(row, spec.columns) for row in spec.rows)
    # the file states its column widths before its rows: measured on the first rows
    sample = list(islice(rows, WIDTH_SAMPLE_ROWS))
    headings = [spreadsheet_heading(c.key) for c in spec.columns]
    widths = [len(h) for h in headings]
    for values in sample:
        widths = [max(w, _shown_width(v, k)) for w, v, k in zip(widths, values, kinds, strict=True)]
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(width, MAX_WIDTH) + 2
    sheet.freeze_panes = "A2"
    sheet.append([_cell(sheet, h, bold=True) for h in headings])
    written = 0
    for values in chain(sample, rows):
        written += 1
        if written > MAX_ROWS:
            raise _too_long(spec)
        sheet.append([_styled(sheet, v, k) for v, k in zip(values, kinds, strict=True)])
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(spec.columns))}{written + 1}"


def _too_long(spec: Sheet) -> ConnectorError:
    return ConnectorError(
        _("{sheet}: more rows than an Excel worksheet holds (at most {n})").format(
            sheet=spec.title, n=format_number(MAX_ROWS)
        ),
        hint=_("write CSV instead (--format csv): it has no row limit"),
    )


def _typed_row(row: dict[str, Any], columns: Sequence[Column]) -> list[Any]:
    return [_typed(row.get(c.key), c.kind) for c in columns]


def _styled(sheet: Any, value: Any, kind: Kind) -> Any:
    """A value as written: plain when openpyxl writes it right by itself, else a styled cell."""
    if value is None:
        return None
    if kind in NUMBER_FORMATS:
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = NUMBER_FORMATS[kind]
        return cell
    if kind in ("text", "status") and (value.startswith("=") or value in ERROR_CODES):
        # openpyxl would write "=..." as a formula (spreadsheet_safe leaves none) and "#N/A" as
        # an error value: a name or number from Moodle stays the text it was
        return _cell(sheet, value)
    return value


def _cell(sheet: Any, text: str, *, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, text)
    cell.data_type = "s"
    if bold:
        cell.font = Font(bold=True)
    return cell
