"""What the core hands a plugin: :class:`PluginContext`.

Hooks that take a ``context`` argument (``corecall_check_call``, ``corecall_parse_number``,
``corecall_resolve_route``, ``corecall_call_state_changed``, ``corecall_register_commands``)
get the calling plugin's own context: its parsed options and the application's services.
A hook implementation that does not declare ``context`` does not get it (pluggy passes only
the arguments an implementation names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from corecall.errors import ConfigError

if TYPE_CHECKING:
    from corecall.app import App
    from corecall.config import Config
    from corecall.plugins import Plugins
    from corecall.store import Store

T = TypeVar("T")


class PluginContext:
    """One plugin's view of the application.

    * ``name`` — the plugin's name (its entry-point name; the ``NAME`` in ``[plugins.NAME]``).
    * ``options`` — the parsed ``[plugins.NAME]`` table (an instance of the class the
      plugin returned from ``corecall_plugin_options``), or ``None`` without such a class.
    * ``route_options(code)`` — the same, with ``[plugins.NAME.routes.CODE]`` applied.
    * ``config`` — the core :class:`~corecall.config.Config`.
    * ``store`` — the application's :class:`~corecall.store.Store`, opened on first use.
      Store calls block: call them from a CLI command, from ``corecall_check_call`` (where
      ``context.store`` is the store's non-blocking read view while it runs on the event
      loop: see that hook), or through ``await context.run_in_store(fn, ...)`` from async
      code. Never on the event loop directly.
    * ``app`` — the :class:`~corecall.app.App` itself, for anything else.

    Outside an application (a bare :func:`corecall.plugins.load_plugins`, as in unit tests)
    ``options`` are the class defaults plus the environment, and ``store``/``config`` raise
    :class:`~corecall.errors.ConfigError`.
    """

    def __init__(self, name: str, plugins: Plugins, app: App | None = None) -> None:
        self.name = name
        self._plugins = plugins
        self._app = app

    def __repr__(self) -> str:
        return f"<PluginContext {self.name!r}>"

    @property
    def app(self) -> App:
        if self._app is None:
            raise ConfigError(
                f"plugin {self.name!r} runs outside an application: no config, store or app"
            )
        return self._app

    @property
    def config(self) -> Config:
        return self.app.config

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def plugins(self) -> Plugins:
        return self._plugins

    @property
    def options(self) -> Any:
        if self._app is None:
            return self._plugins.default_options(self.name)
        return self._app.plugin_options(self.name)

    def route_options(self, route_code: str) -> Any:
        """The options with the ``[plugins.NAME.routes.<route_code>]`` overrides applied
        (the plain options when that route has none)."""
        if self._app is None:
            return self.options
        return self._app.plugin_route_options(self.name, route_code)

    async def run_in_store(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call on the application's store thread; await its result."""
        return await self.app.run_in_store(fn, *args)


class LoopPluginContext(PluginContext):
    """The context of a ``corecall_check_call`` implementation run on the event loop: the
    same, except that ``store`` is the store's :class:`~corecall.store.NowaitReads` view,
    and without one (PostgreSQL) raises :class:`~corecall.store.StoreWouldBlock` so the
    plugin is asked again on the store thread."""

    def __init__(self, base: PluginContext, reads: Any) -> None:
        super().__init__(base.name, base._plugins, base._app)
        self._reads = reads

    @property
    def store(self) -> Any:
        if self._reads is None:
            from corecall.store import StoreWouldBlock

            raise StoreWouldBlock("store")
        return self._reads


__all__ = ["LoopPluginContext", "PluginContext"]
