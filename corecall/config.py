"""Configuration: one TOML file plus secrets from the environment.

Where the file is: ``corecall --config FILE``, else ``$CORECALL_CONFIG``, else
``<user config dir>/corecall/config.toml``. When that default file does not exist the
built-in defaults apply: an SQLite store in the per-user data directory and the simulated
PBX on both routes, so nothing can be dialed by accident.

Secrets may live in the environment instead of the file (the environment wins):
``CORECALL_BOT_TOKEN``, ``CORECALL_API_ID``, ``CORECALL_API_HASH``.
``CORECALL_DATA_DIR`` moves the data directory. Plugin-owned keys (``[plugins.NAME]``, the
extra keys of ``[store]`` and of ``[trunks.X]``) follow one rule, ``CORECALL_<TABLE>_<KEY>``
(see :mod:`corecall.options`); this module keeps those tables raw and the application
validates them against the options classes the plugins declare (:mod:`corecall.app`).

A mistake in the file raises :class:`~corecall.errors.ConfigError` naming the file, the key
and what is expected.
"""

from __future__ import annotations

import math
import os
import shlex
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import platformdirs

from corecall import fields
from corecall.domain import TrunkConfig, is_e164
from corecall.errors import ConfigError
from corecall.redaction import (
    check_secret,
    dsn_password,
    environment_secrets,
    mask_url,
    url_credentials,
)

APP_NAME = "corecall"
ROUTE_CODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    env = os.environ.get("CORECALL_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME))


# --------------------------------------------------------------------------- sections


#: Keys whose values are secrets: never shown in a repr or an error message.
SECRET_KEYS = frozenset({"token", "api_hash", "secret", "postgres_dsn"})


def _secret(default: str = ""):
    return attrs.field(default=default, repr=False)


@attrs.frozen
class BotConfig:
    token: str = _secret()
    api_id: int = 0
    api_hash: str = _secret()
    super_admins: tuple[int, ...] = ()
    max_command_age: float = 30.0  # seconds; older /call commands are answered "expired"
    session_path: Path | None = None


@attrs.frozen
class StoreConfig:
    backend: str = "sqlite"
    #: The other keys of ``[store]``, raw: the active store plugin's options validate them.
    options: Mapping[str, Any] = attrs.field(factory=dict, repr=lambda t: _masked_repr(t))


@attrs.frozen
class LimitsConfig:
    live_calls_per_agent: int = 1
    calls_per_minute: int = 6


@attrs.frozen
class CallsConfig:
    agent_ring_timeout: int = 30  # seconds the agent's phone rings before we give up
    target_ring_timeout: int = 45  # seconds the target rings (Dial timeout)


@attrs.frozen
class RouteConfig:
    code: str
    trunk: str
    caller_ids: tuple[str, ...]
    countries: tuple[str, ...] = ("US", "CA")
    name: str | None = None  # overrides the route plugin's display name
    allow_unlisted_nanp: bool = False  # see Route.allow_unlisted_nanp
    #: "key": the agent presses 1 on their phone before the target is dialed; "none": no
    #: confirmation (an agent's voicemail that answers gets bridged to the customer).
    confirm: str = "key"
    confirm_timeout: int = 10  # seconds to wait for the key after the prompt
    #: Caller ID on the agent's leg: "route" (the route's own number) or "target".
    agent_leg_caller_id: str = "route"


@attrs.frozen
class Config:
    path: Path | None
    data_dir: Path
    bot: BotConfig = BotConfig()
    store: StoreConfig = StoreConfig()
    limits: LimitsConfig = LimitsConfig()
    calls: CallsConfig = CallsConfig()
    trunks: Mapping[str, TrunkConfig] = attrs.field(factory=dict)
    routes: Mapping[str, RouteConfig] = attrs.field(factory=dict)
    disabled_plugins: tuple[str, ...] = ()
    #: ``[plugins.NAME]`` tables, raw: each plugin's options class validates its own.
    plugin_tables: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, repr=lambda t: _masked_repr(t)
    )
    exists: bool = True  # False when the defaults are used because no file exists
    #: The TOML document as read (for ``corecall config show``: which keys the file set).
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def where(self) -> str:
        """The file name for messages (or ``<built-in defaults>``)."""
        return str(self.path) if self.path else "<built-in defaults>"

    @property
    def plugin_state_path(self) -> Path:
        """Where ``corecall plugins enable/disable`` persists its choices."""
        return self.data_dir / "plugins.json"

    @property
    def session_path(self) -> Path:
        return self.bot.session_path or self.data_dir / "telegram.session"

    def secrets(self) -> list[str]:
        """Every secret value in this configuration (for
        :class:`~corecall.redaction.Redactor`): bot token, api hash, AMI secrets, the
        PostgreSQL password."""
        values: list[str | None] = [self.bot.token, self.bot.api_hash]
        values += _secrets_in(self.plugin_tables)  # [plugins.asterisk_ami.servers.X] secret…
        for key, value in self.store.options.items():  # the store plugin's raw options
            if key in SECRET_KEYS and isinstance(value, str):
                values.append(dsn_password(value) if key == "postgres_dsn" else value)
        values += environment_secrets()  # what the environment overrides or adds
        return [v for v in values if v]


