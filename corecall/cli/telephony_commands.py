"""``corecall call`` (telephony). The Asterisk commands (``corecall asterisk render|check``)
are the Asterisk plugin's own (``corecall_asterisk.cli``).

``corecall call`` places a real call through the route's configured trunk and prints every
state change as it happens: operators test a trunk without Telegram. The call is recorded
like any other (agent id 0, audited with the operator's name).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import typer

from corecall.cli.common import actor, console, err_console, state
from corecall.errors import RefusedError, TelephonyError

if TYPE_CHECKING:
    from corecall.domain import CallRecord, CallState


def register(app: typer.Typer) -> None:
    app.command("call")(call)


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
        max=86400,
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
