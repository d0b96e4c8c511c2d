"""docs/architecture.md matches the tree, and imports point the way it says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import REPO

DOCUMENT = REPO / "docs" / "architecture.md"
PACKAGE = REPO / "connector"
# a path inside the package, as the document writes it in backticks or prose
NAMED_PATH = re.compile(r"connector/[\w./-]*[\w/]")
# tests/test_x.py or tests/test_x.py::test_name
NAMED_TEST = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")
# what each package or module may import of ours (besides itself); the translation hook is welcome anywhere
ALLOWED_IMPORTS: dict[str, set[str]] = {
    "connector.moodle": {"connector.errors", "connector.urls"},
    "connector.emulator": {"connector.moodle.records"},
    "connector.rules": {"connector.durations", "connector.mapping", "connector.moodle.records"},
    "connector.ledger": {"connector.errors", "connector.moodle.records"},
}
EVERYWHERE = {"connector.i18n"}


def _text() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_is_named_in_the_architecture_document() -> None:
    named = set(NAMED_PATH.findall(_text()))
    missing = [str(p.relative_to(REPO)) for p in _modules() if str(p.relative_to(REPO)) not in named]
    assert missing == [], "add a line for each to docs/architecture.md"


def test_every_path_the_document_names_exists() -> None:
    named = set(NAMED_PATH.findall(_text()))
    assert len(named) > len(_modules())
    assert sorted(n for n in named if not (REPO / n).exists()) == []


def test_every_test_the_document_names_exists() -> None:
    named = NAMED_TEST.findall(_text())
    assert named
    absent = []
    for file, name in named:
        path = REPO / file
        if not path.exists():
            absent.append(file)
        elif name and not re.search(rf"^def {name}\(", path.read_text(encoding="utf-8"), re.MULTILINE):
            absent.append(f"{file}::{name}")
    assert absent == []


def _imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "connector" or name.startswith("connector.")}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_imports_point_one_way() -> None:
    wrong: list[str] = []
    for path in _modules():
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for room, allowed in ALLOWED_IMPORTS.items():
            if not _within(module, room):
                continue
            for imported in _imports_of(path):
                if not any(_within(imported, ok) for ok in {room} | allowed | EVERYWHERE):
                    wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_the_import_check_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from connector.moodle.client import MoodleClient\nimport connector.sync\n")
    assert _imports_of(module) == {"connector.moodle.client", "connector.sync"}
