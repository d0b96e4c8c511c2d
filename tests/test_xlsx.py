"""Spreadsheets that open right: the xlsx export read back with openpyxl, and the CSV dialects."""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from connector.reports.formats import render_csv
from connector.reports.xlsx import Column, Sheet, workbook_bytes
from tests.report_helpers import connector, synced_demo


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with synced_demo(tmp_path_factory.mktemp("xlsx")) as folder:
        yield folder


@pytest.fixture(scope="module")
def workbook(site: Path) -> openpyxl.Workbook:
    result = connector(site, "export", "--format", "xlsx", "-o", str(site / "export.xlsx"))
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.startswith("wrote ") and result.stderr.endswith(f" rows to {site / 'export.xlsx'}\n")
    return openpyxl.load_workbook(site / "export.xlsx")


def test_one_sheet_per_view_with_frozen_header_filter_and_widths(workbook: openpyxl.Workbook) -> None:
    assert workbook.sheetnames == ["statuses", "departments"]  # in the reader's language (English here)
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}{sheet.max_row}"
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.column_dimensions["A"].width > 8
    statuses = workbook["statuses"]
    assert [c.value for c in statuses[1]] == [  # headings for people; CSV and JSON keep the keys
        "username",
        "idnumber",
        "department id",
        "department",
        "requirement",
        "status",
        "valid until",
        "decided by course",
        "completed (UTC)",
        "organisation id",
        "organisation",
        "evidence source",
        "full name",
        "e-mail",
    ]
    names = [c.value for c in statuses["D"][1:] if c.value]
    assert statuses.column_dimensions["D"].width == min(max(len(n) for n in names), 48) + 2


def test_dates_are_dates_and_shares_percentages(site: Path, workbook: openpyxl.Workbook) -> None:
    statuses = workbook["statuses"]
    rows = list(statuses.iter_rows(min_row=2))
    valid = [r[6] for r in rows if r[6].value is not None]
    assert valid and all(type(c.value) is datetime and c.number_format == "yyyy-mm-dd" for c in valid)
    done = [r[8] for r in rows if r[8].value is not None]
    assert done and all(isinstance(c.value, datetime) and c.number_format == "yyyy-mm-dd hh:mm" for c in done)

    departments = workbook["departments"]
    header = [c.value for c in departments[1]]
    first = {h: c for h, c in zip(header, departments[2], strict=True)}
    assert (first["department id"].value, first["requirement"].value) == ("jablonec", "ai-ured")
    assert first["in scope"].value == 21 and first["in scope"].data_type == "n"
    assert first["share"].value == pytest.approx(14 / 21) and first["share"].number_format == "0.0%"
    itsec = {h: c for h, c in zip(header, departments[4], strict=True)}
    assert itsec["requirement"].value == "itsec-cz" and itsec["targets met"].value is False
    assert itsec["targets met"].data_type == "b"


def test_the_workbook_is_private(site: Path, workbook: openpyxl.Workbook) -> None:
    assert stat.S_IMODE((site / "export.xlsx").stat().st_mode) == 0o600


def test_xlsx_needs_a_file(site: Path) -> None:
    result = connector(site, "export", "--format", "xlsx")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: --format xlsx needs a file to write to\n  hint: add -o FILE.xlsx\n"


def test_text_cells_cannot_become_formulas_or_break_the_file() -> None:
    hostile = [{"name": '=HYPERLINK("http://x","y")', "n": 3}, {"name": "Eve\x1b[2J\x07", "n": None}]
    data = workbook_bytes([Sheet("people", (Column("name"), Column("n", "int")), hostile)])
    sheet = openpyxl.load_workbook(io.BytesIO(data))["people"]
    assert sheet["A2"].value == '\'=HYPERLINK("http://x","y")' and sheet["A2"].data_type == "s"
    assert sheet["A3"].value == "Eve\\x1b[2J\\x07"
    assert sheet["B2"].value == 3 and sheet["B3"].value is None


def test_dates_from_iso_text() -> None:
    rows = [{"d": "2026-06-15", "t": "2024-07-15T10:00:00Z"}]
    data = workbook_bytes([Sheet("x", (Column("d", "date"), Column("t", "datetime")), rows)])
    sheet = openpyxl.load_workbook(io.BytesIO(data))["x"]
    assert sheet["A2"].value.date() == date(2026, 6, 15)
    assert sheet["B2"].value == datetime(2024, 7, 15, 10, 0)


