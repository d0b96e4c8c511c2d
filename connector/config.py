"""connector.toml + environment -> Config.

Which file: the first of ``--config``, ``CONNECTOR_CONFIG``, ``./connector.toml``,
``$XDG_CONFIG_HOME/connector/connector.toml`` (``~/.config`` when unset) and
``/etc/connector/connector.toml``. A file named by ``--config`` or ``CONNECTOR_CONFIG`` must exist;
the others are used when they do.

Precedence, highest first: environment (MOODLE_URL, MOODLE_TOKEN, MOODLE_TOKEN_FILE,
CONNECTOR_LEDGER, CONNECTOR_MAPPINGS), then the file, then defaults. The token is never taken
from a command-line argument (process arguments are visible to every user of the machine):
it comes from, first found wins, MOODLE_TOKEN, MOODLE_TOKEN_FILE, the systemd credential
``$CREDENTIALS_DIRECTORY/moodle-token`` (``LoadCredential=moodle-token:...``) or ``token_file``
in the config file.

Relative paths in the file are relative to the file's own directory, so a cron job does not depend
on its working directory.
"""

from __future__ import annotations

import grp
import logging
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.errors import ConfigError, Problem
from connector.i18n import N_, _
from connector.moodle.functions import COMPLETION_PATHS as MOODLE_COMPLETION_PATHS
from connector.shares import parse_share
from connector.suggest import did_you_mean
from connector.urls import url_secret_problem

log = logging.getLogger("connector.config")

DEFAULT_CONFIG_NAME = "connector.toml"
SYSTEM_CONFIG = Path("/etc/connector") / DEFAULT_CONFIG_NAME
CREDENTIAL_NAME = "moodle-token"  # the name given in the systemd unit's LoadCredential=
COMPLETION_PATHS = ("auto", *MOODLE_COMPLETION_PATHS)  # auto: the cheapest the site offers

# section -> key -> expected python type(s)
_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "moodle": {
        "url": (str,),
        "token_file": (str,),
        "format": (str,),
        "timeout_s": (int, float),
        "concurrency": (int,),
        "report_id": (int,),
        "report_per_page": (int,),
        "report_timezone": (str,),
        "report_lookback_hours": (int, float),
        "completion_path": (str,),
        "allow_insecure_http": (bool,),
        "ca_bundle": (str,),
        "page_size": (int,),
        "max_response_mb": (int, float),
    },
    "ledger": {"path": (str,), "group": (str,)},
    "mappings": {"dir": (str,)},
    "organisation": {"timezone": (str,)},
    "sync": {
        "full_every_days": (int,),
        "max_unplaced": (str, int, float),
        "max_minutes": (int, float),
        "profiles_every_run": (bool,),
    },
    "privacy": {"personal_fields": (list,)},
    "needs": {"feedback_course": (int,), "feedback_cmid": (int,), "feedback_question": (str,)},
}
# Personal fields beyond the username the ledger may keep ([privacy] personal_fields); the full
# name was always kept, the e-mail address only when listed.
PERSONAL_FIELDS = ("fullname", "email")
DEFAULT_PERSONAL_FIELDS = ("fullname",)


