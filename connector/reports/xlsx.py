"""Excel workbooks that open right: typed cells, frozen headers, filters, readable widths.

One sheet per view. Dates are dates and shares percentages (number formats), so a spreadsheet in
any locale shows them its own way and can sort and sum them. Text cells go through
:func:`connector.reports.formats.spreadsheet_safe` (no formula from a name) and are stored as text;
characters the file format cannot hold are shown escaped, like in the terminal tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from connector.reports import columns
from connector.reports.columns import spreadsheet_heading
from connector.reports.formats import spreadsheet_safe, terminal_safe
from connector.reports.words import status_word

Kind = Literal["text", "int", "percent", "date", "datetime", "bool", "status"]
NUMBER_FORMATS: dict[str, str] = {"percent": "0.0%", "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm"}
MAX_WIDTH = 48  # characters; longer names wrap in the cell's own view rather than widen the sheet


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    kind: Kind = "text"


@dataclass(frozen=True, slots=True)
class Sheet:
    title: str  # at most 31 characters (Excel's limit)
    columns: Sequence[Column]
    rows: Iterable[dict[str, Any]]


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
    """The workbook as the bytes of an .xlsx file."""
    book = Workbook()
    book.remove(book.active)
    for spec in sheets:
        sheet = book.create_sheet(spec.title[:31])
        headings = [spreadsheet_heading(c.key) for c in spec.columns]
        widths = [len(h) for h in headings]
        sheet.append(headings)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in spec.rows:
            values = [_typed(row.get(c.key), c.kind) for c in spec.columns]
            sheet.append(values)
            for i, (value, column) in enumerate(zip(values, spec.columns, strict=True)):
                cell = sheet.cell(row=sheet.max_row, column=i + 1)
                if column.kind in ("text", "status") and value is not None:
                    cell.data_type = "s"  # never a formula, whatever the text starts with
                elif column.kind in NUMBER_FORMATS:
                    cell.number_format = NUMBER_FORMATS[column.kind]
                widths[i] = max(widths[i], _shown_width(value, column.kind))
        for i, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = min(width, MAX_WIDTH) + 2
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(spec.columns))}{max(sheet.max_row, 1)}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
