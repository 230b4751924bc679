"""The plugin-owned parts of the configuration, validated against the loaded plugins.

:func:`corecall.config.parse_config` validates the core's own tables and keeps the tables
plugins own raw (it runs before any plugin is imported). Once the plugins are loaded,
:func:`resolve_options` validates each of those tables against the options class its owner
declared (:mod:`corecall.options`):

* ``[plugins.NAME]`` — the class plugin ``NAME`` returns from ``corecall_plugin_options``;
  its ``[plugins.NAME.routes.CODE]`` sub-tables override fields for one route;
* the keys of ``[store]`` other than ``backend`` — the active store's ``options=``;
* the keys of ``[trunks.X]`` other than ``driver`` — the ``OPTIONS`` of the driver X names.

A table for a disabled (or broken) plugin is kept and not validated: the plugin is not
imported, so its class is unknown. A table for a plugin that is not installed at all is a
mistake and refused with the installed plugins listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from corecall.domain import TrunkConfig
from corecall.errors import ConfigError
from corecall.options import ParsedOptions, Source, ValueOrigin, parse_options

if TYPE_CHECKING:
    from corecall.config import Config
    from corecall.plugins import Plugins

#: Keys of ``[trunks.X]`` the core reads itself; every other key is the driver's.
CORE_TRUNK_KEYS = frozenset({"driver"})


@attrs.define
class EffectiveOptions:
    """Every plugin-owned table, parsed."""

    plugins: dict[str, ParsedOptions] = attrs.field(factory=dict)
    plugin_routes: dict[tuple[str, str], ParsedOptions] = attrs.field(factory=dict)
    store: ParsedOptions | None = None
    trunks: dict[str, TrunkConfig] = attrs.field(factory=dict)
    trunk_origins: dict[str, list[ValueOrigin]] = attrs.field(factory=dict)
    #: ``[plugins.NAME]`` tables kept raw because their plugin is disabled or broken.
    unvalidated: dict[str, Mapping[str, Any]] = attrs.field(factory=dict)


def resolve_options(config: Config, plugins: Plugins) -> EffectiveOptions:
    """Validate every plugin-owned table of ``config``; raise ConfigError on the first
    mistake (file, key, what is expected)."""
    where = str(config.path) if config.path else None
    out = EffectiveOptions()
    installed = {info.name for info in plugins.list() if "@" not in info.name}
    for name in config.disabled_plugins:  # a typo would leave the plugin on, silently
        if name not in installed:
            raise ConfigError(
                f"no installed plugin is named {name!r} (installed: "
                f"{', '.join(sorted(installed)) or 'none'})",
                path=where,
                key="plugins.disabled",
            )
    for name, table in config.plugin_tables.items():
        if name not in installed:
            raise ConfigError(
                f"no installed plugin is named {name!r} (installed: "
                f"{', '.join(sorted(installed)) or 'none'})",
                path=where,
                key=f"plugins.{name}",
            )
        if not plugins.is_active(name):
            out.unvalidated[name] = table
            continue
        cls = plugins.options_classes.get(name)
        if cls is None:
            raise ConfigError(
                f"plugin {name!r} declares no options; remove the [plugins.{name}] table",
                path=where,
                key=f"plugins.{name}",
            )
    for name, cls in plugins.options_classes.items():
        if not plugins.is_active(name):
            continue
        table = config.plugin_tables.get(name, {})
        parsed = parse_options(cls, table, table_name=f"plugins.{name}", path=where,
                               reserved=("routes",))  # fmt: skip
        out.plugins[name] = parsed
        per_route = table.get("routes", {})
        if not isinstance(per_route, Mapping):
            raise ConfigError("expected sub-tables [plugins.NAME.routes.CODE]", path=where,
                              key=f"plugins.{name}.routes")  # fmt: skip
        if per_route and not getattr(cls, "PER_ROUTE", True):
            raise ConfigError(
                f"plugin {name!r} has no per-route settings (they hold for the whole "
                f"process); put them in [plugins.{name}] itself",
                path=where,
                key=f"plugins.{name}.routes",
            )
        for code, sub in per_route.items():
            key = f"plugins.{name}.routes.{code}"
            if code not in config.routes:
                known = ", ".join(sorted(config.routes)) or "none configured"
                raise ConfigError(f"no [routes.{code}] table (routes: {known})", path=where,
                                  key=key)  # fmt: skip
            out.plugin_routes[(name, code)] = parse_options(
                cls, sub, table_name=key, path=where, base=parsed.value
            )
    reg = plugins.stores.get(config.store.backend)
    if reg is not None:
        if reg.options is not None:
            out.store = parse_options(reg.options, config.store.options, table_name="store",
                                      path=where, reserved=("backend",))  # fmt: skip
        elif config.store.options:
            extra = sorted(config.store.options)[0]
            raise ConfigError(
                f"unknown key in [store]; store backend {config.store.backend!r} takes only: "
                "backend",
                path=where,
                key=f"store.{extra}",
            )
    for name, trunk in config.trunks.items():
        driver = plugins.trunk_drivers.get(trunk.driver)
        if driver is None or driver.options is None:
            out.trunks[name] = trunk  # unknown driver: reported when drivers are built
            continue
        declared = set(attrs.fields_dict(driver.options))
        parsed = parse_options(
            driver.options,
            trunk.options,
            table_name=f"trunks.{name}",
            path=where,
            reserved=tuple((CORE_TRUNK_KEYS - declared) | {"driver"}),
        )
        out.trunks[name] = attrs.evolve(trunk, options=parsed.value)
        out.trunk_origins[name] = parsed.origins
    return out


# --------------------------------------------------------------------------- config show

#: Core keys that are secrets, and the environment variables that set core keys.
_CORE_SECRETS = {"bot.token", "bot.api_hash"}
_CORE_ENV = {
    "data_dir": "CORECALL_DATA_DIR",
    "bot.token": "CORECALL_BOT_TOKEN",
    "bot.api_id": "CORECALL_API_ID",
    "bot.api_hash": "CORECALL_API_HASH",
}


def effective_values(config: Config, options: EffectiveOptions) -> list[ValueOrigin]:
    """Every effective configuration value with where it came from (file, environment,
    default), core tables first, then the plugin-owned ones. Secret values are flagged
    (:meth:`ValueOrigin.shown` masks them)."""
    import os

    raw = config.raw
    rows: list[ValueOrigin] = []

    def in_file(key: str) -> bool:
        if not config.exists:  # the built-in defaults stand in for a missing file
            return False
        node: Any = raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return False
            node = node[part]
        return True

    def core(key: str, value: Any, *, env: tuple[str, ...] = (), secret: bool = False) -> None:
        names = tuple(n for n in (*env, _CORE_ENV.get(key)) if n)
        used = next((n for n in names if os.environ.get(n)), None)
        source: Source = "environment" if used else "file" if in_file(key) else "default"
        rows.append(ValueOrigin(key, value, source, secret or key in _CORE_SECRETS, used))

    core("data_dir", config.data_dir)
    for section in ("bot", "limits", "calls"):
        values = attrs.asdict(getattr(config, section), recurse=False)
        for name, value in values.items():
            core(f"{section}.{name}", value)
    core("store.backend", config.store.backend)
    if options.store is not None:
        rows.extend(options.store.origins)
    for name, trunk in config.trunks.items():
        core(f"trunks.{name}.driver", trunk.driver)
        if name in options.trunk_origins:
            rows.extend(options.trunk_origins[name])
        else:
            for key, value in trunk.options.items() if isinstance(trunk.options, dict) else ():
                core(f"trunks.{name}.{key}", value)
    for code, route in config.routes.items():
        for field, value in attrs.asdict(route, recurse=False).items():
            if field != "code" and value is not None:
                core(f"routes.{code}.{field}", value)
    core("plugins.disabled", config.disabled_plugins)
    for name in sorted(options.plugins):
        rows.extend(options.plugins[name].origins)
        for (plugin, _code), parsed in sorted(options.plugin_routes.items()):
            if plugin == name:
                rows.extend(o for o in parsed.origins if o.source != "default")
    for name, table in sorted(options.unvalidated.items()):
        for key, value in table.items():
            rows.append(ValueOrigin(f"plugins.{name}.{key}", value, "file", False, None,
                                    "not validated: the plugin is disabled"))  # fmt: skip
    if not config.exists:
        # Plugin tables of the built-in defaults were parsed like a file's: say "default".
        rows = [attrs.evolve(r, source="default") if r.source == "file" else r for r in rows]
    return rows


__all__ = ["CORE_TRUNK_KEYS", "EffectiveOptions", "effective_values", "resolve_options"]
