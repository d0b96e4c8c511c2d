"""Moodle's REST wire format: nested form parameters in, JSON or XML out, exception payloads."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

JSON_TYPE = "application/json"
XML_TYPE = "application/xml; charset=utf-8"


class WsException(Exception):
    """An answer Moodle gives as an exception payload (with HTTP 200)."""

    def __init__(self, exception: str, errorcode: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.errorcode = errorcode
        self.message = message


def invalid_parameter() -> WsException:
    return WsException("invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected")


def require_login() -> WsException:
    return WsException("require_login_exception", "requireloginerror", "Course or activity not accessible.")


def missing_record(table: str) -> WsException:
    return WsException(
        "dml_missing_record_exception", "invalidrecord", f"Can't find data record in database table {table}."
    )


@dataclass(frozen=True, slots=True)
class XmlOnly:
    """A key Moodle's XML writer emits from the return description while JSON leaves it out."""

    value: Any = None


# ----- parameters in -----------------------------------------------------------------------------
def decode_form(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``options[0][name]=x`` -> {"options": [{"name": "x"}]} (PHP's bracket convention)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        path = _split_key(key)
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    # the top level holds the named parameters: only nested keys may be list indexes
    return {name: _lists_from_numeric_dicts(value) for name, value in root.items()}


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket or not rest.endswith("]"):
        return [key]
    return [head, *rest[:-1].split("][")]


def _lists_from_numeric_dicts(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_numeric_dicts(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Param:
    """One parameter of a function's description: its type, and whether and how it may be absent."""

    def __init__(self, kind: Any, *, required: bool = True, default: Any = None) -> None:
        self.kind = kind  # "int" | "text" | "bool" | [Param] | {name: Param}
        self.required = required
        self.default = default


def validate(description: Mapping[str, Param], raw: Any) -> dict[str, Any]:
    """Moodle's validate_parameters: types cleaned, defaults filled, unknown keys refused."""
    return _clean_struct(description, raw)


def _clean(param: Param, raw: Any) -> Any:
    kind = param.kind
    if isinstance(kind, dict):
        return _clean_struct(kind, raw)
    if isinstance(kind, list):
        if raw == "" or raw is None:
            return []
        if isinstance(raw, dict):  # PHP arrays with gaps or string keys
            raw = list(raw.values())
        if not isinstance(raw, list):
            raise invalid_parameter()
        return [_clean(kind[0], item) for item in raw]
    if isinstance(raw, (dict, list)):
        raise invalid_parameter()
    text = str(raw)
    if kind == "int":
        stripped = text.strip()
        if not stripped.lstrip("-").isdigit():
            raise invalid_parameter()
        return int(stripped)
    if kind == "bool":
        if text.lower() in ("1", "true"):
            return True
        if text.lower() in ("0", "false", ""):
            return False
        raise invalid_parameter()
    return text


def _clean_struct(description: Mapping[str, Param], raw: Any) -> dict[str, Any]:
    if raw == "" or raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid_parameter()
    unknown = set(raw) - set(description)
    if unknown:
        raise invalid_parameter()
    cleaned: dict[str, Any] = {}
    for name, param in description.items():
        if name in raw:
            cleaned[name] = _clean(param, raw[name])
        elif param.required:
            raise invalid_parameter()
        else:
            cleaned[name] = param.default
    return cleaned


# ----- answers out -------------------------------------------------------------------------------
def render_json(value: Any) -> bytes:
    # PHP's json_encode escapes non-ASCII and slashes; clients must cope with both.
    text = json.dumps(_drop_xml_only(value), ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


def _drop_xml_only(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_xml_only(v) for k, v in value.items() if not isinstance(v, XmlOnly)}
    if isinstance(value, list):
        return [_drop_xml_only(v) for v in value]
    return value


def render_xml(value: Any) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n']
    if value is not None:
        _xml_value(value, parts)
    parts.append("</RESPONSE>\n")
    return "".join(parts).encode("utf-8")


def _xml_value(value: Any, parts: list[str]) -> None:
    if isinstance(value, XmlOnly):
        value = value.value
    if isinstance(value, dict):
        parts.append("<SINGLE>\n")
        for key, item in value.items():
            parts.append(f'<KEY name="{escape(key)}">')
            _xml_value(item, parts)
            parts.append("</KEY>\n")
        parts.append("</SINGLE>\n")
    elif isinstance(value, list):
        parts.append("<MULTIPLE>\n")
        for item in value:
            _xml_value(item, parts)
        parts.append("</MULTIPLE>\n")
    elif value is None:
        parts.append('<VALUE null="null"/>\n')
    else:
        parts.append(f"<VALUE>{_xml_text(value)}</VALUE>\n")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return escape(str(value), {'"': "&quot;"})


def render_exception(error: WsException, xml: bool) -> bytes:
    if not xml:
        return render_json(
            {"exception": error.exception, "errorcode": error.errorcode, "message": error.message}
        )
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        f'<EXCEPTION class="{escape(error.exception)}">\n'
        f"<ERRORCODE>{_xml_text(error.errorcode)}</ERRORCODE>\n"
        f"<MESSAGE>{_xml_text(error.message)}</MESSAGE>\n"
        "</EXCEPTION>\n"
    ).encode()
