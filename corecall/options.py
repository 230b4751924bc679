"""Plugin-owned configuration: options classes, their validation, and the environment rule.

A plugin declares what its configuration table may hold as a frozen attrs class whose fields
are made with :func:`option` (a default and a one-line doc each; a field may be marked
secret)::

    @attrs.frozen
    class NightOptions:
        opens: str = option("20:00", doc="When the night route opens, HH:MM local time.")
        api_key: str = option("", doc="Key for the night-desk service.", secret=True)

A plugin's table may hold per-route overrides, ``[plugins.NAME.routes.CODE]``, with the
same keys; an options class whose settings hold for the whole process (a listener, a list
of receivers) says ``PER_ROUTE: ClassVar[bool] = False`` and such a table is refused.

The class is handed to the core (``corecall_plugin_options`` for ``[plugins.NAME]``, the
trunk driver's ``OPTIONS`` attribute for the extra keys of ``[trunks.X]``, the ``options=``
argument of a store registration for the extra keys of ``[store]``). The core validates the
table with :func:`parse_options` and gives the plugin the parsed instance.

**The environment rule** (the same for every table, core or plugin): the variable
``CORECALL_<TABLE>_<KEY>``, where ``<TABLE>`` is the table's dotted name and every
character that is not a letter or digit becomes ``_``, all upper case, overrides the file.
``[plugins.night] api_key`` comes from ``CORECALL_PLUGINS_NIGHT_API_KEY``, ``[store]
postgres_dsn`` from ``CORECALL_STORE_POSTGRES_DSN``. A field may name older variables too
(``option(..., env=("CORECALL_POSTGRES_DSN",))``), which are looked at first; ``{name}`` /
``{NAME}`` in such a name stands for the enclosing table's own name (``[servers.pbx1]`` →
``pbx1`` / ``PBX1``). A value from the environment is taken verbatim for a text field
(:func:`takes_text_verbatim`: ``str``, ``Path``, a ``Literal`` of strings, or one of those
``| None``) and read as a TOML value otherwise (``30``, ``true``, ``["US", "CA"]``).

Mistakes raise :class:`~corecall.errors.ConfigError` naming the file, the key and what is
expected; unknown keys are refused with the known ones listed. Secret values are never
repeated in a message.

Types supported for fields: ``str``, ``int``, ``float``, ``bool``, ``pathlib.Path``,
``tuple[T, ...]`` / ``list[T]`` of those, ``typing.Literal[...]``, ``X | None``, a nested
options class (a sub-table) and ``dict[str, OptionsClass]`` (a table of tables). Values are
structured with cattrs, with strict hooks: TOML ``"5"`` is not an integer and ``5`` is not
a string.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs

from corecall.errors import ConfigError
from corecall.redaction import check_secret, mask_url

#: The key under which :func:`option` keeps its :class:`OptionInfo` in a field's metadata.
METADATA_KEY = "corecall.option"

Source = Literal["file", "environment", "default"]


@attrs.frozen
class OptionInfo:
    """What :func:`option` records about a field."""

    doc: str
    secret: bool = False
    env: tuple[str, ...] = ()


def option(
    default: Any = attrs.NOTHING,
    *,
    doc: str,
    secret: bool = False,
    env: Iterable[str] = (),
    factory: Callable[[], Any] | None = None,
    validator: Any = None,
) -> Any:
    """A field of an options class: an ``attrs.field`` with a one-line ``doc``.

    ``secret=True`` masks the value in ``corecall config show`` and in error messages.
    ``env`` names older environment variables that also set this field (looked at before
    the ``CORECALL_<TABLE>_<KEY>`` rule). ``validator`` is an attrs validator; a
    ``ValueError``/``TypeError`` it raises becomes a ConfigError naming the key. A field
    without a default is required.
    """
    if not isinstance(doc, str) or not doc.strip() or "\n" in doc.strip():
        raise TypeError("option(doc=...) must be one line of text")
    info = OptionInfo(doc=doc.strip(), secret=secret, env=tuple(env))
    kwargs: dict[str, Any] = {"metadata": {METADATA_KEY: info}}
    if factory is not None:
        kwargs["factory"] = factory
    else:
        kwargs["default"] = default
    if validator is not None:
        kwargs["validator"] = validator
    if secret:
        kwargs["repr"] = False  # a repr (a log line, a traceback) never shows a secret
    return attrs.field(**kwargs)


def seconds(*, zero: bool = False) -> Callable[[Any, attrs.Attribute, float], None]:
    """A validator for a duration option, in seconds: more than 0, or 0 and more with
    ``zero=True`` (the option parser has already refused nan and inf). Raises ValueError,
    which the parser reports with the file, the key and the source of the value."""

    def check(_instance: Any, _attribute: attrs.Attribute, value: float) -> None:
        if value < 0 or (value == 0 and not zero):
            least = "0 or more" if zero else "more than 0"
            raise ValueError(f"expected {least} seconds, got {value:g}")

    return check


def option_info(field: attrs.Attribute) -> OptionInfo:
    return field.metadata.get(METADATA_KEY) or OptionInfo(doc="")


def check_options_class(cls: object, *, owner: str) -> type:
    """Raise TypeError (naming ``owner``) unless ``cls`` is an attrs class whose every field
    was made with :func:`option`."""
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise TypeError(f"{owner}: options must be an attrs class, got {cls!r}")
    try:
        typing.get_type_hints(cls)
    except Exception as exc:
        raise TypeError(
            f"{owner}: the field types of {cls.__name__} cannot be resolved ({exc}); define "
            "the class at module level"
        ) from None
    undocumented = [f.name for f in attrs.fields(cls) if METADATA_KEY not in f.metadata]
    if undocumented:
        raise TypeError(
            f"{owner}: every field of {cls.__name__} needs corecall.option(..., doc=...); "
            f"missing on: {', '.join(undocumented)}"
        )
    return cls


def env_name(table: str, key: str) -> str:
    """The rule's variable for ``key`` of ``[table]``: ``CORECALL_<TABLE>_<KEY>``."""
    return "CORECALL_" + re.sub(r"[^A-Za-z0-9]", "_", f"{table}_{key}").upper()


