"""Moodle's form encoding of web-service parameters (what PHP decodes into nested arrays)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.i18n import _


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Moodle's nested form encoding: ``options[0][name]``, ``values[0]``, ``context[x]``.

    Booleans become "1"/"0"; None values are left out (Moodle then applies its default).
    """
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        _encode_into(pairs, str(key), value)
    return pairs


def _encode_into(pairs: list[tuple[str, str]], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _encode_into(pairs, f"{name}[{key}]", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _encode_into(pairs, f"{name}[{index}]", item)
    elif isinstance(value, bool):
        pairs.append((name, "1" if value else "0"))
    elif isinstance(value, (int, float, str)):
        pairs.append((name, str(value)))
    else:
        raise TypeError(
            _("cannot encode parameter {name} of type {name2}").format(name=name, name2=type(value).__name__)
        )


def build_form(
    function: str, params: Mapping[str, Any] | None, *, token: str, fmt: str
) -> list[tuple[str, str]]:
    """The whole POST body in the order Moodle's own clients send it."""
    form = [("wstoken", token), ("wsfunction", function)]
    if fmt == "json":
        form.append(("moodlewsrestformat", "json"))  # XML is the server's default
    return form + encode_params(params)
