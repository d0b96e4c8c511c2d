"""How to reach one Moodle site: :class:`ClientSettings`, checked at once, and the URL policy
(https unless the host is loopback or plain http is allowed; no credentials, query or fragment).

The token never appears in ``repr`` or in a message: URLs are shown through
:func:`connector.urls.redact_url`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from connector.errors import ConfigError
from connector.i18n import N_, _
from connector.urls import redact_url, url_secret_problem

ENDPOINT_PATH = "/webservice/rest/server.php"

TOKEN_HINT = N_(  # translated where shown: _(TOKEN_HINT)
    "create a web-service token for the connector's user in Moodle under Site administration > "
    "Server > Web services > Manage tokens, and set it as MOODLE_TOKEN"
)


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientSettings:
    """How to reach one Moodle site. The token is kept out of ``repr``."""

    url: str
    token: str = field(repr=False)
    format: Literal["json", "xml"] = "json"
    timeout_s: float = 30.0
    max_concurrency: int = 4
    retry_attempts: int = 5
    retry_max_wait_s: float = 30.0
    retry_total_s: float = 120.0
    allow_insecure_http: bool = False
    ca_bundle: str | None = None
    max_response_bytes: int = 64 * 2**20
    run_deadline_s: float | None = None  # counted from the client's creation; None: no limit

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming every bad value at once."""
        problems = [*self._url_problems(), *self._value_problems()]
        if problems:
            raise ConfigError(
                _("Moodle connection settings are invalid: {problems}").format(problems="; ".join(problems))
            )

    def _url_problems(self) -> list[str]:
        try:
            parts = urlsplit(self.url)
            parts.hostname  # noqa: B018 (raises on a malformed IPv6 host)
        except ValueError as exc:
            return [
                _(
                    "url {url!r} cannot be read ({exc}); write the site root, e.g. https://moodle.example.org"
                ).format(url=self.shown_url, exc=exc)
            ]
        secret = url_secret_problem(self.url)
        if secret:
            return [secret]
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return [
                _("url {url!r} must be the site root, e.g. https://moodle.example.org").format(
                    url=self.shown_url
                )
            ]
        if parts.query or parts.fragment:
            return [_("url must not contain a query string or fragment")]
        if parts.scheme == "http" and not self.allow_insecure_http and not is_loopback_host(parts.hostname):
            return [
                _(
                    "plain http:// to {host} would send the token unencrypted; use https:// "
                    "or, on a trusted network only, allow_insecure_http = true"
                ).format(host=parts.hostname)
            ]
        return []

    def _value_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.token or not self.token.strip():
            problems.append(_("token is empty ({hint})").format(hint=_(TOKEN_HINT)))
        if self.format not in ("json", "xml"):
            problems.append(_("format must be 'json' or 'xml', not {format!r}").format(format=self.format))
        if self.timeout_s <= 0:
            problems.append(_("{key} must be positive").format(key="timeout_s"))
        if self.max_concurrency < 1:
            problems.append(_("{key} must be at least 1").format(key="max_concurrency"))
        if self.retry_attempts < 1:
            problems.append(_("{key} must be at least 1").format(key="retry_attempts"))
        if self.retry_max_wait_s < 0 or self.retry_total_s < 0:
            problems.append(_("retry waits must not be negative"))
        if self.max_response_bytes < 1:
            problems.append(_("{key} must be positive").format(key="max_response_mb"))
        if self.run_deadline_s is not None and self.run_deadline_s <= 0:
            problems.append(_("{key} must be positive").format(key="max_minutes"))
        return problems

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + ENDPOINT_PATH

    @property
    def shown_url(self) -> str:
        """The URL as messages show it: never with credentials or token-like parts."""
        return redact_url(self.url)
