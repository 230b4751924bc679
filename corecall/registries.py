"""The small registry objects that registration hooks receive.

A plugin calls ``registry.register(...)``; the plugin manager sets ``registry.plugin`` to
the registering plugin's name around each call, so duplicates are reported with both names
(like hatch: classes keyed by a ``NAME``; duplicate or missing names raise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from corecall import fields
from corecall.domain import RouteDefinition
from corecall.errors import PluginError
from corecall.options import check_options_class

if TYPE_CHECKING:
    from corecall.store import Store


@attrs.frozen
class Registered:
    """Something a plugin registered, remembered with the plugin's name."""

    name: str
    value: Any
    plugin: str
    #: The options class for this thing's extra configuration keys (``[store]`` for a store
    #: backend, ``[trunks.X]`` for a trunk driver), or None when it takes none.
    options: type | None = None


class _Registry:
    kind = "thing"

    def __init__(self) -> None:
        self.plugin: str = "?"
        self._items: dict[str, Registered] = {}

    def _add(self, name: str, value: Any, options: type | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(self.plugin, f"registered a {self.kind} without a name")
        if name in self._items:
            first = self._items[name].plugin
            raise PluginError(
                self.plugin,
                f"{self.kind} {name!r} is already registered by plugin {first!r}; "
                f"disable one of them (corecall plugins disable NAME)",
            )
        if options is not None:
            try:
                check_options_class(options, owner=f"{self.kind} {name!r}")
            except TypeError as exc:
                raise PluginError(self.plugin, str(exc)) from None
        self._items[name] = Registered(name, value, self.plugin, options)

    def drop_plugin(self, plugin: str) -> None:
        """Forget everything ``plugin`` registered (used when its hook failed midway)."""
        self._items = {k: v for k, v in self._items.items() if v.plugin != plugin}

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> Registered | None:
        return self._items.get(name)

    def items(self) -> dict[str, Registered]:
        return dict(self._items)

    def names(self) -> list[str]:
        return list(self._items)


class RouteRegistry(_Registry):
    """Routes by code. ``register(RouteDefinition(code="M", name="Main", button=...))``."""

    kind = "route"

    def register(self, definition: RouteDefinition) -> None:
        if not isinstance(definition, RouteDefinition):
            raise PluginError(self.plugin, "register() expects a corecall.RouteDefinition")
        code = definition.code
        if not (isinstance(code, str) and code.isascii() and code.isalnum() and code.isupper()):
            raise PluginError(
                self.plugin, f"route code {code!r} must be upper-case letters/digits, e.g. 'M'"
            )
        for what, value, limit in (
            ("code", code, fields.ROUTE_CODE_MAX_CHARS),
            ("name", definition.name, fields.ROUTE_NAME_MAX_CHARS),
            ("button", definition.button, fields.ROUTE_BUTTON_MAX_CHARS),
            ("description", definition.description or "-", fields.ROUTE_DESCRIPTION_MAX_CHARS),
        ):
            # Shown as they are to agents (buttons, every route sentence) and operators.
            problem = fields.display_text_problem(value, limit, what)
            if problem is not None:
                raise PluginError(self.plugin, f"route {code!r}: {problem}")
        self._add(code, definition)

    def definition(self, code: str) -> RouteDefinition | None:
        item = self.get(code)
        return item.value if item else None


StoreFactory = Callable[..., "Store"]


class StoreRegistry(_Registry):
    """Store backends by name. ``register("sqlite", factory, options=SqliteOptions)``.

    Without ``options`` the factory is called as ``factory(config)`` and ``[store]`` takes no
    other key than ``backend``; with an options class (see :mod:`corecall.options`) the other
    keys of ``[store]`` are validated against it and the factory is called as
    ``factory(config, options)``.
    """

    kind = "store backend"

    def register(self, name: str, factory: StoreFactory, *, options: type | None = None) -> None:
        if not callable(factory):
            raise PluginError(self.plugin, f"store backend {name!r}: factory is not callable")
        self._add(name, factory, options)


class TrunkDriverRegistry(_Registry):
    """Trunk driver classes keyed by their ``NAME`` attribute. ``register(MyDriver)``.

    A driver class may set ``OPTIONS`` to an options class (:mod:`corecall.options`): the
    keys of a ``[trunks.X]`` table naming the driver, other than ``driver``, are validated
    against it and the parsed instance is ``request.trunk.options``.
    """

    kind = "trunk driver"

    def register(self, driver_class: type) -> None:
        name = getattr(driver_class, "NAME", None)
        if not name:
            raise PluginError(
                self.plugin, f"trunk driver {driver_class!r} has no NAME class attribute"
            )
        self._add(name, driver_class, getattr(driver_class, "OPTIONS", None))


class ServiceRegistry(_Registry):
    """Background service classes keyed by their ``NAME``. ``register(MyService)``; see
    :class:`corecall.services.Service`."""

    kind = "service"

    def register(self, service_class: type) -> None:
        name = getattr(service_class, "NAME", None)
        if not name:
            raise PluginError(self.plugin, f"service {service_class!r} has no NAME class attribute")
        self._add(name, service_class)
