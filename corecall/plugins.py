"""The plugin manager: a typed wrapper around pluggy, built fresh by a factory.

Nothing here runs at import time and there is no global manager: every
:func:`load_plugins` call builds a new :class:`Plugins` with a clean state (like tox 4).

Plugins come from two places:

* the core's own plugins (``corecall.builtin_plugins``), registered by the factory;
* distributions that declare an entry point in the ``corecall`` group (the built-in route
  and store plugins are packaged exactly like third-party ones).

A disabled plugin is never imported, so a broken plugin can always be switched off. A
plugin that fails to import or to register is reported with its name and distribution, and
the others keep working. Essential plugins (the active store's plugin and the plugins
providing a trunk driver that configured trunks use) cannot be disabled.

The number safety check is not a plugin: :meth:`Plugins.parse_number` runs it on whatever
the parse hook returned, so no plugin, and no plugin choice, can switch it off.
"""

from __future__ import annotations

import asyncio
import builtins
import fcntl
import importlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pluggy

from corecall import hookspecs
from corecall.context import LoopPluginContext, PluginContext
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
from corecall.fields import MESSAGE_MAX_CHARS, echo, one_line
from corecall.options import ParsedOptions, check_options_class, parse_options
from corecall.registries import (
    RouteRegistry,
    ServiceRegistry,
    StoreRegistry,
    TrunkDriverRegistry,
)
from corecall.store import StoreWouldBlock

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "corecall"

#: The core's own plugins: name -> module path. Registered by the factory, not by entry
#: points; they can be disabled like any other unless essential.
BUILTIN_PLUGINS: dict[str, str] = {
    "call_limits": "corecall.builtin_plugins.call_limits",
    "route_resolver": "corecall.builtin_plugins.route_resolver",
    "simulated_pbx": "corecall.telephony.simulated",
}

#: The plugins shipped with corecall as their own distributions (under ``plugins/``):
#: entry-point name -> distribution. They count as the core's own: they are found before
#: third-party entry points, so what they register (route M and D, the "sqlite" store...)
#: cannot be taken over by a plugin installed later; the newcomer is reported broken.
FIRST_PARTY: dict[str, str] = {
    "asterisk_ami": "corecall-trunk-asterisk",
    "metrics": "corecall-metrics",
    "policy_calling_hours": "corecall-policy-calling-hours",
    "policy_dnc": "corecall-policy-dnc",
    "policy_repeat_calls": "corecall-policy-repeat-calls",
    "route_dev": "corecall-route-dev",
    "route_main": "corecall-route-main",
    "store_postgres": "corecall-store-postgres",
    "store_sqlite": "corecall-store-sqlite",
    "webhooks": "corecall-webhooks",
}

