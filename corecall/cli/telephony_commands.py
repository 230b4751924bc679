"""``corecall call`` and ``corecall asterisk render|check`` (telephony).

``corecall call`` places a real call through the route's configured trunk and prints every
state change as it happens: operators test a trunk without Telegram. The call is recorded
like any other (agent id 0, audited with the operator's name).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING

import typer

from corecall.cli.common import actor, console, err_console, state
from corecall.errors import ConfigError, RefusedError, TelephonyError

if TYPE_CHECKING:
    from corecall.domain import CallRecord, CallState

asterisk_app = typer.Typer(
    help="Asterisk wiring: print the config corecall needs, check a live server.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("call")(call)
    app.add_typer(asterisk_app, name="asterisk")


# --------------------------------------------------------------------------- corecall call


class quiet_retries:
    """One-shot commands print each cause once: a trunk driver's reconnect warnings
    ("retrying in 0.2 s") are not shown unless --verbose/--debug."""

    def __enter__(self) -> None:
        self._root = logging.getLogger()
        self._level = self._root.level
        if not state.verbose:
            self._root.setLevel(logging.ERROR)

    def __exit__(self, *exc_info) -> None:
        self._root.setLevel(self._level)


def _stage_lines(record: CallRecord, shown: int, *, confirms: bool = True) -> tuple[list[str], int]:
    """One line per stage the call passed since the stage ordered ``shown``.

    Read from the record's per-stage timestamps, not from the updates seen: a watcher that
    attaches late, or updates coalesced in one write, must not hide a stage.
    Returns the lines and the order of the last stage shown.
    """
    from corecall.domain import STAGE_TIMESTAMP_FIELD, CallState

    lines = []
    for stage in CallState:
        # Waiting for the agent's key has no stored time of its own: it starts as the agent
        # answers (see STAGE_TIMESTAMP_FIELD).
        field = STAGE_TIMESTAMP_FIELD.get(stage, "agent_answered_at")
        if stage is CallState.QUEUED:
            continue
        if stage is CallState.AWAITING_CONFIRMATION and not confirms:
            continue  # a route with confirm = "none" never waits for a key
        at = getattr(record, field)
        if stage.order <= shown or at is None or stage.order > record.state.order:
            continue
        lines.append(_line(record, stage, at))
        shown = stage.order
    return lines, shown


def _line(record: CallRecord, stage: CallState, at) -> str:
    from corecall.domain import CallState

    since = (at - record.created_at).total_seconds() if record.created_at else 0.0
    text = f"{since:7.2f}s  {stage.value}"
    if stage is CallState.AWAITING_CONFIRMATION:
        text += ": press 1 on the agent's phone to connect"
    if stage is CallState.ENDED:
        text += f": {record.reason.value if record.reason else 'unknown'}"
        if record.detail:
            text += f" ({record.detail})"
        if record.ring_seconds is not None and record.target_ringing_at is not None:
            text += f"; rang {record.ring_seconds:.1f}s"
        if record.talk_seconds is not None:
            text += f", talked {record.talk_seconds:.1f}s"
    return text


def call(
    route: str = typer.Option(..., "--route", "-r", help="Route code, e.g. M or D."),
    agent_phone: str = typer.Option(
        ..., "--agent-phone", help="The phone rung first (yours), e.g. +12125550123."
    ),
    target: str = typer.Option(..., "--target", help="The number to call, e.g. (212) 555-0199."),
    timeout: float = typer.Option(
        None,
        "--timeout",
        min=1,
        help="Seconds after which corecall hangs up the call itself (recorded as timed_out).",
        show_default="none: follow the call until it ends",
    ),
) -> None:
    """Place a real test call through a route's trunk and follow it until it ends.

    Exit status 0 when the call connected (and ended normally or at --timeout), 1 otherwise
    (with the reason). The call is recorded as an operator test call (agent id 0 in
    `calls list`) and audited with your user name.
    """
    import asyncio

    from corecall.domain import EndReason

    app = state.app()
    chosen = app.route(route.upper())
    drivers = app.build_drivers([chosen])
    manager = app.call_manager(drivers)
    who = actor()
    with quiet_retries():
        confirms = chosen.confirm != "none"
        run = _run_call(manager, chosen.code, agent_phone, target, who, timeout, confirms=confirms)
        final = asyncio.run(run)
    if final is None:
        raise typer.Exit(1)
    if final.connected_at is not None and final.reason in (
        EndReason.COMPLETED,
        EndReason.TIMED_OUT,
    ):
        how = "completed" if final.reason is EndReason.COMPLETED else "connected; " + final.detail
        console.print(f"call {final.id} {how}")
        return
    # The cause (detail) was printed once, on the "ended" line above: not again here.
    reason = final.reason.value if final.reason else "unknown"
    err_console.print(f"call {final.id} failed: {reason}")
    raise typer.Exit(1)


async def _run_call(manager, route_code, agent_phone, target, who, timeout, *, confirms=True):
    import asyncio

    from corecall.calls import OPERATOR_AGENT_ID
    from corecall.domain import CallState, EndReason

    await manager.start(reconcile=False)  # never take over a running bot's live calls
    # A trunk that cannot work (AMI unreachable, login refused) is said once, with its
    # cause, before anything is recorded; the driver would otherwise keep retrying.
    problems = [p for driver in manager.drivers.values() for p in driver.problems()]
    if problems:
        await manager.stop()
        raise TelephonyError("; ".join(dict.fromkeys(problems)))
    try:
        try:
            record = await manager.place_operator_call(route_code, agent_phone, target, actor=who)
        except RefusedError as exc:
            err_console.print(f"refused ({exc.reason}): {exc.message}")
            return None
        console.print(
            f"call {record.id} on route {route_code}: ringing {record.agent_phone} first, then "
            f"{record.target} with caller ID {record.caller_id} (recorded as an operator test "
            f"call, agent id {OPERATOR_AGENT_ID})"
        )
        last = record
        shown = CallState.QUEUED.order
        try:
            async with asyncio.timeout(timeout):
                async for update in manager.watch(record.id):
                    last = update
                    lines, shown = _stage_lines(update, shown, confirms=confirms)
                    for line in lines:
                        console.print(line)
        except TimeoutError:
            why = f"corecall hung up after {timeout:g}s (--timeout)"
            console.print(f"no end after {timeout:g}s: corecall is hanging up")
            with contextlib.suppress(Exception):
                await manager.hangup(record.id, reason=EndReason.TIMED_OUT, detail=why)
            last = await manager.wait_final(record.id, 15)
            for line in _stage_lines(last, shown, confirms=confirms)[0]:
                console.print(line)
        except (KeyboardInterrupt, asyncio.CancelledError):
            with contextlib.suppress(Exception):
                await manager.hangup(record.id)
                last = await manager.wait_final(record.id, 15)
            raise
        return last
    finally:
        await manager.stop()


# --------------------------------------------------------------------------- corecall asterisk


def _asterisk_plugin_module(name: str):
    """A module of the Asterisk plugin (``corecall-trunk-asterisk``), imported on use."""
    import importlib

    try:
        return importlib.import_module(f"corecall_asterisk.{name}")
    except ImportError:
        raise ConfigError(
            "the Asterisk plugin is not installed: pip install corecall-trunk-asterisk "
            "(plugins/trunk_asterisk in the source tree)"
        ) from None


def _ami_trunks(config):
    """{server: {endpoint: TrunkConfig}} for the routes on asterisk_ami trunks."""
    servers: dict = {}
    for _code, rc in sorted(config.routes.items()):
        trunk = config.trunks[rc.trunk]
        if trunk.driver == "asterisk_ami" and trunk.server and trunk.endpoint:
            servers.setdefault(trunk.server, {}).setdefault(trunk.endpoint, trunk)
    return servers


def _endpoint_users(config, server: str) -> dict[str, str]:
    """{endpoint: "route M (trunk main), ..."} for one server."""
    users: dict[str, list[str]] = {}
    for code, rc in sorted(config.routes.items()):
        trunk = config.trunks[rc.trunk]
        if trunk.driver == "asterisk_ami" and trunk.server == server and trunk.endpoint:
            users.setdefault(trunk.endpoint, []).append(f"route {code}, trunk {trunk.name}")
    return {endpoint: "; ".join(labels) for endpoint, labels in users.items()}


@asterisk_app.command("render")
def render(
    only: str = typer.Option(
        None, "--only", help="Print just one file: pjsip, extensions or manager."
    ),
    show_secret: bool = typer.Option(
        False, "--show-secret", help="Put the configured AMI secret into manager.conf."
    ),
    sip_bind: str = typer.Option(
        "127.0.0.1:5060",
        "--sip-bind",
        metavar="IP:PORT",
        help="Where Asterisk listens for the providers (the address facing them).",
    ),
) -> None:
    """Print pjsip.conf, extensions.conf and manager.conf for the configured routes.

    One set per Asterisk server. Each trunk's provider address comes from its table in the
    config (``provider_host``, ``provider_port``); without them a documentation address is
    used and a warning says so.
    """
    asterisk_conf = _asterisk_plugin_module("render")

    config = state.app().config
    files = ("pjsip", "extensions", "manager")
    if only is not None and only not in files:
        raise ConfigError(f"--only must be one of: {', '.join(files)}")
    servers = _ami_trunks(config)
    if not servers:
        raise ConfigError(
            'no route uses an "asterisk_ami" trunk; set driver = "asterisk_ami", server and '
            "endpoint in the route's [trunks.NAME] table"
        )
    for server_name, endpoints in servers.items():
        server = config.asterisk_servers[server_name]
        trunks = []
        for n, (endpoint, trunk) in enumerate(endpoints.items()):
            host = trunk.options.get("provider_host")
            if not host:
                host = f"203.0.113.{10 * (n + 1)}"
                err_console.print(
                    f"warning: [trunks.{trunk.name}] has no provider_host; using the "
                    f"documentation address {host}. Set provider_host (and provider_port) to "
                    "the provider's signalling address."
                )
            port = trunk.options.get("provider_port", 5060)
            trunks.append({"name": endpoint, "provider_host": host, "provider_port": port})
        secret = server.secret if show_secret and server.secret else None
        try:
            texts = {
                "pjsip": asterisk_conf.render_pjsip(trunks, bind=sip_bind),
                "extensions": asterisk_conf.render_extensions(
                    server.context, dial_timeout_default=config.calls.target_ring_timeout
                ),
                "manager": asterisk_conf.render_manager(
                    server.username,
                    *([secret] if secret else []),
                    bind=server.host,
                    port=server.port,
                ),
            }
        except ValueError as exc:
            raise ConfigError(
                f"cannot render the Asterisk configuration of server {server_name!r}: {exc}"
            ) from None
        for name in files:
            if only and name != only:
                continue
            sys.stdout.write(f"; ===== server {server_name}: {name}.conf =====\n")
            sys.stdout.write(texts[name].rstrip("\n") + "\n\n")


@asterisk_app.command("check")
def check(
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds per AMI step."),
) -> None:
    """Check every Asterisk server the routes use: AMI reachable, login, privileges, each
    route's PJSIP endpoint, the bridge context. Prints each problem with its fix; exit 1 if
    there is any. Dials nothing."""
    import asyncio

    app = state.app()
    config = app.config
    # Whatever would make a /call fail for a configuration reason fails the check first,
    # with its true cause (a disabled route or driver plugin, an unknown driver name).
    setup = app.call_problems()
    for what, fix in setup:
        console.print(f"PROBLEM  {what}\n         fix: {fix}")
    if setup:
        err_console.print(f"{len(setup)} problem(s) found")
        raise typer.Exit(1)
    check_server = _asterisk_plugin_module("check").check_server
    servers = _ami_trunks(config)
    if not servers:
        raise ConfigError(
            'no route uses an "asterisk_ami" trunk: nothing to check (routes on the '
            '"simulated" driver dial nothing)'
        )

    async def run():
        return await asyncio.gather(
            *(check_server(config.asterisk_servers[name], _endpoint_users(config, name),
                           timeout=timeout)
              for name in servers)
        )  # fmt: skip

    problems = 0
    for results in asyncio.run(run()):
        for r in results:
            if r.ok and not r.warning:
                console.print(f"ok       {r.what}")
            elif r.ok:
                console.print(f"warning  {r.what}\n         fix: {r.fix}")
            else:
                problems += 1
                console.print(f"PROBLEM  {r.what}\n         fix: {r.fix}")
    if problems:
        err_console.print(f"{problems} problem(s) found")
        raise typer.Exit(1)
    console.print("Asterisk wiring looks right")