@dataclass(frozen=True)
class Config:
    moodle_url: str | None = None
    token: str | None = field(default=None, repr=False)
    ledger_path: Path = Path("compliance.sqlite")
    mappings_dir: Path = Path("mappings")
    timezone: str = "Europe/Prague"
    format: str = "json"
    timeout_s: float = 30.0
    concurrency: int = 4
    page_size: int = 1000
    report_id: int | None = None
    # the most rows a report page holds: a sync keeps a few pages ahead of the one it stages, so
    # this bounds its memory (2000: ~25 MB less than 5000 at the same speed, bench_sync large)
    report_per_page: int = 2000
    report_timezone: str | None = None
    # A nightly delta read starts this long before the last good run: Moodle's completion task
    # writes the time the criteria were met, which is earlier than the run of cron that made
    # the completion visible (a stalled cron, hours late); a day covers that, and a full read
    # every full_every_days catches anything older.
    report_lookback_hours: float = 24
    completion_path: str = "auto"
    allow_insecure_http: bool = False
    ca_bundle: str | None = None
    full_every_days: int = 7
    max_unplaced: float = 0.05  # a sync warns when a larger share of active people is in no department
    max_response_mb: float = 64
    max_minutes: float | None = None  # a whole sync's deadline; None: none
    # An incremental report-path run reads only the profiles its rows name; everyone's at each
    # full run. True: everyone's every run (a department move seen the next night, not within
    # full_every_days; 25 more calls per 100,000 people).
    profiles_every_run: bool = False
    personal_fields: tuple[str, ...] = DEFAULT_PERSONAL_FIELDS  # what the ledger keeps of people
    token_file: Path | None = None  # where the token came from, when from a file
    ledger_group: str | None = None  # readers' group: the ledger becomes 0640 for it, else 0600
    source: Path | None = None
    source_origin: str = ""  # how ``source`` was found, e.g. "--config" or "the working directory"
    searched: tuple[Path, ...] = ()  # the places looked at when no file was named
    # the yearly needs survey (a Moodle Feedback activity): course id, view.php?id=<cmid>, question label
    needs_feedback_course: int = 1
    needs_feedback_cmid: int | None = None
    needs_feedback_question: str = "area"

    def describe_source(self) -> str:
        """Which config file is in use and why, or that none was found (for `connector doctor`)."""
        if self.source is not None:
            return _("{path} (from {origin})").format(path=self.source, origin=_(self.source_origin))
        places = ", ".join(str(p) for p in self.searched)
        return _("no config file found (looked for {places}); defaults and environment in use").format(
            places=places
        )

    def require_moodle(self) -> tuple[str, str]:
        """The Moodle URL and token, or a ConfigError that says where to put them."""
        problems = []
        where = str(self.source) if self.source else "environment"
        if not self.moodle_url:
            problems.append(
                Problem(
                    where,
                    "moodle.url",
                    _("no Moodle URL configured"),
                    _("set [moodle] url in connector.toml or the MOODLE_URL environment variable"),
                )
            )
        if not self.token:
            problems.append(
                Problem(
                    where,
                    "moodle.token_file",
                    _("no web-service token configured"),
                    _(
                        "put the token in a file readable only by the connector's user and set "
                        "[moodle] token_file or MOODLE_TOKEN_FILE (or MOODLE_TOKEN)"
                    ),
                )
            )
        if problems:
            raise ConfigError(problems)
        assert self.moodle_url and self.token
        return self.moodle_url, self.token

    def client_settings(self) -> Any:
        """ClientSettings for the Moodle client (imported here to keep config importable alone)."""
        from connector.moodle.settings import ClientSettings

        url, token = self.require_moodle()
        exposure = self.token_file_exposure()
        if exposure:  # every command that sends the token says so, as long as it lasts
            log.warning("%s", exposure)
        return ClientSettings(
            url=url,
            token=token,
            format="xml" if self.format == "xml" else "json",  # loading refused any other value
            timeout_s=self.timeout_s,
            max_concurrency=self.concurrency,
            allow_insecure_http=self.allow_insecure_http,
            ca_bundle=self.ca_bundle,
            max_response_bytes=int(self.max_response_mb * 2**20),
            run_deadline_s=None if self.max_minutes is None else self.max_minutes * 60,
        )

    def token_file_exposure(self) -> str | None:
        """What is wrong when the token file can be read by other users than its owner, or None."""
        if self.token_file is None or self.token is None:
            return None
        try:
            mode = stat.S_IMODE(self.token_file.stat().st_mode)
        except OSError:
            return None
        if not mode & 0o077:
            return None
        group, others = bool(mode & 0o070), bool(mode & 0o007)
        who = (
            _("its group and other users")
            if group and others
            else (_("its group") if group else _("other users"))
        )
        return _(
            "the token file {path} can be read by {who} (mode {mode:04o}); "
            "anyone who reads it can act as the connector in Moodle: chmod 600 {path}"
        ).format(path=self.token_file, who=who, mode=mode)


