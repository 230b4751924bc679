"""Built-in policy: one live call per agent (by default) and a calls-per-minute cap.

The limits come from ``[limits]`` in the configuration and reach this plugin through
``request.activity``, which the core fills in before asking policy plugins.
"""

from __future__ import annotations

from corecall.domain import CallRequest, Refusal
from corecall.hookspecs import hookimpl


@hookimpl
def corecall_check_call(request: CallRequest) -> Refusal | None:
    act = request.activity
    if act.live_calls >= act.max_live_calls:
        calls = "call" if act.max_live_calls == 1 else "calls"
        return Refusal(
            "call_in_progress",
            f"You already have {act.live_calls} live {calls} (limit {act.max_live_calls}). "
            "Hang up or wait for it to end, then try again.",
            operator_message=f"The agent has {act.live_calls} live {calls} (limit "
            f"{act.max_live_calls}, [limits] live_calls_per_agent).",
        )
    if act.calls_last_minute >= act.max_calls_per_minute:
        return Refusal(
            "rate_limited",
            f"You placed {act.calls_last_minute} calls in the last minute "
            f"(limit {act.max_calls_per_minute}). Wait a minute, then try again.",
            operator_message=f"The agent placed {act.calls_last_minute} calls in the minute "
            f"before (limit {act.max_calls_per_minute}, [limits] calls_per_minute).",
        )
    return None
