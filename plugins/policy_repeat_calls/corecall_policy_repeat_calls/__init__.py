"""Repeat-call cap: at most N calls to one number in a rolling 24 hours, across all agents.

Counted from the call record (every call that dialed the number, whatever its outcome and
route, by any agent, and every call still in progress; not a call that ended before the
number was dialed: see ``CallRecord.may_have_dialed_target``), so it holds across restarts
and several bots on one store. Off by default (``max_calls = 0``). See docs/compliance.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import attrs

from corecall import hookimpl, option
from corecall.domain import CallRequest, Refusal
from corecall.store import Store

NAME = "policy_repeat_calls"
PERIOD = dt.timedelta(hours=24)


def _not_negative(_instance, _attribute, value) -> None:
    if isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a whole number >= 0 (0 = off), got {value!r}")


@attrs.frozen
class RepeatCallOptions:
    """At most ``max_calls`` calls to the same number in a rolling 24 hours, across all
    agents and routes. 0 (the default) switches the cap off. Set it per route in
    ``[plugins.policy_repeat_calls.routes.CODE]``."""

    max_calls: int = option(
        0, doc="Calls to one number per rolling 24 hours, all agents together; 0 = no cap.",
        validator=_not_negative,
    )  # fmt: skip


def refusal(
    request: CallRequest, options: RepeatCallOptions, store: Callable[[], Store]
) -> Refusal | None:
    """Refuse when ``request.target`` was called ``cap`` times in the 24 hours before
    ``request.at`` (``Store.calls_to_target_since``: calls that dialed it or still may);
    the message gives the count and when it may be called again (UTC)."""
    cap = options.max_calls
    if cap <= 0:
        return None
    at = request.at
    since = at - PERIOD  # a call exactly 24 h ago has left the window
    placed = store().calls_to_target_since(request.target, since)
    times = [t for t in placed if since < t <= at]
    if len(times) < cap:
        return None
    # The minute shown is the first whole minute the call is allowed in (an agent who tries
    # again at the time given must not be refused again): rounded up, never down.
    again = _next_whole_minute(times[len(times) - cap] + PERIOD)
    calls = "once" if len(times) == 1 else f"{len(times)} times"
    limit = "1 call" if cap == 1 else f"{cap} calls"
    return Refusal(
        "repeat_call_cap",
        f"This number was called {calls} in the last 24 hours, by all agents together "
        f"(the limit is {limit} in 24 hours). It may be called again at "
        f"{again:%H:%M} UTC on {again:%a %d %b}, in {_duration(again - at)}.",
        NAME,
    )


def _next_whole_minute(moment: dt.datetime) -> dt.datetime:
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + dt.timedelta(minutes=1)


def _duration(delta: dt.timedelta) -> str:
    minutes = max(1, -(-int(delta.total_seconds()) // 60))
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{n} {u}{'s' if n != 1 else ''}" for n, u in ((hours, "hour"), (minutes, "minute")) if n
    ]
    return " ".join(parts)


@hookimpl
def corecall_plugin_options():
    return RepeatCallOptions


@hookimpl
def corecall_check_call(request, context):
    # The store is reached only when a cap is set (off by default).
    return refusal(request, context.route_options(request.route.code), lambda: context.store)


__all__ = ["NAME", "PERIOD", "RepeatCallOptions", "refusal"]