# -- CSV --------------------------------------------------------------------------------------------
def test_plain_csv_writes_booleans_as_true_false_and_rounds_shares(site: Path) -> None:
    result = connector(site, "status", "--format", "csv", "--department", "jablonec.informatika")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "department,requirement,in_scope,compliant,expiring,expired,missing,share,targets_met,organisation",
        "jablonec.informatika,ai-ured,10,8,0,0,2,0.8,,jablonec",
        "jablonec.informatika,digital-advisor,1,1,0,0,0,1.0,,jablonec",
        "jablonec.informatika,itsec-cz,11,5,1,2,3,0.5455,false,jablonec",
    ]


def test_excel_cs_status_has_bom_semicolons_decimal_commas_and_words(site: Path) -> None:
    result = connector(
        site, "status", "--format", "csv", "--dialect", "excel-cs", "--department", "jablonec.informatika"
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "\ufeffdepartment id;requirement;in scope;compliant;expiring;expired;missing;share;targets met;"
        "organisation id",
        "jablonec.informatika;ai-ured;10;8;0;0;2;0,8;;jablonec",
        "jablonec.informatika;digital-advisor;1;1;0;0;0;1,0;;jablonec",
        "jablonec.informatika;itsec-cz;11;5;1;2;3;0,5455;no;jablonec",
    ]


def test_excel_cs_export_file_starts_with_a_bom(site: Path) -> None:
    target = site / "export.csv"
    result = connector(site, "export", "--dialect", "excel-cs", "-o", str(target))
    assert result.exit_code == 0
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfusername;idnumber;department id;")
    assert ";Odbor financí;itsec-cz;".encode() in raw


def test_excel_cs_keeps_formula_protection_and_quotes_semicolons() -> None:
    text = render_csv([{"a": "=1+1", "b": "Odbor; sekce", "c": 0.25}], ["a", "b", "c"], "excel-cs")
    assert text == '\ufeffa;b;c\n\'=1+1;"Odbor; sekce";0,25'


def test_a_sheet_longer_than_a_worksheet_is_refused_and_no_file_is_left(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Excel holds 1,048,576 rows a sheet: one more would be a workbook that opens cut or not at all."""
    from connector.reports import xlsx

    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)
    target = site / "too-long.xlsx"
    result = connector(site, "--lang", "cs", "export", "--format", "xlsx", "-o", str(target))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "chyba: stavy: více řádků, než pojme list Excelu (nejvýše 5)\n"
        "  rada: použijte raději CSV (--format csv), které počet řádků neomezuje\n"
    )
    assert not target.exists() and not list(site.glob(".too-long.xlsx.*"))


def test_column_widths_come_from_the_headings_and_the_first_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file states widths before its rows, which are written as they are read."""
    from connector.reports import xlsx

    monkeypatch.setattr(xlsx, "WIDTH_SAMPLE_ROWS", 2)
    rows = [{"name": "Ana"}, {"name": "Jana Nováková"}, {"name": "Maximilián " * 10}]
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_bytes([Sheet("p", (Column("name"),), iter(rows))])))[
        "p"
    ]
    assert sheet.column_dimensions["A"].width == len("Jana Nováková") + 2
    assert [c.value for c in sheet["A"]] == ["name", "Ana", "Jana Nováková", "Maximilián " * 10]
    assert sheet.auto_filter.ref == "A1:A4"


def test_text_that_looks_like_an_excel_error_stays_text() -> None:
    """openpyxl would write "#N/A" as an error value: a name or number from Moodle stays text."""
    rows = [{"name": code} for code in ("#N/A", "#REF!", "#DIV/0!", "#NAME?", "#hashtag")]
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_bytes([Sheet("p", (Column("name"),), rows)])))["p"]
    assert [(c.value, c.data_type) for c in sheet["A"][1:]] == [
        ("#N/A", "s"),
        ("#REF!", "s"),
        ("#DIV/0!", "s"),
        ("#NAME?", "s"),
        ("#hashtag", "s"),
    ]


def test_a_refused_workbook_leaves_no_temporary_file_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """openpyxl writes each sheet to a temporary file first: it holds names and e-mail addresses."""
    from openpyxl.worksheet import _writer

    from connector.errors import ConnectorError
    from connector.reports import xlsx

    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)
    before = set(_writer.ALL_TEMP_FILES)
    with pytest.raises(ConnectorError):
        workbook_bytes([Sheet("p", (Column("name"),), ({"name": f"Jana {n}"} for n in range(5)))])
    left = set(_writer.ALL_TEMP_FILES) - before
    assert left == set()


def test_a_sheet_known_to_be_too_long_is_refused_before_a_row_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connector.errors import ConnectorError
    from connector.reports import xlsx

    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)
    read: list[int] = []

    def rows() -> Iterator[dict[str, object]]:
        for n in range(4):
            read.append(n)
            yield {"name": n}

    with pytest.raises(ConnectorError, match="more rows than an Excel worksheet holds"):
        workbook_bytes([Sheet("due", (Column("name"),), rows(), 4)])
    assert read == []
