"""The Moodle URL as it may be shown: never with credentials or anything that looks like a token.

The connector sends the token only in the POST body, so a URL has no reason to carry a secret;
one that does is refused (:func:`url_secret_problem`), and every URL printed or stored goes
through :func:`redact_url` so that a secret cannot leak even from a URL that slipped past.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from connector.i18n import _

# Moodle's tokens are 32 hex digits; other secrets are long runs of letters and digits mixed.
_TOKEN_LIKE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-]{20,}$|^[0-9a-fA-F]{32}$")
_SECRET_KEYS = re.compile(r"(?i)token|key|secret|pass|auth|sig")


def redact_url(url: str) -> str:
    """``url`` with user:password, the query, the fragment and token-like path parts as ``***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unreadable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = ("***@" if "@" in parts.netloc else "") + host + port
    path = "/".join("***" if _TOKEN_LIKE.match(segment) else segment for segment in parts.path.split("/"))
    return urlunsplit(
        (parts.scheme, netloc, path, "***" if parts.query else "", "***" if parts.fragment else "")
    )


def url_secret_problem(url: str) -> str | None:
    """Why ``url`` must not be used (it carries credentials or a token), or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None  # unreadable: the caller's own checks say so
    shown = redact_url(url)
    if "@" in parts.netloc:
        return _(
            "url {url} carries a user name or password; write the site root without them "
            "(the connector authenticates with the token file)"
        ).format(url=shown)
    query_keys = [pair.split("=", 1)[0] for pair in parts.query.split("&") if pair]
    if any(_SECRET_KEYS.search(key) for key in query_keys) or any(
        _TOKEN_LIKE.match(piece) for piece in re.split(r"[/=&;]", parts.path + "/" + parts.query)
    ):
        return _(
            "url {url} looks like it holds a token; write only the site root, e.g. "
            "https://moodle.example.org, and put the token in the token file"
        ).format(url=shown)
    return None
