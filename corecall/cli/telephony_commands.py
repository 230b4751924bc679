"""``corecall call`` (telephony). The Asterisk commands (``corecall asterisk render|check``)
are the Asterisk plugin's own (``corecall_asterisk.cli``).

``corecall call`` places a real call through the route's configured trunk and prints every
state change as it happens: operators test a trunk without Telegram. The call is recorded
like any other (agent id 0, audited with the operator's name).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import typer

from corecall.cli.common import actor, console, err_console, state
from corecall.errors import RefusedError

if TYPE_CHECKING:
    from corecall.domain import CallRecord


def register(app: typer.Typer) -> None:
    app.command("call")(call)


# --------------------------------------------------------------------------- corecall call


def _line(record: CallRecord, started: float, now: float) -> str:
    from corecall.domain import CallState

    text = f"{now - started:7.2f}s  {record.state.value}"
    if record.state is CallState.AWAITING_CONFIRMATION:
        text += ": press 1 on the agent's phone to connect"
    if record.is_final:
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
        None, "--timeout", min=1, help="Give up waiting (and hang up) after this many seconds."
    ),
) -> None:
    """Place a real test call through a route's trunk and follow it until it ends.

    Exit status 0 when the call connected and ended normally, 1 otherwise (with the reason).
    """
    import asyncio

    from corecall.domain import EndReason

    app = state.app()
    chosen = app.route(route.upper())
    drivers = app.build_drivers([chosen])
    manager = app.call_manager(drivers)
    who = actor()
    final = asyncio.run(_run_call(manager, chosen.code, agent_phone, target, who, timeout))
    if final is None:
        raise typer.Exit(1)
    if final.reason is EndReason.COMPLETED and final.connected_at is not None:
        console.print(f"call {final.id} completed")
        return
    reason = final.reason.value if final.reason else "unknown"
    detail = f" ({final.detail})" if final.detail else ""
    err_console.print(f"call {final.id} failed: {reason}{detail}")
    raise typer.Exit(1)


async def _run_call(manager, route_code, agent_phone, target, who, timeout):
    import asyncio

    from corecall.calls import OPERATOR_AGENT_ID

    loop = asyncio.get_running_loop()
    await manager.start(reconcile=False)  # never take over a running bot's live calls
    try:
        try:
            record = await manager.place_operator_call(route_code, agent_phone, target, actor=who)
        except RefusedError as exc:
            err_console.print(f"refused ({exc.reason}): {exc.message}")
            return None
        started = loop.time()
        console.print(
            f"call {record.id} on route {route_code}: ringing {record.agent_phone} first, then "
            f"{record.target} with caller ID {record.caller_id} (agent id {OPERATOR_AGENT_ID})"
        )
        last = record
        try:
            async with asyncio.timeout(timeout):
                shown = None
                async for update in manager.watch(record.id):
                    last = update
                    if shown is None or update.state.order > shown.order:
                        shown = update.state
                        console.print(_line(update, started, loop.time()))
        except TimeoutError:
            console.print(f"no end after {timeout:g}s: hanging up")
            with contextlib.suppress(Exception):
                await manager.hangup(record.id)
            last = await manager.wait_final(record.id, 15)
            console.print(_line(last, started, loop.time()))
        except (KeyboardInterrupt, asyncio.CancelledError):
            with contextlib.suppress(Exception):
                await manager.hangup(record.id)
                last = await manager.wait_final(record.id, 15)
            raise
        return last
    finally:
        await manager.stop()