def is_secret_key(key: str) -> bool:
    """Whether a plugin table's key names a secret (``secret``, ``token``, ``api_hash``,
    ``postgres_dsn``, ``*_secret``, ``*_key``, ``*_token``, ``*password``)."""
    key = key.lower()
    return key in SECRET_KEYS or key.endswith(("_secret", "_key", "_token", "password"))


def _masked(table: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _masked(value) if isinstance(value, Mapping)
        else "***" if is_secret_key(str(key)) and value
        else mask_url(value) if isinstance(value, str)
        else [mask_url(v) if isinstance(v, str) else v for v in value]
        if isinstance(value, list | tuple) else value
        for key, value in table.items()
    }  # fmt: skip


def _masked_repr(table: Mapping[str, Any]) -> str:
    """The repr of a raw plugin table with its secret-looking values masked."""
    return repr(_masked(table))


def _secrets_in(table: Mapping[str, Any]) -> list[str]:
    """Secret-looking string values anywhere in raw plugin tables, so that a plugin's secret
    is redacted from logs and errors even before its options class has parsed it."""
    found: list[str] = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            found += _secrets_in(value)
        elif isinstance(value, str) and is_secret_key(str(key)):
            found.append((dsn_password(value) or "") if key == "postgres_dsn" else value)
        else:  # a credential inside a URL (user:password@, ?token=) in any value or list
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str):
                    found += url_credentials(item)
    return found


# --------------------------------------------------------------------------- defaults

STARTER_CONFIG = """\
# corecall configuration. Secrets can stay out of this file: the environment variables
# CORECALL_BOT_TOKEN, CORECALL_API_ID, CORECALL_API_HASH and CORECALL_POSTGRES_DSN override
# the matching keys below; every plugin key follows CORECALL_<TABLE>_<KEY> (e.g. the AMI
# secret: CORECALL_AMI_SECRET, or CORECALL_PLUGINS_ASTERISK_AMI_SERVERS_PBX1_SECRET).

# Where the SQLite database, the Telegram session and plugin choices live.
# data_dir = "/var/lib/corecall"

[bot]
# From @BotFather and https://my.telegram.org (api_id/api_hash).
token = ""
api_id = 0
api_hash = ""
# Numeric Telegram user ids allowed to /authorize, /revoke, /agents, /setphone, /callerid.
super_admins = []
# A /call older than this many seconds when it reaches the bot (e.g. replayed after
# downtime) is answered "expired" and nothing is dialed.
max_command_age = 30

[store]
# "sqlite" (embedded, default) or "postgres" (set CORECALL_POSTGRES_DSN or postgres_dsn).
backend = "sqlite"
# sqlite_path = "/var/lib/corecall/corecall.sqlite3"
# postgres_dsn = "postgresql://corecall@127.0.0.1:5432/corecall"

[limits]
live_calls_per_agent = 1
calls_per_minute = 6

[calls]
agent_ring_timeout = 30   # seconds the agent's own phone rings
target_ring_timeout = 45  # seconds the target rings

# Trunks: driver "simulated" dials nothing (demo, training); a trunk plugin's driver dials
# for real, e.g. "asterisk_ami" (the Asterisk plugin: its keys and its server tables are
# described in the plugin sections at the end of this file). No failover.
[trunks.main]
driver = "simulated"   # e.g. driver = "asterisk_ami", server = "pbx1", endpoint = "corecall-main"

[trunks.dev]
driver = "simulated"

# Routes agents choose between. caller_ids are numbers YOU own; agents never type one.
[routes.M]
trunk = "main"
caller_ids = ["+12125550100", "+12125550101"]
countries = ["US", "CA"]
# When the agent's phone answers, it says whom they are calling and asks for 1; only a 1
# dials the target, so an agent's voicemail is never bridged to a customer. "none" skips it.
confirm = "key"
confirm_timeout = 10       # seconds to wait for the key (once more after a wrong key)

[routes.D]
trunk = "dev"
caller_ids = ["+12125550199"]
countries = ["US", "CA"]
# Numbers in brand-new US/Canadian area codes are missing from the number data for months;
# true dials well-formed ones anyway (emergency, N11, premium, toll-free and other-country
# codes stay refused).
allow_unlisted_nanp = false

[plugins]
# Plugins listed here are not even imported (corecall plugins disable NAME does the same).
disabled = []
"""


