"""The plugin manager: a typed wrapper around pluggy, built fresh by a factory.

Nothing here runs at import time and there is no global manager: every
:func:`load_plugins` call builds a new :class:`Plugins` with a clean state (like tox 4).

Plugins come from two places:

* the core's own plugins (``corecall.builtin_plugins``), registered by the factory;
* distributions that declare an entry point in the ``corecall`` group (the built-in route
  and store plugins are packaged exactly like third-party ones).

A disabled plugin is never imported, so a broken plugin can always be switched off. A
plugin that fails to import or to register is reported with its name and distribution, and
the others keep working. Essential plugins (the number policy and the active store's
plugin) cannot be disabled.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pluggy

from corecall import hookspecs
from corecall.domain import (
    Agent,
    CallRecord,
    CallRequest,
    CallState,
    NumberVerdict,
    Refusal,
    Route,
    is_e164,
)
from corecall.errors import ConfigError, EssentialPluginError, NotFoundError, PluginError
from corecall.registries import RouteRegistry, StoreRegistry, TrunkDriverRegistry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "corecall"

#: The core's own plugins: name -> module path. Registered by the factory, not by entry
#: points; they can be disabled like any other unless essential.
BUILTIN_PLUGINS: dict[str, str] = {
    "number_policy": "corecall.builtin_plugins.number_policy",
    "call_limits": "corecall.builtin_plugins.call_limits",
    "route_resolver": "corecall.builtin_plugins.route_resolver",
    "simulated_pbx": "corecall.telephony.simulated",
    "asterisk_ami": "corecall.telephony.ami",
}

#: Plugins that can never be disabled, whatever the configuration says.
ALWAYS_ESSENTIAL = frozenset({"number_policy"})

#: How ``plugins list`` names a plugin's kind, from the hooks it implements.
_KIND_BY_HOOK = (
    ("corecall_register_stores", "store"),
    ("corecall_register_routes", "route"),
    ("corecall_register_trunk_drivers", "trunk"),
    ("corecall_parse_number", "policy"),
    ("corecall_check_call", "policy"),
    ("corecall_resolve_route", "resolver"),
    ("corecall_call_state_changed", "listener"),
)


@attrs.define
class PluginInfo:
    """One row of ``corecall plugins list``."""

    name: str
    distribution: str
    version: str
    enabled: bool
    essential: bool
    kind: str = "unknown"
    hooks: list[str] = attrs.field(factory=list)
    error: str | None = None
    builtin: bool = False

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class _Candidate:
    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    entry_point: metadata.EntryPoint | None = None


# --------------------------------------------------------------------------- persisted choices


def read_disabled(state_path: Path) -> set[str]:
    """The plugins disabled with ``corecall plugins disable`` (persisted as JSON)."""
    try:
        data = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read plugin choices: {exc}", path=str(state_path)) from None
    disabled = data.get("disabled", []) if isinstance(data, dict) else None
    if not isinstance(disabled, list) or not all(isinstance(n, str) for n in disabled):
        raise ConfigError('expected {"disabled": ["name", ...]}', path=str(state_path))
    return set(disabled)


def write_disabled(state_path: Path, disabled: Iterable[str]) -> None:
    state_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"disabled": sorted(set(disabled))}, indent=2) + "\n")
    tmp.replace(state_path)


# --------------------------------------------------------------------------- discovery


def _candidates() -> list[_Candidate]:
    """Every plugin that could be loaded, found without importing any of them."""
    core_version = _dist_version("corecall")
    found = [
        _Candidate(name, module, "corecall", core_version, builtin=True)
        for name, module in BUILTIN_PLUGINS.items()
    ]
    # Sorted, so which of two clashing plugins wins does not depend on disk order.
    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    for ep in eps:
        dist = ep.dist
        found.append(
            _Candidate(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist else "?",
                version=dist.version if dist else "?",
                builtin=False,
                entry_point=ep,
            )
        )
    return found


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def known_plugin_names() -> list[str]:
    return [c.name for c in _candidates()]


# --------------------------------------------------------------------------- the manager


class Plugins:
    """A loaded set of plugins and what they registered.

    Build it with :func:`load_plugins`. Every hook call goes through a method here so that
    errors name the plugin that failed and one plugin cannot take the others down.
    """

    def __init__(self, essential_store_plugin: str | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.routes = RouteRegistry()
        self.stores = StoreRegistry()
        self.trunk_drivers = TrunkDriverRegistry()
        self.essential = set(ALWAYS_ESSENTIAL)
        if essential_store_plugin:
            self.essential.add(essential_store_plugin)

    # ---- loading
    def _load(
        self,
        candidates: list[_Candidate],
        disabled: set[str],
        extra: Iterable[tuple[str, object]] = (),
    ) -> None:
        for cand in candidates:
            info = PluginInfo(
                name=cand.name,
                distribution=cand.distribution,
                version=cand.version,
                enabled=cand.name not in disabled,
                essential=cand.name in self.essential,
                builtin=cand.builtin,
            )
            if cand.name in self.infos:
                other = self.infos[cand.name]
                info.enabled = False
                info.error = (
                    f"name clash: plugin {cand.name!r} from {cand.distribution} is also "
                    f"provided by {other.distribution}; only the first was loaded"
                )
                self.infos[f"{cand.name}@{cand.distribution}"] = info
                continue
            self.infos[cand.name] = info
            if not info.enabled:
                continue  # never imported: a broken plugin can always be switched off
            try:
                obj = (
                    cand.entry_point.load() if cand.entry_point
                    else importlib.import_module(cand.module)
                )  # fmt: skip
                self.pm.register(obj, name=cand.name)
            except Exception as exc:
                info.error = f"failed to load: {type(exc).__name__}: {exc}"
                log.error("plugin %r (%s) %s", cand.name, cand.distribution, info.error)
                continue
            info.hooks = _hook_names(self.pm, obj)
            info.kind = _kind(info.hooks)
        for name, obj in extra:
            self.register_object(obj, name)
        self.pm.check_pending()
        self._collect_registrations()

    def _collect_registrations(self) -> None:
        for hook_name, registry in (
            ("corecall_register_routes", self.routes),
            ("corecall_register_stores", self.stores),
            ("corecall_register_trunk_drivers", self.trunk_drivers),
        ):
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                registry.plugin = impl.plugin_name
                try:
                    impl.function(registry=registry)
                except Exception as exc:
                    registry.drop_plugin(impl.plugin_name)
                    self._mark_broken(impl.plugin_name, f"{hook_name} failed: {exc}")

    def _mark_broken(self, plugin: str, message: str) -> None:
        info = self.infos.get(plugin)
        if info is not None and info.error is None:
            info.error = message
        log.error("plugin %r: %s", plugin, message)

    # ---- introspection
    def list(self) -> list[PluginInfo]:
        return list(self.infos.values())

    def is_active(self, name: str) -> bool:
        info = self.infos.get(name)
        return bool(info and info.enabled and info.error is None)

    # ---- hooks
    def parse_number(self, text: str, route: Route) -> NumberVerdict:
        verdict = self.pm.hook.corecall_parse_number(text=text, route=route)
        if verdict is None:
            raise PluginError("number_policy", "no plugin parsed the number")
        if verdict.ok and not is_e164(verdict.e164):
            raise PluginError("?", f"a number plugin accepted a non-E.164 value {verdict.e164!r}")
        return verdict

    def check_call(self, request: CallRequest) -> Refusal | None:
        """First refusal wins; a plugin that raises refuses (fail closed) and is named."""
        for impl in reversed(self.pm.hook.corecall_check_call.get_hookimpls()):
            try:
                refusal = impl.function(request=request)
            except Exception as exc:
                log.exception("plugin %r failed in corecall_check_call", impl.plugin_name)
                return Refusal(
                    "policy_error",
                    f"The call was not placed: the {impl.plugin_name} check failed ({exc}). "
                    "Tell your admin.",
                    impl.plugin_name,
                )
            if refusal is not None:
                if refusal.plugin is None:
                    refusal = attrs.evolve(refusal, plugin=impl.plugin_name)
                return refusal
        return None

    def resolve_route(self, agent: Agent, routes: dict[str, Route]) -> Route | None:
        return self.pm.hook.corecall_resolve_route(agent=agent, routes=routes)

    def notify_state_changed(self, call: CallRecord, previous: CallState | None) -> None:
        """Tell every plugin; one failing is logged by name and the rest still hear it."""
        for impl in reversed(self.pm.hook.corecall_call_state_changed.get_hookimpls()):
            try:
                impl.function(call=call, previous=previous)
            except Exception:
                log.exception(
                    "plugin %r failed in corecall_call_state_changed (call %s -> %s)",
                    impl.plugin_name, call.id, call.state.value,
                )  # fmt: skip

    def register_object(self, obj: object, name: str) -> None:
        """Register an in-process plugin object (tests, embedders, the front ends)."""
        self.pm.register(obj, name=name)
        hooks = _hook_names(self.pm, obj)
        self.infos[name] = PluginInfo(
            name=name, distribution="(in process)", version="-", enabled=True, essential=False,
            hooks=hooks, kind=_kind(hooks),
        )  # fmt: skip


def _hook_names(pm: pluggy.PluginManager, obj: object) -> list[str]:
    return sorted(hc.name for hc in pm.get_hookcallers(obj) or ())


def _kind(hooks: list[str]) -> str:
    return next((kind for hook, kind in _KIND_BY_HOOK if hook in hooks), "other")


def load_plugins(
    disabled: Iterable[str] = (),
    *,
    store_backend: str | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> Plugins:
    """Build a fresh :class:`Plugins`: discover, skip the disabled, import, register.

    ``store_backend`` is the configured backend name; the plugin registering it becomes
    essential. Asking to disable an essential plugin is ignored with a warning here (the
    CLI refuses it up front).
    """
    candidates = _candidates()
    disabled = set(disabled)
    for name in sorted(disabled & ALWAYS_ESSENTIAL):
        log.warning("plugin %r is essential and stays enabled", name)
        disabled.discard(name)
    plugins = Plugins()
    plugins._load(candidates, disabled, extra)
    if store_backend is not None:
        reg = plugins.stores.get(store_backend)
        if reg is not None:
            plugins.essential.add(reg.plugin)
            plugins.infos[reg.plugin].essential = True
    return plugins


def check_can_disable(name: str, *, active_store_plugin: str | None) -> None:
    """Raise unless ``name`` is a known plugin that may be disabled."""
    names = known_plugin_names()
    if name not in names:
        raise NotFoundError(f"no plugin named {name!r}; known plugins: {', '.join(names)}")
    if name in ALWAYS_ESSENTIAL:
        raise EssentialPluginError(
            name, "is essential (it refuses emergency, premium and foreign numbers) and "
            "cannot be disabled",
        )  # fmt: skip
    if name == active_store_plugin:
        raise EssentialPluginError(
            name,
            "provides the active store and cannot be disabled; switch [store] backend "
            "to another store first",
        )
