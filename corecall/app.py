"""The application context: configuration, plugins, store, routes and trunk drivers.

Every front end (CLI, Telegram bot, console, demo) builds one :class:`App` from a
:class:`~corecall.config.Config` and asks it for what it needs. Things are built lazily,
so ``corecall plugins list`` never opens a database and ``corecall number check`` never
connects to Asterisk.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from corecall.config import Config
from corecall.domain import Route, TrunkConfig
from corecall.effective_config import EffectiveOptions, resolve_options
from corecall.errors import ConfigError
from corecall.fields import echo
from corecall.plugins import Plugins, load_plugins, read_disabled
from corecall.store import Store
from corecall.telephony.driver import TrunkDriver

if TYPE_CHECKING:
    from corecall.serving import ServingLock
    from corecall.store.executor import StoreExecutor
    from corecall.supervision import Supervisor

T = TypeVar("T")


class App:
    def __init__(self, config: Config, *, extra_plugins: Iterable[tuple[str, object]] = ()) -> None:
        self.config = config
        self._extra_plugins = list(extra_plugins)
        self._store: Store | None = None
        self._serving: ServingLock | None = None  # see claim_serving

    # ---- plugins
    @cached_property
    def disabled_plugins(self) -> set[str]:
        return set(self.config.disabled_plugins) | read_disabled(self.config.plugin_state_path)

    def _disabled_hint(self) -> str:
        """Which plugins are disabled and where (a disabled plugin is never imported, so
        what it would register is unknown): plugins.json is shared by every configuration
        that names this data directory, so another one's `plugins disable` shows up here."""
        in_state = sorted(read_disabled(self.config.plugin_state_path))
        in_config = sorted(self.config.disabled_plugins)
        parts = []
        if in_state:
            parts.append(f"{', '.join(in_state)} in {self.config.plugin_state_path} "
                         "(corecall plugins enable NAME)")  # fmt: skip
        if in_config:
            parts.append(f"{', '.join(in_config)} in [plugins] disabled")
        return f"; disabled plugins: {'; '.join(parts)}" if parts else ""

    @cached_property
    def plugins(self) -> Plugins:
        plugins = load_plugins(
            self.disabled_plugins,
            store_backend=self.config.store.backend,
            trunk_drivers=sorted({t.driver for t in self.config.trunks.values()}),
            extra=self._extra_plugins,
        )
        plugins.bind(self)
        return plugins

    # ---- plugin-owned configuration
    @cached_property
    def options(self) -> EffectiveOptions:
        """Every plugin-owned table validated against its owner's options class (raises
        ConfigError naming file and key). Built on first use: ``corecall plugins ...`` works
        even when a plugin's table is wrong."""
        return resolve_options(self.config, self.plugins)

    def plugin_options(self, name: str) -> Any:
        """Plugin ``name``'s parsed ``[plugins.NAME]`` options (None if it declares none)."""
        parsed = self.options.plugins.get(name)
        return parsed.value if parsed is not None else None

    def plugin_route_options(self, name: str, route_code: str) -> Any:
        """Plugin ``name``'s options with ``[plugins.NAME.routes.<route_code>]`` applied."""
        parsed = self.options.plugin_routes.get((name, route_code))
        return parsed.value if parsed is not None else self.plugin_options(name)

    def trunk(self, name: str) -> TrunkConfig:
        """Trunk ``name`` with its driver's parsed options."""
        return self.options.trunks[name]

    def active_store_plugin(self) -> str | None:
        reg = self.plugins.stores.get(self.config.store.backend)
        return reg.plugin if reg else None

    def trunk_driver_users(self) -> dict[str, dict[str, list[str]]]:
        """{plugin: {driver: [trunk, ...]}} for the trunk drivers configured trunks use."""
        users: dict[str, dict[str, list[str]]] = {}
        for trunk in sorted(self.config.trunks.values(), key=lambda t: t.name):
            reg = self.plugins.trunk_drivers.get(trunk.driver)
            if reg is not None:
                users.setdefault(reg.plugin, {}).setdefault(trunk.driver, []).append(trunk.name)
        return users

    # ---- store
    @property
    def store(self) -> Store:
        if self._store is None:
            reg = self.plugins.stores.get(self.config.store.backend)
            if reg is None:
                known = ", ".join(self.plugins.stores.names()) or "none"
                raise ConfigError(
                    f"store backend {self.config.store.backend!r} is not available: no enabled "
                    f"plugin registers it (available: {known}){self._disabled_hint()}",
                    path=str(self.config.path) if self.config.path else None,
                    key="store.backend",
                )
            parsed = self.options.store
            store = reg.value(self.config, parsed.value) if parsed else reg.value(self.config)
            store.open()
            self._store = store
        return self._store

    # ---- shared services: one store thread, one supervisor
    @cached_property
    def store_executor(self) -> StoreExecutor:
        """The application's ONE store thread: the conversation, agent administration, the
        call manager and plugins (``context.run_in_store``) all run store calls on it, in
        order. Shut down by :meth:`close`."""
        from corecall.store.executor import StoreExecutor

        return StoreExecutor()

    @cached_property
    def supervisor(self) -> Supervisor:
        """Watches the application's background tasks (see :mod:`corecall.supervision`)."""
        from corecall.supervision import Supervisor

        return Supervisor()

    async def run_in_store(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call on the application's store thread and return its
        result (or raise what it raised). Never call the store on the event loop."""
        if kwargs:
            return await self.store_executor.run(functools.partial(fn, *args, **kwargs))
        return await self.store_executor.run(fn, *args)

    def claim_serving(self, role: str) -> None:
        """Become the one process serving this store's calls (``run``, ``console``,
        ``demo``: see :mod:`corecall.serving`), until :meth:`close`. Raises
        :class:`~corecall.serving.StoreServedElsewhere` naming the process that serves it."""
        from corecall.serving import ServingLock, serving_lock_path

        if self._serving is not None:
            return
        store = self.store
        location = str(getattr(store, "location", "") or self.config.store.backend)
        lock = ServingLock(
            serving_lock_path(location, self.config.data_dir),
            f"the {self.config.store.backend} store {location}",
            store,
        )
        lock.acquire(role)
        self._serving = lock

    def close(self) -> None:
        """Finish the store jobs already submitted, stop the store thread, close the store."""
        if self._serving is not None:
            self._serving.release()
            self._serving = None
        executor = self.__dict__.pop("store_executor", None)
        if executor is not None:
            executor.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    # ---- routes
    def routes(self) -> dict[str, Route]:
        """The routes agents may use now: registered by an enabled plugin AND configured."""
        offered: dict[str, Route] = {}
        for code, rc in self.config.routes.items():
            reg = self.plugins.routes.get(code)
            if reg is None:
                continue
            definition = reg.value
            offered[code] = Route(
                code=code,
                name=rc.name or definition.name,
                button=definition.button,
                trunk=self.trunk(rc.trunk),
                caller_ids=rc.caller_ids,
                countries=rc.countries,
                plugin=reg.plugin,
                allow_unlisted_nanp=rc.allow_unlisted_nanp,
                confirm=rc.confirm,
                confirm_timeout=rc.confirm_timeout,
                agent_leg_caller_id=rc.agent_leg_caller_id,
            )
        return offered

    def call_problems(self) -> list[tuple[str, str]]:
        """Configuration reasons a ``/call`` would fail now, as ``(problem, fix)`` pairs.

        The same rules ``call``, ``console`` and ``run`` apply, without connecting to
        anything: a configured route whose plugin is disabled or missing, no route offered
        at all, and an offered route whose trunk driver no enabled plugin provides (a typo
        like ``driver = "asterisk"`` included). ``asterisk check`` starts with these.
        """
        problems: list[tuple[str, str]] = []
        offered = self.routes()
        disabled = sorted(self.disabled_plugins)
        for code in sorted(self.config.routes):
            if code not in offered:
                problems.append((
                    f"route {code} is configured, but no enabled plugin registers it",
                    "enable its plugin (corecall plugins list; corecall plugins enable NAME)"
                    + (f"; disabled now: {', '.join(disabled)}" if disabled else ""),
                ))  # fmt: skip
        if not offered:
            problems.append((
                "no route is offered, so every /call is refused",
                "configure a [routes.CODE] table and enable its route plugin",
            ))  # fmt: skip
        available = self.plugins.trunk_drivers.names()
        for code, route in sorted(offered.items()):
            driver = route.trunk.driver
            if self.plugins.trunk_drivers.get(driver) is None:
                problems.append((
                    f"route {code}: trunk {route.trunk.name!r} uses driver {driver!r}, which no "
                    f"enabled plugin provides (available: {', '.join(available) or 'none'})",
                    f"fix [trunks.{route.trunk.name}] driver, or enable the plugin providing it",
                ))  # fmt: skip
        return problems

    def route(self, code: str) -> Route:
        """An offered route by code, or a ConfigError listing the offered ones."""
        routes = self.routes()
        if code not in routes:
            known = ", ".join(sorted(routes)) or "none"
            raise ConfigError(f"route {echo(code)} is not offered (offered routes: {known})")
        return routes[code]

    def allowed_regions(self) -> tuple[str, ...]:
        """Every region any configured route may call (used to check agents' own phones)."""
        regions: list[str] = []
        for rc in self.config.routes.values():
            regions.extend(r for r in rc.countries if r not in regions)
        return tuple(regions) or ("US", "CA")

    def allows_unlisted_nanp(self) -> bool:
        """Does any configured route accept NANP numbers the number data doesn't list yet?"""
        return any(rc.allow_unlisted_nanp for rc in self.config.routes.values())

    # ---- trunk drivers
    def build_drivers(self, routes: Iterable[Route] | None = None) -> dict[str, TrunkDriver]:
        """One driver instance per driver name used by the offered routes' trunks."""
        drivers: dict[str, TrunkDriver] = {}
        for route in routes if routes is not None else self.routes().values():
            name = route.trunk.driver
            if name in drivers:
                continue
            reg = self.plugins.trunk_drivers.get(name)
            if reg is None:
                known = ", ".join(self.plugins.trunk_drivers.names()) or "none"
                raise ConfigError(
                    f"trunk driver {name!r} is not available (available: {known}); enable its "
                    f"plugin or change the driver{self._disabled_hint()}",
                    path=str(self.config.path) if self.config.path else None,
                    key=f"trunks.{route.trunk.name}.driver",
                )
            driver = reg.value(self.config)
            driver.context = self.plugins.context(reg.plugin)
            driver.link_observer = self.plugins.notify_link_state_changed
            drivers[name] = driver
        return drivers

    def config_problems(self) -> list[str]:
        """Problems the offered routes' trunk drivers find in the configuration without
        connecting (:meth:`TrunkDriver.config_problems`); a missing driver is one too."""
        try:
            drivers = self.build_drivers()
        except ConfigError as exc:
            return [str(exc)]
        return [problem for driver in drivers.values() for problem in driver.config_problems()]

    def call_manager(
        self, drivers: dict[str, TrunkDriver] | None = None, *, services: bool = False
    ):
        """A CallManager on the offered routes' drivers. ``services``: also run the plugins'
        background services with it (the long-running front ends do; ``corecall call``
        does not)."""
        from corecall.calls import CallManager
        from corecall.services import Services

        return CallManager(
            config=self.config,
            plugins=self.plugins,
            store=self.store,
            routes=self.routes,
            drivers=drivers if drivers is not None else self.build_drivers(),
            store_executor=self.store_executor,
            supervisor=self.supervisor,
            services=Services(self) if services else None,
        )