# --------------------------------------------------------------------------- loading


def resolve_config_path(explicit: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """Return (path, explicitly_chosen)."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get("CORECALL_CONFIG")
    if env:
        return Path(env), True
    return default_config_path(), False


def load_config(explicit: str | os.PathLike | None = None) -> Config:
    """Load the configuration (see module docstring for where it is looked for)."""
    path, chosen = resolve_config_path(explicit)
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a file name too long
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(path)) from None
    if not exists:
        if chosen:
            shown = shlex.quote(str(path)) if str(path).isprintable() else "FILE"
            raise ConfigError(
                f"file not found; create one with: corecall --config {shown} init",
                path=str(path),
            )
        return parse_config(tomllib.loads(STARTER_CONFIG), path=None, exists=False)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "the configuration is a TOML file in UTF-8",
            path=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(path)) from None
    return parse_config(raw, path=path)


def parse_config(raw: Mapping[str, Any], *, path: Path | None, exists: bool = True) -> Config:
    """Validate a parsed TOML document and build a :class:`Config`."""
    p = _Parser(str(path) if path else "<built-in defaults>")
    known = {"data_dir", "bot", "store", "limits", "calls", "trunks", "routes", "plugins"}
    if "asterisk_servers" in raw:  # before the Asterisk driver owned its configuration
        p.fail(
            "asterisk_servers",
            "moved: the Asterisk servers are the Asterisk plugin's own tables now; rename each "
            "[asterisk_servers.NAME] to [plugins.asterisk_ami.servers.NAME] (same keys)",
        )
    p.no_unknown_keys(raw, known, "")

    data_dir_raw = p.opt(raw, "data_dir", str, "data_dir", None)
    env_data = os.environ.get("CORECALL_DATA_DIR")
    data_dir = (
        Path(env_data)
        if env_data
        else (Path(data_dir_raw).expanduser() if data_dir_raw else default_data_dir())
    )

    bot = _parse_bot(p, p.table(raw, "bot"))
    store = _parse_store(p, p.table(raw, "store"))
    limits_t = p.table(raw, "limits")
    p.no_unknown_keys(limits_t, {"live_calls_per_agent", "calls_per_minute"}, "limits")
    limits = LimitsConfig(
        live_calls_per_agent=p.positive_int(limits_t, "live_calls_per_agent", "limits", 1),
        calls_per_minute=p.positive_int(limits_t, "calls_per_minute", "limits", 6),
    )
    calls_t = p.table(raw, "calls")
    p.no_unknown_keys(calls_t, {"agent_ring_timeout", "target_ring_timeout"}, "calls")
    calls = CallsConfig(
        agent_ring_timeout=p.positive_int(calls_t, "agent_ring_timeout", "calls", 30),
        target_ring_timeout=p.positive_int(calls_t, "target_ring_timeout", "calls", 45),
    )
    trunks = {name: _parse_trunk(p, name, t) for name, t in
              p.table_of_tables(raw, "trunks").items()}  # fmt: skip
    routes = {code: _parse_route(p, code, t, trunks) for code, t in
              p.table_of_tables(raw, "routes").items()}  # fmt: skip
    if len(routes) > fields.MAX_ROUTES:
        p.fail("routes", f"at most {fields.MAX_ROUTES} routes (got {len(routes)})")
    plugins_t = p.table(raw, "plugins")
    disabled = p.str_list(plugins_t, "disabled", "plugins", ())
    plugin_tables: dict[str, Mapping[str, Any]] = {}
    for name, table in plugins_t.items():
        if name == "disabled":
            continue
        if not isinstance(table, dict):
            p.fail(
                f"plugins.{name}",
                "expected `disabled = [...]` or a plugin's table [plugins.NAME]",
            )
        plugin_tables[name] = table
    return Config(
        path=path,
        data_dir=data_dir,
        bot=bot,
        store=store,
        limits=limits,
        calls=calls,
        trunks=trunks,
        routes=routes,
        disabled_plugins=tuple(disabled),
        plugin_tables=plugin_tables,
        exists=exists,
        raw=raw,
    )


def _parse_bot(p: _Parser, t: Mapping[str, Any]) -> BotConfig:
    p.no_unknown_keys(
        t, {"token", "api_id", "api_hash", "super_admins", "max_command_age", "session_path"},
        "bot",
    )  # fmt: skip
    token = p.secret(t, "token", "bot", "CORECALL_BOT_TOKEN")
    api_id_env = os.environ.get("CORECALL_API_ID")
    if api_id_env:
        if not api_id_env.isdigit():
            raise ConfigError("CORECALL_API_ID must be a number (from my.telegram.org)")
        api_id = int(api_id_env)
    else:
        api_id = p.opt(t, "api_id", int, "bot", 0)
    api_hash = p.secret(t, "api_hash", "bot", "CORECALL_API_HASH")
    admins = t.get("super_admins", [])
    if not isinstance(admins, list) or not all(
        isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in admins
    ):
        p.fail("bot.super_admins", "expected a list of numeric Telegram user ids, e.g. [123456789]")
    age = t.get("max_command_age", 30)
    if (
        not isinstance(age, int | float) or isinstance(age, bool)
        or not math.isfinite(age) or age <= 0  # nan would switch the replay guard off
    ):  # fmt: skip
        p.fail(
            "bot.max_command_age",
            f"expected a positive number of seconds, e.g. 30, got {fields.echo(age)}",
        )
    session = p.opt(t, "session_path", str, "bot", None)
    return BotConfig(
        token=token,
        api_id=api_id,
        api_hash=api_hash,
        super_admins=tuple(admins),
        max_command_age=float(age),
        session_path=Path(session).expanduser() if session else None,
    )


def _parse_store(p: _Parser, t: Mapping[str, Any]) -> StoreConfig:
    backend = p.opt(t, "backend", str, "store", "sqlite")
    return StoreConfig(backend=backend, options={k: v for k, v in t.items() if k != "backend"})


def _parse_trunk(p: _Parser, name: str, t: Mapping[str, Any]) -> TrunkConfig:
    """``driver`` is the core's; every other key belongs to that driver (its ``OPTIONS``
    class validates them once the plugins are loaded: :mod:`corecall.effective_config`)."""
    key = f"trunks.{name}"
    driver = p.req(t, "driver", str, key, 'a driver name, e.g. "asterisk_ami" or "simulated"')
    options = {k: v for k, v in t.items() if k != "driver"}
    return TrunkConfig(name=name, driver=driver, options=options)


def _parse_route(
    p: _Parser, code: str, t: Mapping[str, Any], trunks: Mapping[str, TrunkConfig]
) -> RouteConfig:
    key = f"routes.{code}"
    if not code or not all(c in ROUTE_CODE_CHARS for c in code):
        p.fail(key, "route codes are upper-case letters or digits, e.g. [routes.M]")
    p.no_unknown_keys(
        t,
        {"trunk", "caller_ids", "countries", "name", "confirm", "confirm_timeout",
         "agent_leg_caller_id", "allow_unlisted_nanp"},
        key,
    )  # fmt: skip
    trunk = p.req(t, "trunk", str, key, "the name of a [trunks.NAME] table")
    if trunk not in trunks:
        known = ", ".join(sorted(trunks)) or "none defined"
        p.fail(f"{key}.trunk", f"no [trunks.{trunk}] table (known: {known})")
    allow_unlisted_nanp = p.opt(t, "allow_unlisted_nanp", bool, key, False)
    caller_ids = p.str_list(t, "caller_ids", key, None)
    if not caller_ids:
        p.fail(
            f"{key}.caller_ids",
            'expected at least one caller ID you own, in E.164, e.g. ["+12125550100"]',
        )
    for cid in caller_ids:
        problem = _caller_id_problem(cid, allow_unlisted_nanp)
        if problem is not None:
            p.fail(f"{key}.caller_ids", problem)
    if len(caller_ids) > fields.MAX_CALLER_IDS_PER_ROUTE:
        p.fail(
            f"{key}.caller_ids",
            f"at most {fields.MAX_CALLER_IDS_PER_ROUTE} caller IDs per route "
            f"(got {len(caller_ids)})",
        )
    name = p.opt(t, "name", str, key, None)
    if name is not None:
        problem = fields.display_text_problem(name, fields.ROUTE_NAME_MAX_CHARS, "a route name")
        if problem is not None:
            p.fail(f"{key}.name", problem)
    countries = p.str_list(t, "countries", key, ("US", "CA"))
    if not countries:
        p.fail(
            f"{key}.countries",
            'expected at least one region code its calls may go to, e.g. ["US", "CA"]',
        )
    for c in countries:
        if not (len(c) == 2 and c.isascii() and c.isalpha() and c.isupper()):
            p.fail(f"{key}.countries", f'{c!r} is not a two-letter region code like "US"')
        if not _known_region(c):
            p.fail(
                f"{key}.countries",
                f"{c!r} is not a region code phonenumbers knows; use ISO 3166 codes of "
                'real regions, e.g. "US", "CA", "GB", "DE", "DO" (a +1 809 number is DO)',
            )
    confirm = p.opt(t, "confirm", str, key, "key")
    if confirm not in ("key", "none"):
        p.fail(f"{key}.confirm", f'expected "key" (the agent presses 1) or "none", got {confirm!r}')
    confirm_timeout = p.opt(t, "confirm_timeout", int, key, 10)
    if not 1 <= confirm_timeout <= 120:
        p.fail(f"{key}.confirm_timeout", f"expected 1-120 seconds, got {confirm_timeout}")
    agent_leg = p.opt(t, "agent_leg_caller_id", str, key, "route")
    if agent_leg == "target":  # offered once; it broke the safety stance
        p.fail(
            f"{key}.agent_leg_caller_id",
            '"target" is not offered: caller IDs on both legs are numbers you own (the '
            "target's number would be presented to your carrier as yours on the agent's "
            "leg); the agent hears the target's number in the prompt. Remove the key or "
            'set "route"',
        )
    if agent_leg != "route":
        p.fail(
            f"{key}.agent_leg_caller_id",
            f'expected "route" (the route\'s own number, on both legs), got {agent_leg!r}',
        )
    return RouteConfig(
        code=code,
        trunk=trunk,
        caller_ids=tuple(caller_ids),
        countries=tuple(countries),
        name=name,
        allow_unlisted_nanp=allow_unlisted_nanp,
        confirm=confirm,
        confirm_timeout=confirm_timeout,
        agent_leg_caller_id=agent_leg,
    )


def _caller_id_problem(cid: str, allow_unlisted_nanp: bool) -> str | None:
    """Why ``cid`` cannot be a route's caller ID, or None. Every person called sees it and
    calls it back: it must be a full, dialable number in E.164 form (the number check
    agents' phones pass, any country), not an emergency, short-code, premium-rate or
    shared-cost number."""
    from corecall.numbers import NOT_A_LINE, normalize_phone

    e164_form = "in E.164 form (+, the country code and the number, e.g. +12125550100)"
    if not (cid[:1] == "+" and cid[1:].isascii() and cid[1:].isdigit()):
        return f"{cid!r} is not a number {e164_form}"
    verdict = normalize_phone(cid, allow_unlisted_nanp=allow_unlisted_nanp)
    if verdict.ok:
        return None if verdict.e164 == cid and is_e164(cid) else f"{cid} is not {e164_form}"
    kind = NOT_A_LINE.get(verdict.reason or "")
    if kind is not None:
        return f"{cid} is {kind}, so it cannot be a caller ID; give a number you own"
    return f"{cid} cannot be a caller ID: {verdict.message}"


class _Parser:
    """Small helpers that turn type mistakes into ConfigErrors naming file and key."""

    _TYPE_WORDS = {str: "a string", int: "an integer", bool: "true or false"}

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, expected: str):
        raise ConfigError(expected, path=self.where, key=key)

    def _word(self, typ) -> str:
        if isinstance(typ, tuple):
            return "a number"
        return self._TYPE_WORDS.get(typ, typ.__name__)

    def _check(self, value, typ, key: str):
        bad = isinstance(value, bool) and typ is not bool
        if bad or not isinstance(value, typ):
            if key.rsplit(".", 1)[-1] in SECRET_KEYS:  # name the key, never show a secret
                self.fail(key, f"expected {self._word(typ)}, got {type(value).__name__}")
            self.fail(key, f"expected {self._word(typ)}, got {value!r}")
        return value

    def secret(self, t: Mapping, name: str, section: str, *variables: str) -> str:
        """A secret from the first set environment variable, else the file's key; refused
        (by source, never by value) when it holds control characters."""
        for variable in variables:
            value = os.environ.get(variable)
            if value:
                return check_secret(value, f"the environment variable {variable}")
        value = self.opt(t, name, str, section, "")
        where = f"{self.where}: " if self.where else ""
        return check_secret(value, f"{where}[{section}] {name}")

    def opt(self, t: Mapping, name: str, typ, section: str, default):
        if name not in t:
            return default
        return self._check(t[name], typ, f"{section}.{name}" if section else name)

    def req(self, t: Mapping, name: str, typ, section: str, what: str):
        if name not in t:
            self.fail(f"{section}.{name}", f"missing; expected {what}")
        return self._check(t[name], typ, f"{section}.{name}")

    def positive_int(self, t: Mapping, name: str, section: str, default: int) -> int:
        value = self.opt(t, name, int, section, default)
        if value < 1:
            self.fail(f"{section}.{name}", f"expected a whole number of at least 1, got {value}")
        return value

    def str_list(self, t: Mapping, name: str, section: str, default):
        if name not in t:
            return list(default) if default is not None else None
        value = t[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{section}.{name}", f"expected a list of strings, got {value!r}")
        return list(value)

    def table(self, raw: Mapping, name: str) -> Mapping[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"expected a table ([{name}]), got {value!r}")
        return value

    def table_of_tables(self, raw: Mapping, name: str) -> dict[str, Mapping[str, Any]]:
        value = self.table(raw, name)
        for sub, t in value.items():
            if not isinstance(t, dict):
                self.fail(f"{name}.{sub}", f"expected a table ([{name}.{sub}])")
        return dict(value)

    def no_unknown_keys(self, t: Mapping, known: set[str], section: str):
        unknown = sorted(set(t) - known)
        if unknown:
            where = section or "top level"
            self.fail(
                f"{section}.{unknown[0]}" if section else unknown[0],
                f"unknown key in {where}; expected one of: {', '.join(sorted(known))}",
            )


def _known_region(code: str) -> bool:
    """Whether phonenumbers has numbering data for the region ``code`` (``US``; not ``XX``,
    ``ZZ`` "unknown", or ``UK``, whose code is ``GB``)."""
    import phonenumbers  # loaded by every command that reads numbers anyway

    return code in phonenumbers.SUPPORTED_REGIONS


def write_starter_config(path: Path, *, force: bool = False, extra: str = "") -> None:
    """Write the commented starter configuration (``corecall init``), followed by
    ``extra`` (the commented sections of the installed plugins' options)."""
    if path.is_dir():
        raise ConfigError("is a directory; give a file, e.g. --config DIR/config.toml",
                          path=str(path))  # fmt: skip
    if path.exists() and not path.is_file():  # a device (/dev/sda!), a FIFO, a socket
        raise ConfigError("is not a regular file; give a file path, e.g. --config "
                          "~/.config/corecall/config.toml", path=str(path))  # fmt: skip
    if path.exists() and not force:
        raise ConfigError("already exists; pass --force to overwrite", path=str(path))
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The file is where the bot token and AMI secrets go: created 0600 (never readable
        # by others, not even for a moment), and made 0600 again when --force overwrites it.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
        fd = os.open(path, flags | os.O_NONBLOCK, 0o600)  # a FIFO put there now: no hang
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in since the check above
            os.close(fd)
            raise ConfigError("is not a regular file", path=str(path))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(STARTER_CONFIG + extra)
    except OSError as exc:  # a parent that is a file, /proc, /sys, a full disk, no rights
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, FileExistsError | NotADirectoryError) and exc.filename != str(path):
            why = f"{fields.show_path(exc.filename)} is not a directory"
        raise ConfigError(
            f"cannot write the configuration here: {why}; choose a writable file path, e.g. "
            "--config ~/.config/corecall/config.toml",
            path=str(path),
        ) from None
