"""corecall plugin: Prometheus metrics on ``[plugins.metrics] listen = "127.0.0.1:9464"``.

Every process that places calls (``corecall run``, ``console``, ``demo``) serves
``http://LISTEN/metrics`` while it runs, when ``listen`` is set (it is empty by default, so
nothing opens a port unasked). The metrics and their labels are listed in
:mod:`corecall_metrics.metrics` and docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import attrs
from prometheus_client import start_http_server

from corecall import option
from corecall.fields import echo
from corecall.hookspecs import hookimpl
from corecall.services import Service
from corecall_metrics.metrics import CallMetrics

NAME = "metrics"
log = logging.getLogger("corecall.metrics")


@attrs.frozen
class MetricsOptions:
    """``[plugins.metrics]``."""

    PER_ROUTE: ClassVar[bool] = False  # process-wide: no [plugins.NAME.routes.CODE]

    listen: str = option(
        "",
        doc='host:port to serve /metrics on, e.g. "127.0.0.1:9464"; empty: no endpoint.',
        validator=lambda _instance, _attribute, value: listen_address(value),
    )

    def address(self) -> tuple[str, int] | None:
        """(host, port), or None when not serving."""
        return listen_address(self.listen)


def listen_address(listen: str) -> tuple[str, int] | None:
    """``"host:port"`` as (host, port); None for ``""``. Raises ValueError naming what
    works (checked when the configuration is read)."""
    if not listen:
        return None
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'expected host:port, e.g. "127.0.0.1:9464", got {echo(listen)}')
    return host, int(port)


def options_for(app) -> MetricsOptions:
    """The plugin's parsed ``[plugins.metrics]`` options."""
    return app.plugin_options(NAME) or MetricsOptions()


class Metrics(Service):
    """Keeps the metrics up to date from the notification hooks and serves them."""

    NAME = NAME

    def __init__(self, app) -> None:
        super().__init__(app)
        self.options = options_for(app)
        self.metrics = CallMetrics()
        self._server: Any = None  # prometheus_client's WSGIServer once started
        self.url: str | None = None

    async def start(self) -> None:
        address = self.options.address()
        if address is None:
            return
        host, port = address
        try:
            self._server, _thread = await asyncio.to_thread(
                start_http_server, port, host, self.metrics.registry
            )
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {self.options.listen}: {exc.strerror}"
            ) from None
        self.url = f"http://{self.options.listen}/metrics"
        log.info("metrics on %s", self.url)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.shutdown)
            server.server_close()

    # ---- notification hooks (the running service is registered with the plugins)
    @hookimpl
    def corecall_call_state_changed(self, call, previous) -> None:
        self.metrics.call_state_changed(call, previous)

    @hookimpl
    def corecall_call_refused(self, reason) -> None:
        self.metrics.call_refused(reason)

    @hookimpl
    def corecall_link_state_changed(self, driver, link, up) -> None:
        self.metrics.link_state_changed(driver, link, up)

    @hookimpl
    def corecall_chat_edit_sent(self) -> None:
        self.metrics.chat_edit_sent()

    @hookimpl
    def corecall_chat_rate_limited(self, seconds) -> None:
        self.metrics.chat_rate_limited(seconds)

    @hookimpl
    def corecall_store_write(self, operation, seconds) -> None:
        self.metrics.store_write(operation, seconds)


@hookimpl
def corecall_plugin_options():
    return MetricsOptions


@hookimpl
def corecall_register_services(registry) -> None:
    registry.register(Metrics)


__all__ = ["NAME", "CallMetrics", "Metrics", "MetricsOptions"]