# --------------------------------------------------------------------------- results


@attrs.frozen
class ValueOrigin:
    """Where one effective value came from (for ``corecall config show``)."""

    key: str  # dotted, e.g. "plugins.night.opens"
    value: Any
    source: Source
    secret: bool = False
    env: str | None = None  # the variable that set it, when source == "environment"
    doc: str = ""

    def shown(self) -> Any:
        """The value as it may be printed: secrets that are set become ``"***"``, and so do
        credentials inside URLs (``https://user:***@host/?token=***``)."""
        if self.secret and self.value not in ("", None):
            return "***"
        return _plain(self.value)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- structuring


class _Mismatch(Exception):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _strict(typ: type, word: str):
    def structure(value: Any, _type: Any) -> Any:
        ok = isinstance(value, typ) and not (isinstance(value, bool) and typ is not bool)
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise _Mismatch(word)
        if typ is float and not math.isfinite(value):  # TOML has nan and inf literals
            raise _Mismatch("a finite number (not nan or inf)")
        return value

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict(float, "a number"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))

    def path(value: Any, _type: Any) -> Path:
        if not isinstance(value, str) or not value:
            raise _Mismatch("a path (a non-empty string)")
        return Path(value).expanduser()

    converter.register_structure_hook(Path, path)
    return converter


_CONVERTER = _make_converter()


def describe_type(typ: Any) -> str:
    """Words for what a value of ``typ`` looks like in TOML."""
    words = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             Path: "a path (a string)"}  # fmt: skip
    if typ in words:
        return words[typ]
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list) and args:
        inner = describe_type(args[0])
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args if a is not type(None))
    return getattr(typ, "__name__", str(typ))


def _structure_leaf(value: Any, typ: Any) -> Any:
    """Structure one value; raise _Mismatch(expected) when it does not fit."""
    if typing.get_origin(typ) in (tuple, list) and not isinstance(value, list | tuple):
        raise _Mismatch(describe_type(typ))  # cattrs would split "US" into ("U", "S")
    try:
        return _CONVERTER.structure(value, typ)
    except _Mismatch:
        raise
    except Exception as exc:
        leaf = _first_leaf(exc)
        if isinstance(leaf, _Mismatch) and typing.get_origin(typ) not in (tuple, list):
            raise leaf from None
        raise _Mismatch(describe_type(typ)) from None


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _options_class_of(typ: Any) -> type | None:
    return typ if isinstance(typ, type) and attrs.has(typ) else None


def _table_of(typ: Any) -> type | None:
    """The options class of a ``dict[str, OptionsClass]`` field, else None."""
    if typing.get_origin(typ) in (dict, Mapping, typing.Mapping) or typ is dict:
        args = typing.get_args(typ)
        if len(args) == 2 and args[0] is str:
            return _options_class_of(args[1])
    return None


