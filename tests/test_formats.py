"""Tables line up in terminal cells for Czech and Slovenian names, whatever their Unicode form."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.reports.formats import (
    cell_width,
    json_lines,
    render_csv,
    render_json,
    render_table,
    spreadsheet_safe,
    terminal_safe,
)


def test_decomposed_diacritics_take_one_cell_each() -> None:
    composed = "Odbor sociálních věcí"
    decomposed = unicodedata.normalize("NFD", composed)
    assert len(decomposed) > len(composed)
    assert cell_width(decomposed) == cell_width(composed) == len(composed)


def test_table_columns_align_with_diacritics() -> None:
    rows = [
        {"d": unicodedata.normalize("NFD", "Služba za digitalizacijo"), "n": 7},
        {"d": "Odbor IT", "n": 12},
    ]
    lines = render_table(rows, [("d", "department"), ("n", "count")]).splitlines()
    assert {cell_width(line) for line in (lines[0], lines[2], lines[3])} == {cell_width(lines[1])}
    assert lines[2].endswith(" 7") and lines[3].endswith("12")  # numbers right-aligned


def test_shares_as_percentages_and_booleans_as_words() -> None:
    text = render_table(
        [{"share": 0.5, "met": True}, {"share": None, "met": False}], [("share", "share"), ("met", "met")]
    )
    assert "50%" in text and "yes" in text and "no" in text


def test_csv_and_json_keep_unicode() -> None:
    rows = [{"department": "Mestna občina Ljubljana", "share": 0.25, "x": None}]
    assert render_csv(rows, ["department", "share", "x"]).splitlines() == [
        "department,share,x",
        "Mestna občina Ljubljana,0.25,",
    ]
    assert json.loads(render_json(rows)) == rows
    assert "občina" in render_json(rows)


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x")', "+420 123", "-1+2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_start_a_formula_are_neutralised(cell: str) -> None:
    text = render_csv([{"name": cell, "n": 3}], ["name", "n"])
    assert text.splitlines()[0] == "name,n"
    assert list(csv.reader(io.StringIO(text)))[1] == ["'" + cell, "3"]


def test_csv_keeps_numbers_and_plain_text_as_they_are() -> None:
    assert spreadsheet_safe(-3) == -3 and spreadsheet_safe(0.5) == 0.5  # the connector's own numbers
    assert render_csv([{"a": "Jan = Novák", "b": 12}], ["a", "b"]) == "a,b\nJan = Novák,12"


def test_table_cells_show_control_characters_escaped() -> None:
    hostile = "Eve\x1b[2J\x1b]0;owned\x07\u202eevil\x9b\x7f\nnext"
    assert terminal_safe(hostile) == "Eve\\x1b[2J\\x1b]0;owned\\x07\\u202eevil\\x9b\\x7f\\x0anext"
    table = render_table([{"name": hostile, "n": 1}], [("name", "name\x1b"), ("n", "n")])
    assert table.splitlines()[2] == "Eve\\x1b[2J\\x1b]0;owned\\x07\\u202eevil\\x9b\\x7f\\x0anext  1"
    assert table.splitlines()[0].startswith("name\\x1b")
    assert all(ord(c) >= 0x20 for c in table.replace("\n", ""))  # nothing reaches the terminal raw
    assert terminal_safe("Žluťoučký kůň 😀") == "Žluťoučký kůň 😀"  # ordinary text is untouched


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.dictionaries(
            st.text(max_size=5) | st.integers() | st.booleans() | st.none(), _JSON_VALUES, max_size=5
        )
        | _JSON_VALUES,
        max_size=7,
    ),
    chunk=st.integers(1, 4),
)
def test_json_lines_writes_the_bytes_json_dumps_writes(rows: list[object], chunk: int) -> None:
    """What scripts parse (and diff) stays byte for byte what it was when it was one json.dumps."""
    from connector.reports import formats

    expected = json.dumps(rows, ensure_ascii=False, indent=2, default=str)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "JSON_CHUNK_ROWS", chunk)
        assert "".join(json_lines(iter(rows))) == render_json(rows) == expected


def test_json_lines_hold_one_chunk_of_rows_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.reports import formats

    monkeypatch.setattr(formats, "JSON_CHUNK_ROWS", 2)
    read: list[int] = []

    def rows() -> Iterator[dict[str, object]]:
        for n in range(3):
            read.append(n)
            yield {"n": n, "name": "Žofie"}

    pieces = json_lines(rows())
    assert (next(pieces), read) == (
        '[\n  {\n    "n": 0,\n    "name": "Žofie"\n  },\n  {\n    "n": 1,\n    "name": "Žofie"\n  }',
        [0, 1],
    )
    assert list(pieces) == [',\n  {\n    "n": 2,\n    "name": "Žofie"\n  }', "\n]"]
    assert list(json_lines([])) == ["[]"]
