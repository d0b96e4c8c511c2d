"""Rendering rows as an aligned text table, CSV or JSON.

Table widths are measured in terminal cells, not code points: Czech and Slovenian names carry
combining marks when not NFC-normalised, and East Asian wide characters take two cells.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Sequence
from typing import Any

FORMATS = ("table", "csv", "json")


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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.0%}" if 0 <= value <= 1 else f"{value:g}"
    return str(value)


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """columns: (key, heading) pairs. Numbers are right-aligned, shares shown as percentages."""
    if not rows:
        return "(nothing to show)"
    texts = [[unicodedata.normalize("NFC", _text(row.get(key))) for key, _ in columns] for row in rows]
    headings = [heading for _, heading in columns]
    widths = [max([cell_width(h)] + [cell_width(t[i]) for t in texts]) for i, h in enumerate(headings)]
    numeric = [all(isinstance(row.get(key), (int, float)) or row.get(key) is None for row in rows)
               and any(isinstance(row.get(key), (int, float)) for row in rows)
               for key, _ in columns]
    lines = ["  ".join(_pad(h, w, r) for h, w, r in zip(headings, widths, numeric)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for t in texts:
        lines.append("  ".join(_pad(v, w, r) for v, w, r in zip(t, widths, numeric)).rstrip())
    return "\n".join(lines)


def render_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return out.getvalue().rstrip("\n")


def render_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(rows), ensure_ascii=False, indent=2, default=str)