#: How ``plugins list`` names a plugin's kind, from the hooks it implements.
_KIND_BY_HOOK = (
    ("corecall_register_stores", "store"),
    ("corecall_register_routes", "route"),
    ("corecall_register_trunk_drivers", "trunk"),
    ("corecall_parse_number", "policy"),
    ("corecall_check_call", "policy"),
    ("corecall_resolve_route", "resolver"),
    ("corecall_register_services", "service"),
    ("corecall_call_state_changed", "listener"),
    ("corecall_call_refused", "listener"),
    ("corecall_link_state_changed", "listener"),
    ("corecall_chat_edit_sent", "listener"),
    ("corecall_chat_rate_limited", "listener"),
    ("corecall_store_write", "listener"),
    ("corecall_register_commands", "commands"),
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
    #: Top-level CLI commands the plugin adds (filled by :meth:`Plugins.command_names`).
    commands: list[str] = attrs.field(factory=list)
    #: Why the plugin's CLI commands were dropped (its other hooks still work), or None.
    commands_error: str | None = None

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
    """Replace the persisted choices at once (a reader sees the old file or the new one)."""
    state_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"disabled": sorted(set(disabled))}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{state_path.name}.", dir=state_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, state_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_disabled(state_path: Path, change: Callable[[set[str]], None]) -> bool:
    """Read the persisted choices, ``change`` the set in place, write it back, all under an
    exclusive lock (``<state file>.lock``), so two operators toggling plugins at the same
    moment both get what they were told (each read-modify-write sees the other's). Returns
    whether this call changed the set (and so wrote it)."""
    state_path.parent.mkdir(parents=True, exist_ok=True)
    with open(state_path.with_name(state_path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        before = read_disabled(state_path)
        after = set(before)
        change(after)
        if after != before:
            write_disabled(state_path, after)
        return after != before


# --------------------------------------------------------------------------- discovery


def _candidates() -> list[_Candidate]:
    """Every plugin that could be loaded, found without importing any of them."""
    core_version = _dist_version("corecall")
    found = [
        _Candidate(name, module, "corecall", core_version, builtin=True)
        for name, module in BUILTIN_PLUGINS.items()
    ]

    # The core's own distributions first, then the rest by name: which of two clashing
    # plugins (or registrations) wins depends neither on disk order nor on install order.
    def order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
        first_party = ep.dist is not None and FIRST_PARTY.get(ep.name) == ep.dist.metadata["Name"]
        return (not first_party, ep.name, ep.value)

    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=order)
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

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.routes = RouteRegistry()
        self.stores = StoreRegistry()
        self.trunk_drivers = TrunkDriverRegistry()
        self.services = ServiceRegistry()
        self.essential: set[str] = set()
        #: Plugin name -> the options class it declared (``corecall_plugin_options``).
        self.options_classes: dict[str, type] = {}
        #: Top-level CLI command name -> the plugin that added it (:meth:`register_commands`):
        #: an unexpected error in a plugin's command names the plugin, not corecall.
        self.command_owners: dict[str, str] = {}
        self._contexts: dict[str, PluginContext] = {}
        self._app: Any = None
        self._defaults: dict[str, ParsedOptions] = {}

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
            # sys.exit() at import (some modules do on a missing dependency) is this plugin
            # failing to load, not a stop of every command (plugins disable included).
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                info.error = f"failed to load: {type(exc).__name__}: {exc}"
                log.error("plugin %r (%s) %s", cand.name, cand.distribution, info.error)
                continue
            self._register(obj, info)
        for name, obj in extra:
            self.register_object(obj, name)
        self._collect_registrations()
        self._collect_options_classes()

    def _register(self, obj: object, info: PluginInfo) -> None:
        """Register one plugin; a plugin with a misspelled or invalid hook is refused whole
        (and named), instead of taking every command down."""
        try:
            self.pm.register(obj, name=info.name)
        except Exception as exc:  # pluggy's PluginValidationError: bad hook signature
            info.error = f"invalid hook implementation: {exc}"
            log.error("plugin %r (%s) %s", info.name, info.distribution, info.error)
            return
        unknown = [hc.name for hc in self.pm.get_hookcallers(obj) or () if not hc.has_spec()]
        if unknown:
            self.pm.unregister(obj)
            info.error = (
                f"implements unknown hook(s) {', '.join(sorted(unknown))}; "
                "see docs/plugin_hooks.md for the hook names"
            )
            log.error("plugin %r (%s) %s", info.name, info.distribution, info.error)
            return
        info.hooks = _hook_names(self.pm, obj)
        info.kind = _kind(info.hooks)

    def _collect_registrations(self) -> None:
        registries = (
            ("corecall_register_routes", self.routes),
            ("corecall_register_stores", self.stores),
            ("corecall_register_trunk_drivers", self.trunk_drivers),
            ("corecall_register_services", self.services),
        )
        for hook_name, registry in registries:
            for impl in self._impls_in_load_order(hook_name):
                if not self.is_active(impl.plugin_name):
                    continue  # broken by an earlier registration hook
                registry.plugin = impl.plugin_name
                try:
                    _call(impl, registry=registry)
                except Exception as exc:
                    self._disable_broken(impl.plugin_name, f"{hook_name} failed: {exc}")

    def _collect_options_classes(self) -> None:
        for impl in self._impls("corecall_plugin_options"):
            name = impl.plugin_name
            if not self.is_active(name):
                continue
            try:
                cls = _call(impl)
                if cls is not None:
                    self.options_classes[name] = check_options_class(cls, owner=f"plugin {name!r}")
            except Exception as exc:
                self._disable_broken(name, f"corecall_plugin_options failed: {exc}")
        for name, cls in list(self.options_classes.items()):
            if "routes" in attrs.fields_dict(cls):
                del self.options_classes[name]
                self._disable_broken(name, "an options field may not be named 'routes' (it "
                                     "holds the per-route overrides)")  # fmt: skip

    # ---- contexts
    def bind(self, app: Any) -> None:
        """Give every plugin's context the application (its config, options and store)."""
        self._app = app
        self._contexts.clear()

    def context(self, name: str) -> PluginContext:
        """The context handed to plugin ``name`` in hooks that take ``context``."""
        ctx = self._contexts.get(name)
        if ctx is None:
            ctx = self._contexts[name] = PluginContext(name, self, self._app)
        return ctx

    def default_options(self, name: str) -> Any:
        """Plugin ``name``'s options with nothing configured (defaults plus environment)."""
        cls = self.options_classes.get(name)
        if cls is None:
            return None
        if name not in self._defaults:
            self._defaults[name] = parse_options(cls, {}, table_name=f"plugins.{name}", path=None)
        return self._defaults[name].value

    def _disable_broken(self, plugin: str, message: str) -> None:
        """A plugin that failed half-way is switched off entirely: nothing it registered and
        none of its hooks stay active."""
        for registry in (self.routes, self.stores, self.trunk_drivers, self.services):
            registry.drop_plugin(plugin)
        obj = self.pm.get_plugin(plugin)
        if obj is not None:
            self.pm.unregister(obj)
        info = self.infos.get(plugin)
        if info is not None and info.error is None:
            info.error = message
        log.error("plugin %r: %s", plugin, message)

    def _impls(self, hook_name: str) -> list:
        """Implementations in call order (pluggy's: tryfirst first, trylast last), without
        wrappers (corecall's hooks are plain calls)."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]

    def _impls_in_load_order(self, hook_name: str) -> list:
        """Implementations in the order the plugins were found (the core's own first, then
        third parties by name, then in-process objects), for the hooks where the first one
        wins a name: registrations. pluggy's call order is newest-registered first, which
        would let any plugin installed later take a route code or a command name."""
        position = {name: i for i, name in enumerate(self.infos)}
        impls = [
            i for i in getattr(self.pm.hook, hook_name).get_hookimpls()
            if not (i.hookwrapper or i.wrapper)
        ]  # fmt: skip
        return sorted(impls, key=lambda i: position.get(i.plugin_name, len(position)))

    # ---- introspection
    def list(self) -> list[PluginInfo]:
        return list(self.infos.values())

    def route_resolvers(self) -> builtins.list[str]:
        """The active plugins implementing ``corecall_resolve_route``, in call order."""
        return [
            impl.plugin_name for impl in self._impls("corecall_resolve_route")
            if self.is_active(impl.plugin_name)
        ]  # fmt: skip

    def is_active(self, name: str) -> bool:
        info = self.infos.get(name)
        return bool(info and info.enabled and info.error is None)

    # ---- hooks
    def parse_number(self, text: str, route: Route) -> NumberVerdict:
        """Parse ``text`` for a call on ``route``, then check it for safety.

        1. The parse hook: the first plugin answer wins (a plugin may read a format of its
           own); when no plugin answers, the core's parser
           (:func:`corecall.numbers.check_number`: E.164 and NANP formats).
        2. The number safety check, a core step run on every acceptance whoever produced
           it: :func:`~corecall.numbers.check_number` on the E.164 number under
           ``route.countries`` refuses emergency, short-code, premium-rate, shared-cost and
           not-allowed-country numbers. No plugin can skip it or be disabled to skip it.

        A parse plugin that raises, returns something other than a NumberVerdict, accepts
        something that is not ``+`` and digits, or refuses without a reason code and a
        message fails closed: the number is refused with reason ``policy_error`` and a
        message naming the plugin (logged with it), like a failing ``corecall_check_call``.
        """
        from corecall.numbers import check_number

        for impl in self._impls("corecall_parse_number"):
            try:
                verdict = _call(
                    impl, text=text, route=route, context=self.context(impl.plugin_name)
                )
                problem = _verdict_problem(verdict)
                if problem is not None:
                    raise PluginError(impl.plugin_name, problem)
            except Exception as exc:
                return _plugin_failed_verdict(impl.plugin_name, exc)
            if verdict is None:
                continue
            if not verdict.ok:
                verdict = attrs.evolve(verdict, message=shown_text(verdict.message))
            break
        else:
            return check_number(
                text, allowed_regions=route.countries,
                allow_unlisted_nanp=route.allow_unlisted_nanp,
            )  # fmt: skip
        if not verdict.ok:
            return verdict
        assert verdict.e164 is not None
        safety = check_number(
            verdict.e164, allowed_regions=route.countries,
            allow_unlisted_nanp=route.allow_unlisted_nanp,
        )  # fmt: skip
        return verdict if safety.ok else safety

    def check_call(self, request: CallRequest, first: int = 0) -> Refusal | None:
        """Plugins are asked in order until one refuses (from the ``first``-th on: see
        :meth:`check_call_on_loop`). A plugin that raises or returns something that is not a
        Refusal refuses (fail closed) and is named. Blocking: run it on the store thread."""
        for impl in self._impls("corecall_check_call")[first:]:
            refusal = self._ask_policy(impl, request)
            if refusal is not None:
                return refusal
        return None

    def check_call_on_loop(
        self, request: CallRequest, reads: Any
    ) -> tuple[Refusal | None, int | None]:
        """:meth:`check_call` on the event loop, as far as it can go: the plugins are asked
        in order, each with ``reads`` (the store's :class:`~corecall.store.NowaitReads`, or
        None) as its ``context.store``. Returns ``(refusal or None, None)`` when every plugin
        answered here; ``(None, i)`` when plugin ``i`` must be asked on the store thread (it
        is marked :func:`~corecall.hookspecs.blocking`, or its store read could not be
        answered at once): the caller then runs ``check_call(request, i)`` there, so the
        plugins' order, and which refusal wins, are the same either way."""
        for i, impl in enumerate(self._impls("corecall_check_call")):
            if getattr(impl.function, "corecall_blocking", False):
                return None, i
            context = LoopPluginContext(self.context(impl.plugin_name), reads)
            try:
                refusal = self._ask_policy(impl, request, context)
            except StoreWouldBlock:
                return None, i
            if refusal is not None:
                return refusal, None
        return None, None

    def policy_verdicts(self, request: CallRequest) -> builtins.list[tuple[str, Refusal | None]]:
        """Every policy plugin's answer, in call order, without stopping at the first
        refusal (``corecall policy check`` shows them all). Same fail-closed rule."""
        return [
            (impl.plugin_name, self._ask_policy(impl, request))
            for impl in self._impls("corecall_check_call")
        ]

    def _ask_policy(
        self, impl, request: CallRequest, context: PluginContext | None = None
    ) -> Refusal | None:
        context = context or self.context(impl.plugin_name)
        try:
            refusal = _call(impl, request=request, context=context)
            if refusal is not None and not isinstance(refusal, Refusal):
                raise TypeError(f"returned {type(refusal).__name__}, not a Refusal or None")
            if refusal is not None:
                problem = refusal_problem(refusal.reason, refusal.message)
                if problem is not None:
                    raise TypeError(f"returned a Refusal whose {problem}")
        except Exception as exc:
            log.exception("plugin %r failed in corecall_check_call", impl.plugin_name)
            return Refusal(
                "policy_error",
                f"The call was not placed: the {impl.plugin_name} check failed ({exc}). "
                "Tell your admin.",
                impl.plugin_name,
            )
        if refusal is not None:
            refusal = attrs.evolve(
                refusal,
                message=shown_text(refusal.message),
                operator_message=(
                    shown_text(refusal.operator_message)
                    if refusal.operator_message is not None else None
                ),
                plugin=refusal.plugin or impl.plugin_name,
            )  # fmt: skip
        return refusal

    def resolve_route(self, agent: Agent, routes: dict[str, Route]) -> Route | None:
        """First answer wins. An answer that is not one of the offered ``routes`` is ignored
        (and logged with the plugin's name): a resolver chooses, it cannot invent routes.
        Raises :class:`~corecall.errors.PluginError` naming a resolver that raised."""
        for impl in self._impls("corecall_resolve_route"):
            try:
                route = _call(
                    impl, agent=agent, routes=routes, context=self.context(impl.plugin_name)
                )
            except Exception as exc:
                log.exception("plugin %r failed in corecall_resolve_route", impl.plugin_name)
                raise PluginError(
                    impl.plugin_name,
                    f"its route choice failed ({type(exc).__name__}: {exc})",
                ) from exc
            if route is None:
                continue
            if not isinstance(route, Route) or routes.get(route.code) != route:
                log.error("plugin %r resolved a route that is not offered: %r",
                          impl.plugin_name, route)  # fmt: skip
                continue
            return route
        return None

    def notify_state_changed(self, call: CallRecord, previous: CallState | None) -> None:
        """Tell every plugin; one failing is logged by name and the rest still hear it."""
        self._notify(
            "corecall_call_state_changed", f"call {call.id} -> {call.state.value}",
            call=call, previous=previous,
        )  # fmt: skip

    def notify_call_refused(self, agent_id: int, reason: str) -> None:
        self._notify("corecall_call_refused", reason, agent_id=agent_id, reason=reason)

    def notify_link_state_changed(self, driver: str, link: str, up: bool) -> None:
        self._notify(
            "corecall_link_state_changed", f"{driver} {link}", driver=driver, link=link, up=up
        )

    def notify_chat_edit_sent(self, chat_id: int) -> None:
        self._notify("corecall_chat_edit_sent", "", chat_id=chat_id)

    def notify_chat_rate_limited(self, chat_id: int, seconds: float) -> None:
        self._notify("corecall_chat_rate_limited", "", chat_id=chat_id, seconds=seconds)

    def notify_store_write(self, operation: str, seconds: float) -> None:
        self._notify("corecall_store_write", operation, operation=operation, seconds=seconds)

    def _notify(self, hook_name: str, what: str, **kwargs: Any) -> None:
        """A notification hook: every plugin is told; one failing is logged with its name
        and the others still hear it."""
        for impl in self._impls(hook_name):
            try:
                if "context" in impl.argnames:  # only hooks that take one (cached per plugin)
                    kwargs["context"] = self.context(impl.plugin_name)
                _call(impl, **kwargs)
            except Exception:
                log.exception("plugin %r failed in %s (%s)", impl.plugin_name, hook_name, what)

    def register_commands(
        self, cli: Any, *, only: str | None = None, taken: Iterable[str] = ()
    ) -> None:
        """Let every active plugin (or just the plugin ``only``) add CLI commands to ``cli``
        (a typer app), in the order the plugins were found. A plugin whose hook raises, or
        that adds a command name already taken (on ``cli``, in ``taken``, or by a plugin
        found before it), is logged by name, its commands are dropped and the reason is kept
        in its :attr:`PluginInfo.commands_error`; the others and the core commands are
        unaffected."""
        for impl in self._impls_in_load_order("corecall_register_commands"):
            name = impl.plugin_name
            if not self.is_active(name) or (only is not None and name != only):
                continue
            before_cmds = list(cli.registered_commands)
            before_groups = list(cli.registered_groups)
            taken_now = set(_command_names(before_cmds, before_groups)) | set(taken)
            try:
                _call(impl, cli=cli, context=self.context(name))
                added = _command_names(
                    cli.registered_commands[len(before_cmds) :],
                    cli.registered_groups[len(before_groups) :],
                )
                clash = sorted(set(added) & taken_now) or sorted(
                    {n for n in added if added.count(n) > 1}
                )
                if clash:
                    raise PluginError(name, f"command name(s) already taken: {', '.join(clash)}")
                self.command_owners.update(dict.fromkeys(added, name))
            except Exception as exc:
                cli.registered_commands[:] = before_cmds
                cli.registered_groups[:] = before_groups
                reason = str(exc.args[0] if isinstance(exc, PluginError) else exc)
                reason = reason.removeprefix(f"plugin {name!r}: ")
                if name in self.infos:
                    self.infos[name].commands_error = reason
                log.error("plugin %r: corecall_register_commands failed, its commands are not "
                          "available: %s", name, reason)  # fmt: skip

    def command_names(self, taken: Iterable[str] = ()) -> dict[str, builtins.list[str]]:
        """The top-level CLI commands each active plugin adds, by plugin name (for
        ``corecall plugins list``: ``corecall --help`` loads no plugin, so this is where an
        operator finds them). Registers them on a scratch typer app, with ``taken`` (the
        core's command names) counted as taken, exactly as the real CLI would; also sets
        each :attr:`PluginInfo.commands` and :attr:`PluginInfo.commands_error`."""
        import typer

        scratch = typer.Typer()
        taken = set(taken)
        found: dict[str, builtins.list[str]] = {}
        for impl in self._impls_in_load_order("corecall_register_commands"):
            if not self.is_active(impl.plugin_name):
                continue
            before = len(scratch.registered_commands), len(scratch.registered_groups)
            self.register_commands(scratch, only=impl.plugin_name, taken=taken)
            added = _command_names(
                scratch.registered_commands[before[0] :], scratch.registered_groups[before[1] :]
            )
            if added:
                found[impl.plugin_name] = added
        for name, info in self.infos.items():
            info.commands = found.get(name, [])
        return found

    def register_object(self, obj: object, name: str) -> None:
        """Register an in-process plugin object (tests, embedders, the front ends)."""
        info = PluginInfo(
            name=name, distribution="(in process)", version="-", enabled=True, essential=False
        )
        self.infos[name] = info
        self._register(obj, info)


def plugin_failed_message(exc: PluginError) -> str:
    """What an agent (or operator) reads when a plugin broke while a call was being
    checked: the plugin and what failed, that nothing was dialed, and whom to tell."""
    what = str(exc).removeprefix(f"plugin {exc.plugin!r}: ")
    return f"The call was not placed: the {exc.plugin} plugin: {what:.200}. Tell your admin."


def shown_text(message: str) -> str:
    """A plugin's message as agents, operators and the audit see it: one line (a line break
    would forge a line of its own in `policy check` or the audit), control and bidi-control
    characters replaced (an ESC sequence never reaches a terminal), at most
    :data:`~corecall.fields.MESSAGE_MAX_CHARS` characters."""
    return one_line(message, MESSAGE_MAX_CHARS)


def refusal_problem(reason: object, message: object) -> str | None:
    """What is wrong with a plugin's refusal, or None: ``reason`` must be a stable code
    (1 to 64 characters: lower-case letters, digits, ``_``, ``.``, ``-``) and ``message`` a
    non-blank string saying what was wrong and what works (docs/plugin_hooks.md)."""
    if not isinstance(reason, str) or not _REASON_CODE.fullmatch(reason):
        return f"reason {reason!r:.80} is not a stable code (e.g. 'outside_hours')"
    if not isinstance(message, str) or not message.strip():
        return f"message {message!r:.80} is empty: say what was wrong and what works"
    return None


_REASON_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def _verdict_problem(verdict: object) -> str | None:
    """What is wrong with a ``corecall_parse_number`` answer, or None (None is fine)."""
    if verdict is None:
        return None
    if not isinstance(verdict, NumberVerdict):
        return f"returned {type(verdict).__name__}, not a NumberVerdict"
    if verdict.ok:
        if not is_e164(verdict.e164):
            return f"accepted a non-E.164 number {verdict.e164!r:.80}"
        return None
    problem = refusal_problem(verdict.reason, verdict.message)
    return f"returned a refusal whose {problem}" if problem else None


def _plugin_failed_verdict(plugin: str, exc: Exception) -> NumberVerdict:
    """The fail-closed answer when parse plugin ``plugin`` broke: the number is refused."""
    detail = (
        str(exc).removeprefix(f"plugin {plugin!r}: ")
        if isinstance(exc, PluginError)
        else (f"{type(exc).__name__}: {exc}")
    )
    log.error("plugin %r failed in corecall_parse_number: %s", plugin, detail,
              exc_info=not isinstance(exc, PluginError))  # fmt: skip
    return NumberVerdict.refuse(
        "policy_error",
        f"The number was not checked: the {plugin} number check failed ({detail:.200}). "
        "Nothing was dialed. Tell your admin.",
    )


class PluginStopAttempt(RuntimeError):
    """A hook implementation raised SystemExit or KeyboardInterrupt: a plugin's failure
    (handled like any exception it raises), never a stop of the whole process."""


#: A hook implementation that runs longer than this many seconds is named in the log: on
#: the event loop every call, AMI event and chat message waited for it meanwhile.
SLOW_HOOK_SECONDS = 0.5


def _call(impl, **kwargs):
    """Call one hook implementation with just the arguments it declares (as pluggy does):
    an implementation that does not name ``context`` does not get it. One that takes
    longer than :data:`SLOW_HOOK_SECONDS` is logged with its plugin's name."""
    started = time.perf_counter()
    try:
        return impl.function(*[kwargs[name] for name in impl.argnames])
    except (SystemExit, KeyboardInterrupt) as exc:  # some libraries exit on a bad config
        raise PluginStopAttempt(
            f"raised {type(exc).__name__}({', '.join(map(repr, exc.args))}); a plugin may "
            "not stop corecall"
        ) from exc
    finally:
        elapsed = time.perf_counter() - started
        if elapsed > SLOW_HOOK_SECONDS:
            _report_slow_hook(impl, elapsed)


def _report_slow_hook(impl, seconds: float) -> None:
    hook = getattr(impl.function, "__name__", "a hook")
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a thread of its own (the store thread): nothing else waited
        log.info("plugin %r took %.1f s in %s", impl.plugin_name, seconds, hook)
        return
    advice = (
        "mark it @corecall.hookspecs.blocking to run it on the store thread, or make it faster"
        if hook == "corecall_check_call" else "make it faster or move the work to a thread"
    )  # fmt: skip
    log.warning("plugin %r held the event loop %.1f s in %s: every call and message waited; %s",
                impl.plugin_name, seconds, hook, advice)  # fmt: skip


def _command_names(commands: Iterable[Any], groups: Iterable[Any]) -> list[str]:
    names = []
    for c in commands:
        names.append(c.name or c.callback.__name__.replace("_", "-"))
    for g in groups:
        names.append(g.name or (g.typer_instance.info.name if g.typer_instance else "?"))
    return names


def _hook_names(pm: pluggy.PluginManager, obj: object) -> list[str]:
    return sorted(hc.name for hc in pm.get_hookcallers(obj) or ())


def _kind(hooks: list[str]) -> str:
    return next((kind for hook, kind in _KIND_BY_HOOK if hook in hooks), "other")


def load_plugins(
    disabled: Iterable[str] = (),
    *,
    store_backend: str | None = None,
    trunk_drivers: Iterable[str] = (),
    extra: Iterable[tuple[str, object]] = (),
) -> Plugins:
    """Build a fresh :class:`Plugins`: discover, skip the disabled, import, register.

    ``store_backend`` is the configured backend name; the plugin registering it becomes
    essential, and so does every plugin registering one of ``trunk_drivers`` (the driver
    names configured trunks use). Asking to disable an essential plugin is ignored with a
    warning here (the CLI refuses it up front).
    """
    candidates = _candidates()
    disabled = set(disabled)
    plugins = Plugins()
    plugins._load(candidates, disabled, extra)
    if store_backend is not None:
        reg = plugins.stores.get(store_backend)
        if reg is not None:
            plugins.essential.add(reg.plugin)
            plugins.infos[reg.plugin].essential = True
        elif disabled:
            log.error(
                "store backend %r is not registered; it may come from a disabled plugin "
                "(%s): enable it with `corecall plugins enable NAME` or remove it from "
                "[plugins] disabled", store_backend, ", ".join(sorted(disabled)),
            )  # fmt: skip
    for driver in trunk_drivers:
        reg = plugins.trunk_drivers.get(driver)
        if reg is not None:
            plugins.essential.add(reg.plugin)
            plugins.infos[reg.plugin].essential = True
    resolvers = plugins.route_resolvers()
    if len(resolvers) == 1:
        plugins.essential.add(resolvers[0])
        plugins.infos[resolvers[0]].essential = True
    elif not resolvers:
        log.error(
            "no enabled plugin chooses agents' routes (corecall_resolve_route): no agent can "
            "place a call; enable route_resolver (corecall plugins enable route_resolver, or "
            "remove it from [plugins] disabled)"
        )
    return plugins


def check_can_disable(
    name: str,
    *,
    active_store_plugin: str | None,
    trunk_driver_users: dict[str, dict[str, list[str]]] | None = None,
    available_drivers: Iterable[str] = (),
    route_resolvers: Iterable[str] = (),
) -> None:
    """Raise unless ``name`` is a known plugin that may be disabled.

    ``trunk_driver_users`` maps a plugin name to the trunk drivers it provides that
    configured trunks use, each with those trunks' names (``{"asterisk_ami":
    {"asterisk_ami": ["main", "dev"]}}``): such a plugin is essential. ``available_drivers``
    (the trunk drivers of the enabled plugins) names the alternatives in the refusal.
    ``route_resolvers`` (the enabled plugins implementing ``corecall_resolve_route``): the
    last of them cannot be disabled, since without one no agent has a route to call on."""
    names = known_plugin_names()
    if name not in names:
        raise NotFoundError(f"no plugin named {echo(name)}; known plugins: {', '.join(names)}")
    if name == active_store_plugin:
        raise EssentialPluginError(
            name,
            "provides the active store and cannot be disabled; switch [store] backend "
            "to another store first",
        )
    if list(route_resolvers) == [name]:
        raise EssentialPluginError(
            name,
            "is the only plugin choosing agents' routes (corecall_resolve_route) and cannot "
            "be disabled: without it no agent could place a call; enable or install another "
            "route resolver first",
        )
    for driver, trunks in (trunk_driver_users or {}).get(name, {}).items():
        if trunks:
            listed = ", ".join(f"[trunks.{t}]" for t in trunks)
            raise EssentialPluginError(
                name,
                f"provides trunk driver {driver!r}, which {listed} "
                f"{'uses' if len(trunks) == 1 else 'use'}, and cannot be disabled; "
                + _another_driver_hint(driver, available_drivers),
            )


def _another_driver_hint(driver: str, available: Iterable[str]) -> str:
    others = sorted(set(available) - {driver})
    if others:
        shown = " or ".join(f'driver = "{d}"' for d in others)
        return f"set another driver on those trunks first ({shown})"
    return "no other trunk driver is enabled: enable or install a plugin providing one first"
