"""The hooks corecall calls, one thing per hook.

Plugins implement them with ``@corecall.hookimpl``. Registration hooks receive a small
registry object and call ``register(...)`` on it instead of returning values; choice hooks
are ``firstresult`` so one answer wins; notification hooks are isolated per plugin so one
plugin's failure never stops the others (see :mod:`corecall.plugins`).

Every hook here has a heading in ``docs/plugin_hooks.md``; a test fails when one is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from corecall.context import PluginContext
    from corecall.domain import (
        Agent,
        CallRecord,
        CallRequest,
        CallState,
        NumberVerdict,
        Refusal,
        Route,
    )
    from corecall.registries import (
        RouteRegistry,
        ServiceRegistry,
        StoreRegistry,
        TrunkDriverRegistry,
    )

PROJECT = "corecall"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


def blocking(function):
    """Mark a ``corecall_check_call`` implementation that may block for more than a moment
    (a network lookup, a slow query): it, and the policy plugins asked after it, run on the
    store thread instead of the event loop. Use it above ``@hookimpl``."""
    function.corecall_blocking = True
    return function


@hookspec
def corecall_plugin_options() -> type | None:
    """Declare this plugin's options: return the attrs class for its ``[plugins.NAME]`` table.

    ``NAME`` is the plugin's name (its entry-point name). Make every field with
    :func:`corecall.option` (a default and a one-line doc; ``secret=True`` for keys, tokens,
    passwords). The core validates the table when the application starts (file, key and
    what is expected; unknown keys refused with the known ones listed), applies the
    environment rule (``CORECALL_PLUGINS_<NAME>_<KEY>``), and hands the parsed instance to
    the plugin as ``context.options`` in every hook that takes ``context``. Sub-tables
    ``[plugins.NAME.routes.CODE]`` override any field for one route
    (``context.route_options(code)``). ``corecall init`` writes a commented section from the
    class; ``corecall config show`` prints the values and where they came from.

    Called once per plugin when plugins are loaded; each plugin answers for itself. Return
    ``None`` for no options. A plugin whose answer is not such a class is switched off and
    named, like a plugin that fails to register.
    """


@hookspec(firstresult=True)
def corecall_parse_number(text: str, route: Route, context: PluginContext) -> NumberVerdict | None:
    """Parse and validate the number an agent typed, under ``route``'s rules.

    Return a :class:`~corecall.domain.NumberVerdict`: accepted with the E.164 form, or
    refused with a stable reason code and a message that says what was wrong and what
    works. Return ``None`` to let the next implementation decide. The first non-``None``
    answer wins; when no plugin answers, the core parses (E.164 and NANP formats). Then,
    whoever parsed, the core's number safety check runs on an accepted number and refuses
    emergency, short-code, premium-rate, shared-cost and not-allowed-country numbers: a
    core step, not a plugin, so no plugin can let such a number through.

    Whatever you accept must be ``+`` followed by digits only: the core re-checks it and
    treats anything else as a plugin bug.
    """


@hookspec
def corecall_check_call(request: CallRequest, context: PluginContext) -> Refusal | None:
    """Check a call about to be placed; return a :class:`~corecall.domain.Refusal` to stop it.

    Plugins are asked in order until one refuses; a refusal stops the call before
    anything is dialed and the agent sees its message. Return ``None`` to allow. Use it for
    limits (live calls per agent, calls per minute), business hours, deny lists. A plugin
    that raises here, or returns anything but a Refusal or None, refuses the call in its own
    name (fail closed).

    Runs on the event loop, on the path to the dial: keep it to a moment of computing.
    ``context.store`` reads are allowed: on the loop they are served by the store's
    :meth:`~corecall.store.Store.nowait_reads` (SQLite answers indexed reads at once, no
    thread hop); when that view cannot answer (PostgreSQL, a lock in the way, a method it does
    not offer, such as a write) this plugin and the ones after it are asked again, in order,
    on the store thread, so a plugin may be called twice for one call and must not act, only
    decide. A plugin that blocks for other reasons (network I/O) is marked
    :func:`corecall.hookspecs.blocking` and always runs on the store thread.
    ``context.options`` / ``context.route_options(request.route.code)`` are this plugin's
    parsed options.
    """


@hookspec
def corecall_register_stores(registry: StoreRegistry) -> None:
    """Register agent-store backends: ``registry.register(NAME, factory)``.

    ``factory(config: Config) -> Store`` builds the store (see :class:`corecall.store.Store`).
    The configuration's ``[store] backend`` picks the active one; the plugin that provides
    it is essential and cannot be disabled. Registering a name twice is an error that names
    both plugins.
    """


@hookspec
def corecall_register_routes(registry: RouteRegistry) -> None:
    """Register routes agents can choose: ``registry.register(RouteDefinition(...))``.

    A route is offered to agents only when its plugin is enabled *and* the configuration
    has a ``[routes.CODE]`` table wiring it to a trunk and caller IDs. Codes are unique;
    a duplicate is an error naming both plugins.
    """


@hookspec(firstresult=True)
def corecall_resolve_route(
    agent: Agent, routes: dict[str, Route], context: PluginContext
) -> Route | None:
    """Choose the route for ``agent``'s next call among the enabled, configured ``routes``.

    The first non-``None`` answer wins; an answer that is not one of ``routes`` is ignored.
    The built-in resolver returns the agent's selected route when it is still offered, else
    ``None`` (the agent is asked to pick one). Choose only: never place a call or change the
    agent here.
    """


@hookspec
def corecall_register_trunk_drivers(registry: TrunkDriverRegistry) -> None:
    """Register trunk drivers, the code that originates calls: ``registry.register(cls)``.

    ``cls.NAME`` is what a ``[trunks.X] driver = "..."`` line names. The core builds one
    driver instance per driver name in use (it serves every trunk naming it; the trunk
    comes with each call) and calls its ``originate(...)`` and ``hangup(...)``
    (see :class:`corecall.telephony.driver.TrunkDriver`). This is the origination hook:
    replacing a driver here replaces how calls are placed, and nothing else.
    """


@hookspec
def corecall_call_state_changed(
    call: CallRecord, previous: CallState | None, context: PluginContext
) -> None:
    """Be told that ``call`` moved from ``previous`` to ``call.state``.

    Called after the change is written to the store (or, if the store keeps failing, after
    the write was given up and logged as critical), for every transition, in order, for
    every plugin. A plugin that raises is logged with its name; the others still run and
    the call is unaffected. Do not block: hand slow work to a task or thread.
    """


@hookspec
def corecall_register_commands(cli: typer.Typer, context: PluginContext) -> None:
    """Add CLI commands: ``@cli.command()`` or ``cli.add_typer(group, name="...")``.

    ``cli`` is the ``corecall`` typer app of this invocation (built fresh each time, after the
    configuration named by ``--config`` is loaded; disabled plugins are never asked). A
    command that clashes with a core command or another plugin's is refused and logged with
    the plugin's name. Commands reach the application through ``context`` (closed over):
    ``context.options``, ``context.config``, ``context.store``, ``context.app`` — all loaded
    on first use, so a command that needs none of them never opens the database. Raise
    :class:`corecall.errors.CorecallError` subclasses for user mistakes: the CLI prints them
    as one line with their exit code.
    """


@hookspec
def corecall_register_services(registry: ServiceRegistry) -> None:
    """Register background services: ``registry.register(cls)``, a subclass of
    :class:`corecall.services.Service` keyed by its ``NAME``.

    Every process that places calls (``run``, ``console``, ``demo``) builds one instance of
    each registered service of an enabled plugin (``cls(app)``), awaits ``start()`` once its
    call manager runs and ``stop()`` when it stops. Use it for work that outlives one call:
    an HTTP endpoint, a delivery loop. Short-lived commands (``corecall call``) start none.
    """


@hookspec
def corecall_call_refused(agent_id: int, reason: str) -> None:
    """Be told that a call asked for by ``agent_id`` was refused before anything was dialed,
    with the refusal's stable ``reason`` code (``not_authorized``, ``invalid``,
    ``premium_rate``, ``rate_limited``, a policy plugin's own code...).

    Notification, isolated per plugin, on the event loop thread: do not block.
    """


@hookspec
def corecall_link_state_changed(driver: str, link: str, up: bool) -> None:
    """Be told that a trunk driver's connection ``link`` (for the AMI driver: the
    ``[plugins.asterisk_ami.servers.NAME]`` server name) went up (``up=True``: connected and
    ready to carry calls) or down. A reconnect is a down followed by an up.

    Notification, isolated per plugin, on the event loop thread: do not block.
    """


@hookspec
def corecall_chat_edit_sent(chat_id: int) -> None:
    """Be told that a front end edited a message in place in ``chat_id`` (a call's status
    message, the live view): what Telegram rate-limits to about one edit per second.

    Notification, isolated per plugin, on the event loop thread: do not block.
    """


@hookspec
def corecall_chat_rate_limited(chat_id: int, seconds: float) -> None:
    """Be told that the chat service refused a request to ``chat_id`` for ``seconds``
    seconds (Telegram's FloodWait); corecall waits that long and sends the newest text.

    Notification, isolated per plugin, on the event loop thread: do not block.
    """


@hookspec
def corecall_store_write(operation: str, seconds: float) -> None:
    """Be told how long a store write on the call path took: ``operation`` is
    ``create_call`` or ``save_progress``; ``seconds`` is the wall time from handing the
    write to the store thread to its completion (queueing included).

    Notification, isolated per plugin, on the event loop thread: do not block.
    """


__all__ = ["PROJECT", "hookimpl", "hookspec"]
