"""Background services plugins run beside the calls (the metrics endpoint, webhook delivery).

A plugin registers a :class:`Service` subclass with ``corecall_register_services``. Every
process that places calls (``run``, ``console``, ``demo``) builds one instance per
registered service (``cls(app)``), starts them after its call manager started and stops
them, in reverse order, before the call manager stops. A service that fails to start is
logged with its plugin's name and left out (one line when it says why, e.g. a port already
in use; with the traceback when it is a bug), the calls go on without it, and
:meth:`Services.problems` (``corecall health``) says it is off until the process restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from corecall.errors import CorecallError

if TYPE_CHECKING:
    from corecall.app import App

log = logging.getLogger(__name__)


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


#: Seconds a service's start() may take before the process goes on without it (the bot
#: does not answer before the services started: a start that never returns, e.g. a
#: connect to a host that does not answer, would keep it silent for ever).
SERVICE_START_TIMEOUT = 10.0
#: Seconds a service's stop() may take before the process goes on stopping without it.
SERVICE_STOP_TIMEOUT = 5.0


class Service:
    """Base class: override what you need. ``self.app`` is the running :class:`App`.

    While it runs, the service itself is registered with the plugin manager, so notification
    hooks written as methods (``@hookimpl def corecall_call_state_changed(self, ...)``)
    reach it.
    """

    #: The name the registry keys the class by (usually the plugin's NAME).
    NAME: str = ""

    def __init__(self, app: App) -> None:
        self.app = app
        #: ``await self.run_in_store(fn, *args)`` runs a blocking store call on the
        #: application's store thread (one thread for every store call: SQLite writers
        #: never contend for its lock). Set by the core before start().
        self.run_in_store: Callable[..., Awaitable[Any]] = _to_thread

    async def start(self) -> None:
        """Start background work (tasks, servers); return once started."""

    async def stop(self) -> None:
        """Stop it; keep nothing running. Called once, even after a failed start."""

    def problems(self) -> list[str]:
        """What is wrong right now, one sentence each (shown by ``corecall health``)."""
        return []


class Services:
    """The running services of one process."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.running: list[tuple[str, Service]] = []
        #: Services that failed to start: name -> why (for ``corecall health``).
        self.failed: dict[str, str] = {}
        #: How the services reach the store (the call manager sets its store executor).
        self.run_in_store: Callable[..., Awaitable[Any]] = _to_thread

    async def start(self) -> None:
        """Start every registered service, one after the other, each within
        :data:`SERVICE_START_TIMEOUT` seconds. One that raises or does not start in time is
        logged with its plugin's name, stopped (its ``stop()`` is still called once) and
        left out; the others and the calls go on."""
        for name, registered in self.app.plugins.services.items().items():
            service = None
            try:
                service = registered.value(self.app)
                service.run_in_store = self.run_in_store
                async with asyncio.timeout(SERVICE_START_TIMEOUT):
                    await service.start()
            except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a plugin cannot exit
                if isinstance(exc, TimeoutError):
                    why = f"did not start within {SERVICE_START_TIMEOUT:.0f} s"
                    log.error("service %r of plugin %r %s, running without it",
                              name, registered.plugin, why)  # fmt: skip
                else:
                    why = f"failed to start: {exc}"
                    expected = isinstance(exc, OSError | CorecallError)  # says why: no traceback
                    report = log.error if expected else log.exception
                    report("service %r of plugin %r failed to start, running without it: %s",
                           name, registered.plugin, exc)  # fmt: skip
                self.failed[name] = f"service {name!r} is off ({why})"
                if service is not None:
                    await self._stop_one(name, service)
                continue
            self.running.append((name, service))
            # A running service hears the notification hooks it implements as methods
            # (``@hookimpl def corecall_call_state_changed(self, call, previous)``).
            self.app.plugins.pm.register(service, name=f"{registered.plugin}:{name}")

    async def stop(self) -> None:
        while self.running:
            name, service = self.running.pop()
            if self.app.plugins.pm.is_registered(service):
                self.app.plugins.pm.unregister(service)
            await self._stop_one(name, service)

    @staticmethod
    async def _stop_one(name: str, service: Service) -> None:
        try:
            async with asyncio.timeout(SERVICE_STOP_TIMEOUT):  # a stop never hangs
                await service.stop()
        except TimeoutError:
            log.error("service %r did not stop within %.0f s", name, SERVICE_STOP_TIMEOUT)
        except Exception:
            log.exception("service %r failed to stop", name)

    def problems(self) -> list[str]:
        """Services that failed to start, then what each running service reports."""
        found = list(self.failed.values())
        for name, service in self.running:
            try:
                found += service.problems()
            except Exception:  # one plugin's bug never hides the others' problems
                log.exception("service %r failed to report its problems", name)
                found.append(f"service {name!r} failed to report its problems")
        return found

    def get(self, name: str) -> Service | None:
        return next((s for n, s in self.running if n == name), None)
