"""Coercion of answer values: JSON gives typed values, XML gives text, both give the same record.

Lenient readers (:func:`to_int`, :func:`as_str`, :func:`as_list`, ...) turn a missing or empty
value into a default; the strict ones (:func:`expect_dict`, :func:`expect_list`) raise a
:class:`MoodleProtocolError` naming the function when the shape is not what it promises.
"""

from __future__ import annotations

from typing import Any

from connector.errors import MoodleProtocolError
from connector.i18n import _
from connector.moodle.records import whole_number


def to_int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    return whole_number(value)


def opt_int(value: Any) -> int | None:
    return None if value is None or value == "" else whole_number(value)


def to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return bool(value)


def opt_bool(value: Any) -> bool | None:
    return None if value is None or value == "" else to_bool(value)


def opt_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def as_str(value: Any) -> str:
    return "" if value is None else str(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dict_rows(value: Any) -> list[dict[str, Any]]:
    """The structures of a list (anything else in it, or a non-list, left out)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def expect_dict(value: Any, function: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MoodleProtocolError(
            _("{function}: expected a structure, got {name}").format(
                function=function, name=type(value).__name__
            ),
            function=function,
        )
    return value


def expect_list(value: Any, function: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MoodleProtocolError(
            _("{function}: expected a list, got {name}").format(function=function, name=type(value).__name__),
            function=function,
        )
    return value