def find_config(
    path: Path | None, env: Mapping[str, str], cwd: Path | None = None
) -> tuple[Path | None, str, tuple[Path, ...]]:
    """(the config file to read or None, how it was found, the places searched).

    ``path`` is the ``--config`` value. A file given by --config or CONNECTOR_CONFIG that does not
    exist is a ConfigError: a typo there must not silently fall back to another file.
    """
    if path is not None or env.get("CONNECTOR_CONFIG"):
        origin = "--config" if path is not None else "CONNECTOR_CONFIG"
        given = path if path is not None else Path(env["CONNECTOR_CONFIG"])
        given = given.expanduser()
        if not _exists(given):
            raise ConfigError(
                Problem(
                    str(given),
                    "",
                    _("config file not found"),
                    _("check the path given to {origin}").format(origin=origin),
                )
            )
        return given, origin, (given,)
    here = cwd / DEFAULT_CONFIG_NAME if cwd is not None else Path(DEFAULT_CONFIG_NAME)
    candidates: list[tuple[Path, str]] = [(here, N_("the working directory"))]
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is invalid and ignored
        candidates.append((Path(xdg) / "connector" / DEFAULT_CONFIG_NAME, "XDG_CONFIG_HOME"))
    elif env.get("HOME"):
        candidates.append(
            (
                Path(env["HOME"]) / ".config" / "connector" / DEFAULT_CONFIG_NAME,
                N_("the user's configuration directory"),
            )
        )
    candidates.append((SYSTEM_CONFIG, N_("the system configuration")))
    searched = tuple(p for p, _ in candidates)
    for candidate, origin in candidates:
        if _exists(candidate):
            return candidate, origin, searched
    return None, "", searched


