"""No SQL outside connector/ledger/: every other module goes through the ledger's API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import connector

ROOT = Path(connector.__file__).parent
LEDGER = ROOT / "ledger"

# A statement, not a word in prose: "PRAGMA integrity_check on the copy" in a help text is fine.
SQL = re.compile(
    r"\bSELECT\b.+\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\b(?:CREATE|DROP)\s+(?:TEMP\s+)?(?:TABLE|INDEX|VIEW)\b|\bPRAGMA\s+\w+\s*(?:=|\(|$)|\bBEGIN\s+IMMEDIATE\b",
    re.S,
)
DB_CALLS = {"execute", "executemany", "executescript", "execute_returning_dicts", "query"}
DB_ATTRIBUTES = {"db", "conn"}
DB_MODULES = {"sqlite3.connect", "sqlite_utils"}


def sql_in(source: str) -> list[str]:
    """What in this module's source talks to a database directly: (line: what) entries."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"{node.lineno}: SQL text {node.value[:40]!r}")
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS
        ):
            found.append(f"{node.lineno}: .{node.func.attr}()")
        elif isinstance(node, ast.Attribute) and node.attr in DB_ATTRIBUTES:
            found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Attribute) and ast.unparse(node) in DB_MODULES:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"{node.lineno}: import {n}" for n in names if n.split(".")[0] == "sqlite_utils"]
    return found


def test_no_module_outside_the_ledger_package_holds_sql() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted(ROOT.rglob("*.py"))
        if LEDGER not in path.parents and (found := sql_in(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_check_finds_each_way_sql_could_come_back() -> None:
    sneaked = {
        'ledger.db.execute("SELECT 1 FROM people")': 3,  # .db, .execute(), SQL text
        'cur.executemany("UPDATE people SET active = 0 WHERE user_id = ?", rows)': 2,
        'x = f"DELETE FROM {table} WHERE user_id = ?"': 1,
        'q = "SELECT department_id FROM people"': 1,
        "c = sqlite3.connect(path)": 1,
        "import sqlite_utils": 1,
        'conn.execute("PRAGMA busy_timeout = 5")': 2,
    }
    for source, count in sneaked.items():
        assert len(sql_in(source)) == count, source
    # prose and error handling are not SQL
    assert sql_in('"""PRAGMA integrity_check on the copy; select the rows from a list"""') == []
    assert sql_in("try:\n    pass\nexcept sqlite3.Error:\n    pass") == []
    assert sql_in('parser.select("x")') == []
