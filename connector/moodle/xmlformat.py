"""Moodle's XML response format -> the same generic values the JSON format decodes to.

Moodle's REST server answers in XML unless ``moodlewsrestformat=json`` is sent:

    <RESPONSE>            one of SINGLE / MULTIPLE / VALUE, or nothing (a null result)
    <SINGLE>              a structure: <KEY name="..."> children, each holding one value
    <MULTIPLE>            a list of SINGLE or VALUE elements
    <VALUE>text</VALUE>   a scalar, always text; <VALUE null="null"/> is null
    <EXCEPTION class=..>  an error: ERRORCODE, MESSAGE and (with debugging on) DEBUGINFO

XML carries no types, so scalars come back as ``str`` (``None`` for null); the typed fetchers in
``api.py`` coerce them by the known shape of each function's result. An exception document is
turned into the same dict Moodle's JSON format sends (``exception``, ``errorcode``, ``message``,
``debuginfo``), so one piece of code maps both to typed errors.
"""

from __future__ import annotations

from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from connector.i18n import _

_STRUCTURE_TAGS = ("SINGLE", "MULTIPLE", "VALUE")


class XmlFormatError(ValueError):
    """The body is not a Moodle XML document (truncated, HTML, or another shape)."""


def parse_xml_response(text: str) -> Any:
    """Decode a Moodle XML body into dict/list/str/None, or an exception dict."""
    try:
        # strip_whitespace=False keeps values such as " a " intact; the newlines Moodle puts
        # between elements then show up as '#text' entries, which are skipped below.
        document = xmltodict.parse(
            text, strip_whitespace=False, force_list=("KEY", "SINGLE", "VALUE", "MULTIPLE")
        )
    except (ExpatError, ValueError) as error:
        raise XmlFormatError(
            _("body is not well-formed XML ({name})").format(name=error.__class__.__name__)
        ) from None
    if "EXCEPTION" in document:
        return _exception_to_dict(document["EXCEPTION"])
    if "RESPONSE" not in document:
        raise XmlFormatError(_("unexpected XML root element {next!r}").format(next=next(iter(document), "?")))
    return _container_value(document["RESPONSE"])


def _exception_to_dict(node: Any) -> dict[str, Any]:
    node = node if isinstance(node, dict) else {}
    payload = {
        "exception": node.get("@class", ""),
        "errorcode": _plain_text(node.get("ERRORCODE")),
        "message": _plain_text(node.get("MESSAGE")),
    }
    debuginfo = _plain_text(node.get("DEBUGINFO"))
    if debuginfo:
        payload["debuginfo"] = debuginfo  # like JSON: only present with debugging on
    return payload


def _plain_text(node: Any) -> str:
    if node is None:
        return ""
    if isinstance(node, str):
        return node.strip()
    if isinstance(node, dict):
        return str(node.get("#text", "")).strip()
    return ""


def _container_value(node: Any) -> Any:
    """The value held by RESPONSE or KEY: its single SINGLE/MULTIPLE/VALUE child, or None."""
    if not isinstance(node, dict):
        return None  # <RESPONSE/> or an empty KEY: nothing was returned
    for tag in _STRUCTURE_TAGS:
        if tag in node:
            children = node[tag]
            if len(children) != 1:
                raise XmlFormatError(
                    _("expected one {tag} element, found {n}").format(tag=tag, n=len(children))
                )
            return _element_value(tag, children[0])
    return None


def _element_value(tag: str, node: Any) -> Any:
    if tag == "VALUE":
        return _scalar(node)
    if tag == "SINGLE":
        return _single(node)
    return _multiple(node)


def _scalar(node: Any) -> str | None:
    if node is None:
        return ""  # <VALUE></VALUE> is the empty string, not null
    if isinstance(node, str):
        return node
    if node.get("@null") == "null":
        return None
    return str(node.get("#text", ""))


def _single(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    result: dict[str, Any] = {}
    for key in node.get("KEY", []):
        if not isinstance(key, dict) or "@name" not in key:
            raise XmlFormatError(_("KEY element without a name attribute"))
        result[key["@name"]] = _container_value(key)
    return result


def _multiple(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    items: list[Any] = []
    for tag in ("SINGLE", "VALUE", "MULTIPLE"):
        items.extend(_element_value(tag, child) for child in node.get(tag, []))
    return items