def _exists(path: Path) -> bool:
    """Like Path.exists(), but a place this user may not look into is a clear ConfigError."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise ConfigError(
            Problem(
                str(path),
                "",
                _("this user may not read it (permission denied)"),
                _(
                    "it holds no secret (the token has its own file): make it and its "
                    "directory readable for this user's group, or pass --config"
                ),
            )
        ) from None
    return True


def load_config(
    path: Path | None = None, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Config:
    """Find the config file (see ``find_config``), read it and the environment.

    Every problem is collected and raised at once as a ConfigError.
    """
    env = os.environ if env is None else env
    found, origin, searched = find_config(path, env, cwd)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    source: Path | None = None
    if found is not None:
        source = found
        values = _read_file(found, problems)
    base = source.resolve().parent if source else (cwd or Path.cwd())

    def rel(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    config = Config(source=source, source_origin=origin, searched=searched)
    moodle = values.get("moodle", {})
    updates: dict[str, Any] = {}
    if "url" in moodle:
        updates["moodle_url"] = moodle["url"]
    for key, attr in (
        ("format", "format"),
        ("timeout_s", "timeout_s"),
        ("concurrency", "concurrency"),
        ("report_id", "report_id"),
        ("report_per_page", "report_per_page"),
        ("report_timezone", "report_timezone"),
        ("report_lookback_hours", "report_lookback_hours"),
        ("completion_path", "completion_path"),
        ("allow_insecure_http", "allow_insecure_http"),
        ("page_size", "page_size"),
        ("max_response_mb", "max_response_mb"),
    ):
        if key in moodle:
            updates[attr] = moodle[key]
    if moodle.get("ca_bundle"):
        updates["ca_bundle"] = str(rel(moodle["ca_bundle"]))
    if "path" in values.get("ledger", {}):
        updates["ledger_path"] = rel(values["ledger"]["path"])
    if values.get("ledger", {}).get("group"):
        updates["ledger_group"] = values["ledger"]["group"]
    if "dir" in values.get("mappings", {}):
        updates["mappings_dir"] = rel(values["mappings"]["dir"])
    if "timezone" in values.get("organisation", {}):
        updates["timezone"] = values["organisation"]["timezone"]
    if "full_every_days" in values.get("sync", {}):
        updates["full_every_days"] = values["sync"]["full_every_days"]
    if "max_unplaced" in values.get("sync", {}):
        try:
            updates["max_unplaced"] = parse_share(values["sync"]["max_unplaced"])
        except ValueError as exc:
            problems.append(Problem(str(source), "sync.max_unplaced", str(exc)))
    if "max_minutes" in values.get("sync", {}):
        updates["max_minutes"] = values["sync"]["max_minutes"]
    if "profiles_every_run" in values.get("sync", {}):
        updates["profiles_every_run"] = values["sync"]["profiles_every_run"]
    if "personal_fields" in values.get("privacy", {}):
        fields = values["privacy"]["personal_fields"]
        unknown = [f for f in fields if f not in PERSONAL_FIELDS]
        for name in unknown:
            problems.append(
                Problem(
                    str(source),
                    "privacy.personal_fields",
                    _("unknown field {name!r}").format(name=name),
                    _("the ledger may keep: {join}").format(join=", ".join(PERSONAL_FIELDS)),
                )
            )
        if not unknown:
            updates["personal_fields"] = tuple(dict.fromkeys(fields))
    for key in ("feedback_course", "feedback_cmid", "feedback_question"):
        if key in values.get("needs", {}):
            updates[f"needs_{key}"] = values["needs"][key]

    token_file = moodle.get("token_file")
    token_file_path = rel(token_file) if token_file else None
    if env.get("MOODLE_URL"):
        updates["moodle_url"] = env["MOODLE_URL"]
    if env.get("MOODLE_TOKEN_FILE"):
        token_file_path = Path(env["MOODLE_TOKEN_FILE"]).expanduser()
    if env.get("CONNECTOR_LEDGER"):
        updates["ledger_path"] = Path(env["CONNECTOR_LEDGER"]).expanduser()
    if env.get("CONNECTOR_MAPPINGS"):
        updates["mappings_dir"] = Path(env["CONNECTOR_MAPPINGS"]).expanduser()
    credential = _credential_path(env)
    if credential is not None and not env.get("MOODLE_TOKEN_FILE"):
        token_file_path = credential  # systemd's LoadCredential= beats the file's token_file
    if env.get("MOODLE_TOKEN"):
        updates["token"] = env["MOODLE_TOKEN"].strip()
    elif token_file_path is not None:
        updates["token"] = _read_token(token_file_path, str(source or "environment"), problems)
        updates["token_file"] = token_file_path

    config = replace(config, **updates)
    _check_values(config, str(source or "environment"), problems)
    _check_url(config, "environment" if env.get("MOODLE_URL") else str(source or "environment"), problems)
    if problems:
        raise ConfigError(problems)
    return config


def _read_file(path: Path, problems: list[Problem]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        problems.append(
            Problem(
                str(path), "", _("not valid TOML: {exc}").format(exc=exc), _("fix the syntax at that line")
            )
        )
        return {}
    except RecursionError:  # tomllib recurses once per nested array or inline table
        problems.append(
            Problem(
                str(path),
                "",
                _("values are nested too deeply to read"),
                _("look for a long run of '[' or '{'"),
            )
        )
        return {}
    except OSError as exc:
        problems.append(Problem(str(path), "", _("cannot read: {strerror}").format(strerror=exc.strerror)))
        return {}
    clean: dict[str, Any] = {}
    for section, body in data.items():
        if section not in _SCHEMA:
            problems.append(Problem(str(path), section, _("unknown section"), _suggest(section, _SCHEMA)))
            continue
        if not isinstance(body, dict):
            problems.append(
                Problem(
                    str(path),
                    section,
                    _("must be a table"),
                    _("write it as [{section}]").format(section=section),
                )
            )
            continue
        for key, value in body.items():
            expected = _SCHEMA[section].get(key)
            clean.setdefault(section, {})
            if expected is None:
                problems.append(
                    Problem(str(path), f"{section}.{key}", _("unknown key"), _suggest(key, _SCHEMA[section]))
                )
            elif not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
                names = " or ".join(t.__name__ for t in expected)
                problems.append(
                    Problem(
                        str(path),
                        f"{section}.{key}",
                        _("must be {names}, not {name}").format(names=names, name=type(value).__name__),
                    )
                )
            else:
                clean[section][key] = value
    return clean  # only well-typed values go on to be checked and used


def _suggest(word: str, known: Mapping[str, Any]) -> str:
    return did_you_mean(word, known, _("known: {names}").format(names=", ".join(sorted(known))))


def _read_token(path: Path, where: str, problems: list[Problem]) -> str | None:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(
            Problem(
                where,
                "moodle.token_file",
                _("cannot read the token file {path}: {strerror}").format(path=path, strerror=exc.strerror),
                _("create it with the token from Moodle, mode 0600"),
            )
        )
        return None
    if not token:
        problems.append(
            Problem(where, "moodle.token_file", _("the token file {path} is empty").format(path=path))
        )
        return None
    return token


def _credential_path(env: Mapping[str, str]) -> Path | None:
    """$CREDENTIALS_DIRECTORY/moodle-token when systemd passed that credential to the service."""
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    candidate = Path(directory) / CREDENTIAL_NAME
    return candidate if candidate.is_file() else None


def _check_values(config: Config, where: str, problems: list[Problem]) -> None:
    if config.ledger_group is not None:
        try:
            grp.getgrnam(config.ledger_group)
        except KeyError:
            problems.append(
                Problem(
                    where,
                    "ledger.group",
                    _("there is no group '{ledger_group}' on this machine").format(
                        ledger_group=config.ledger_group
                    ),
                    _("create it (groupadd) or fix the name"),
                )
            )
    if config.format not in ("json", "xml"):
        problems.append(
            Problem(
                where,
                "moodle.format",
                _("'{value_format}' is not a format").format(value_format=config.format),
                _("use 'json' or 'xml'"),
            )
        )
    if config.completion_path not in COMPLETION_PATHS:
        problems.append(
            Problem(
                where,
                "moodle.completion_path",
                _("'{completion_path}' is not a completion path").format(
                    completion_path=config.completion_path
                ),
                _("use one of {values}").format(values=", ".join(COMPLETION_PATHS)),
            )
        )
    if config.concurrency < 1 or config.concurrency > 64:
        problems.append(
            Problem(
                where,
                "moodle.concurrency",
                _("must be between 1 and 64"),
                _("match it to the Moodle server's PHP workers; 4 is a safe start"),
            )
        )
    if config.page_size < 1 or config.report_per_page < 1:
        problems.append(Problem(where, "moodle.page_size", _("page sizes must be positive")))
    if config.timeout_s <= 0:
        problems.append(Problem(where, "moodle.timeout_s", _("must be positive")))
    if config.ca_bundle and not Path(config.ca_bundle).is_file():
        problems.append(
            Problem(
                where,
                "moodle.ca_bundle",
                _("no CA certificate file at {ca_bundle}").format(ca_bundle=config.ca_bundle),
                _("give the path of the PEM file holding the site's CA certificate"),
            )
        )
    if not 1 <= config.report_lookback_hours <= 24 * 30:
        problems.append(
            Problem(
                where,
                "moodle.report_lookback_hours",
                _("must be between 1 and 720 (hours)"),
                _("24 covers a completion task that ran late; the full read catches anything older"),
            )
        )
    if config.full_every_days < 0:
        problems.append(Problem(where, "sync.full_every_days", _("must be 0 (never) or more")))
    if not config.max_response_mb > 0:
        problems.append(
            Problem(
                where,
                "moodle.max_response_mb",
                _("must be positive"),
                _("64 holds a report page of about 100,000 rows"),
            )
        )
    if config.max_minutes is not None and not config.max_minutes > 0:
        problems.append(
            Problem(
                where,
                "sync.max_minutes",
                _("must be positive"),
                _("leave it out for no limit on a run's duration"),
            )
        )
    for key, zone in (
        ("organisation.timezone", config.timezone),
        ("moodle.report_timezone", config.report_timezone),
    ):
        if zone is None:
            continue
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                Problem(
                    where,
                    key,
                    _("unknown time zone '{zone}'").format(zone=zone),
                    _("use an IANA name such as Europe/Prague or Europe/Ljubljana"),
                )
            )


def _check_url(config: Config, where: str, problems: list[Problem]) -> None:
    """A URL carrying credentials is refused before anything can print, send or store it."""
    if not config.moodle_url:
        return
    problem = url_secret_problem(config.moodle_url)
    if problem:
        key = "MOODLE_URL" if where == "environment" else "moodle.url"
        problems.append(Problem(where, key, problem))
