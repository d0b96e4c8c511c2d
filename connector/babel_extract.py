"""A Babel extractor for the connector: gettext calls, plus the help texts Click shows.

Babel's Python extractor finds ``_()``, ``ngettext()`` and ``N_()``; command help lives in the
docstrings of click commands and in ``help="..."`` arguments, which it does not see. This one adds
them, cleaned as Click cleans them (so the msgid is what :mod:`connector.cli.translated` looks up).
babel.cfg names it; tests/test_i18n.py runs the same extraction to find untranslated messages.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from babel.messages.extract import extract_python


def extract(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str], options: Any
) -> Iterator[tuple[Any, ...]]:
    """(line, function, message, comments) tuples, as Babel's extractors yield them."""
    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    yield from _click_help(ast.parse(source))


def _click_help(tree: ast.Module) -> Iterator[tuple[int, str | None, str, list[str]]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(_is_click_command(d) for d in node.decorator_list):
            doc = ast.get_docstring(node)  # cleaned like inspect.cleandoc, as click does
            if doc:
                yield node.lineno, None, doc.partition("\f")[0], ["command help"]
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "help" and isinstance(keyword.value, ast.Constant):
                    if isinstance(keyword.value.value, str) and keyword.value.value:
                        yield node.lineno, None, keyword.value.value, ["option help"]


def _is_click_command(decorator: ast.expr) -> bool:
    func = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(func, ast.Attribute) and func.attr in ("command", "group")