# --------------------------------------------------------------------------- parsing


@attrs.define
class ParsedOptions:
    """An options instance plus where each of its values came from."""

    value: Any
    origins: list[ValueOrigin]


def parse_options(
    cls: type,
    table: Mapping[str, Any] | None,
    *,
    table_name: str,
    path: str | None,
    base: Any = None,
    reserved: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> ParsedOptions:
    """Validate ``table`` (the TOML table ``[table_name]`` read from ``path``) against the
    options class ``cls`` and return the instance with each value's origin.

    ``base``: an instance whose values replace the class defaults (per-route overrides).
    ``reserved``: keys of the table the caller handles itself (not part of ``cls``).
    Raises :class:`~corecall.errors.ConfigError` naming the file and the key.
    """
    where = path or "<built-in defaults>"
    environ = os.environ if environ is None else environ
    table = {} if table is None else table
    if not isinstance(table, Mapping):
        raise ConfigError(f"expected a table ([{table_name}]), got {table!r}", path=where,
                          key=table_name)  # fmt: skip
    fields = attrs.fields_dict(cls)
    unknown = sorted(set(table) - set(fields) - set(reserved))
    if unknown:
        known = sorted(set(fields) | set(reserved))
        raise ConfigError(
            f"unknown key in [{table_name}]; expected one of: {', '.join(known) or '(none)'}",
            path=where,
            key=f"{table_name}.{unknown[0]}",
        )
    type_hints = typing.get_type_hints(cls)
    own_name = table_name.rsplit(".", 1)[-1]
    values: dict[str, Any] = {}
    origins: list[ValueOrigin] = []
    for name, field in fields.items():
        info = option_info(field)
        typ = type_hints.get(name, field.type)
        key = f"{table_name}.{name}"
        nested = _options_class_of(typ)
        table_cls = _table_of(typ)
        if nested is not None or table_cls is not None:
            raw = table.get(name, {})
            if not isinstance(raw, Mapping):
                raise ConfigError(f"expected a table ([{key}]), got {raw!r}", path=where, key=key)
            if nested is not None:
                sub_base = getattr(base, name) if base is not None else None
                parsed = parse_options(nested, raw, table_name=key, path=path, base=sub_base,
                                       environ=environ)  # fmt: skip
                values[name] = parsed.value
                origins.extend(parsed.origins)
                continue
            assert table_cls is not None
            sub: dict[str, Any] = {}
            for sub_name, sub_raw in raw.items():
                if not isinstance(sub_raw, Mapping):
                    raise ConfigError(f"expected a table ([{key}.{sub_name}])", path=where,
                                      key=f"{key}.{sub_name}")  # fmt: skip
                parsed = parse_options(table_cls, sub_raw, table_name=f"{key}.{sub_name}",
                                       path=path, environ=environ)  # fmt: skip
                sub[sub_name] = parsed.value
                origins.extend(parsed.origins)
            values[name] = sub
            continue
        env_used, env_value = _from_environment(info, table_name, name, own_name, environ)
        if env_used is not None:
            source: Source = "environment"
            raw_value: Any = env_value
            if not takes_text_verbatim(typ):
                raw_value = _toml_value(env_used, env_value, typ)
        elif name in table:
            source, raw_value = "file", table[name]
        else:
            if base is not None:
                values[name] = getattr(base, name)
            elif field.default is attrs.NOTHING:
                raise ConfigError(f"missing; expected {describe_type(typ)} ({info.doc})",
                                  path=where, key=key)  # fmt: skip
            origin_value = values.get(name, _default_of(field))
            origins.append(ValueOrigin(key, origin_value, "default", info.secret, None, info.doc))
            continue
        # A value from the environment is blamed on its variable, not on a file that may
        # not even set the key.
        blamed = None if env_used else where
        try:
            value = _structure_leaf(raw_value, typ)
        except _Mismatch as exc:
            shown = "a value (hidden: secret)" if info.secret else repr(raw_value)
            from_env = f" (from ${env_used})" if env_used else ""
            raise ConfigError(f"expected {exc.expected}, got {shown}{from_env}", path=blamed,
                              key=key) from None  # fmt: skip
        if info.secret and isinstance(value, str):
            # By source, never by value: a CRLF env file leaves a CR in every secret.
            check_secret(value, f"the environment variable {env_used}" if env_used
                         else f"{where}: [{key}]")  # fmt: skip
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except (ValueError, TypeError) as exc:
                from_env = f" (from ${env_used})" if env_used else ""
                raise ConfigError(_validator_message(exc, info) + from_env, path=blamed,
                                  key=key) from None  # fmt: skip
        values[name] = value
        origins.append(ValueOrigin(key, value, source, info.secret, env_used, info.doc))
    try:
        instance = cls(**values)
    except (ValueError, TypeError) as exc:
        # A rule over several keys (e.g. URLs need a secret): say which values came from
        # the environment, since the file alone may look right.
        env_vars = sorted({f"${o.env}" for o in origins if o.source == "environment"})
        also = f" (set by {', '.join(env_vars)})" if env_vars else ""
        raise ConfigError(f"{exc}{also}", path=where, key=table_name) from None
    return ParsedOptions(instance, origins)


def _default_of(field: attrs.Attribute) -> Any:
    default: Any = field.default
    factory = getattr(default, "factory", None)
    if callable(factory) and hasattr(default, "takes_self"):  # an attrs.Factory
        return factory()
    return default


def _validator_message(exc: BaseException, info: OptionInfo) -> str:
    text = str(exc)
    if info.secret:
        return "is not valid (the value is secret and not shown)"
    return text if text.startswith("expected") else f"not valid: {text}"


def _from_environment(
    info: OptionInfo, table: str, key: str, own_name: str, environ: Mapping[str, str]
) -> tuple[str | None, str]:
    names = [n.format(name=own_name, NAME=own_name.upper()) for n in info.env]
    names.append(env_name(table, key))
    for var in names:
        value = environ.get(var)
        if value:
            return var, value
    return None, ""


def takes_text_verbatim(typ: Any) -> bool:
    """True when a value of ``typ`` is text, so an environment variable's value is taken as
    it is rather than read as TOML: ``str``, ``Path``, a ``Literal`` of strings, and any of
    them ``| None`` (``MODE=raise``, not ``MODE='"raise"'``)."""
    if typ is str or typ is Path:
        return True
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin is Literal:
        return all(isinstance(a, str) for a in args)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return bool(kinds) and all(takes_text_verbatim(a) for a in kinds)
    return False


def _toml_value(var: str, text: str, typ: Any) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(
            f"${var} must be written as a TOML value: {describe_type(typ)}, e.g. 30, true, "
            '["US", "CA"]'
        ) from None


def defaults_of(cls: type) -> ParsedOptions:
    """The options with nothing configured (and no environment): the class defaults."""
    return parse_options(cls, {}, table_name="-", path=None, environ={})


def render_commented(cls: type, table_name: str, *, title: str = "") -> str:
    """A commented TOML section documenting ``cls`` (for ``corecall init``)."""
    lines = []
    if title:
        lines.append(f"# {title}")
    lines.append(f"# [{table_name}]")
    hints = typing.get_type_hints(cls)
    sub_tables = []
    for field in attrs.fields(cls):
        info = option_info(field)
        typ = hints.get(field.name, field.type)
        nested, table_cls = _options_class_of(typ), _table_of(typ)
        sub_cls = nested or table_cls
        if sub_cls is not None:
            # The sub-table's own keys, documented the same way (NAME: one table per name),
            # after every plain key: in TOML a key below a [header] belongs to that table.
            sub = f"{table_name}.{field.name}" + ("" if nested is not None else ".NAME")
            sub_tables.append(f"# {field.name}: {info.doc}")
            sub_tables.append(render_commented(sub_cls, sub).rstrip("\n"))
            continue
        lines.append(f"# {info.doc}")
        if info.secret:
            names = " or ".join(f"${n}" for n in (env_name(table_name, field.name), *info.env))
            lines.append(f"# (a secret: better set {names} than write it here)")
        default = _default_of(field)
        if default is attrs.NOTHING:
            lines.append(f"# {field.name} = ...  (required: {describe_type(typ)})")
        elif default is None:  # no value to show: TOML has no null
            lines.append(f"# {field.name} = ...  (optional: {describe_type(typ)}; not set)")
        else:
            lines.append(f"# {field.name} = {_toml_literal(default)}")
    return "\n".join(lines + sub_tables) + "\n"


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # A JSON string is a TOML basic string (\uXXXX for controls); TOML also bars DEL.
        return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}"
    return repr(value)


__all__ = [
    "OptionInfo",
    "ParsedOptions",
    "ValueOrigin",
    "check_options_class",
    "defaults_of",
    "describe_type",
    "env_name",
    "option",
    "parse_options",
    "render_commented",
]
