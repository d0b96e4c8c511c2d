"""Tables line up in terminal cells for Czech and Slovenian names, whatever their Unicode form."""

from __future__ import annotations

import json
import unicodedata

from connector.reports.formats import cell_width, render_csv, render_json, render_table


def test_decomposed_diacritics_take_one_cell_each() -> None:
    composed = "Odbor sociálních věcí"
    decomposed = unicodedata.normalize("NFD", composed)
    assert len(decomposed) > len(composed)
    assert cell_width(decomposed) == cell_width(composed) == len(composed)


def test_table_columns_align_with_diacritics() -> None:
    rows = [{"d": unicodedata.normalize("NFD", "Služba za digitalizacijo"), "n": 7},
            {"d": "Odbor IT", "n": 12}]
    lines = render_table(rows, [("d", "department"), ("n", "count")]).splitlines()
    assert {cell_width(line) for line in (lines[0], lines[2], lines[3])} == {cell_width(lines[1])}
    assert lines[2].endswith(" 7") and lines[3].endswith("12")  # numbers right-aligned


def test_shares_as_percentages_and_booleans_as_words() -> None:
    text = render_table([{"share": 0.5, "met": True}, {"share": None, "met": False}],
                        [("share", "share"), ("met", "met")])
    assert "50%" in text and "yes" in text and "no" in text


def test_csv_and_json_keep_unicode() -> None:
    rows = [{"department": "Mestna občina Ljubljana", "share": 0.25, "x": None}]
    assert render_csv(rows, ["department", "share", "x"]).splitlines() == [
        "department,share,x", "Mestna občina Ljubljana,0.25,"]
    assert json.loads(render_json(rows)) == rows
    assert "občina" in render_json(rows)
