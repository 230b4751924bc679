"""Calling hours: refuse calls outside the window in the called party's local time.

Every time zone the number may be in must be inside the window (libphonenumber's zone
data); a number with no known zone uses the route's fallback zone, and is refused when
there is none. The agent reads the local time there, the zone and when calls open. See
docs/compliance.md.
"""

from __future__ import annotations

from corecall import hookimpl
from corecall.domain import CallRequest, Refusal
from corecall_policy_calling_hours.hours import HoursVerdict, Window, check_hours
from corecall_policy_calling_hours.options import CallingHoursOptions

NAME = "policy_calling_hours"


def verdict(request: CallRequest, options: CallingHoursOptions) -> HoursVerdict:
    """The calling-hours answer for ``request`` at ``request.at`` under ``options`` (the
    route's: plugin-wide values with the route's overrides applied)."""
    return check_hours(request.target, request.at, options.window(), route_name=request.route.code)


@hookimpl
def corecall_plugin_options():
    return CallingHoursOptions


@hookimpl
def corecall_check_call(request, context):
    answer = verdict(request, context.route_options(request.route.code))
    if answer.allowed:
        return None
    return Refusal(
        answer.reason or "outside_calling_hours", answer.message, NAME, answer.operator_message
    )


__all__ = ["NAME", "CallingHoursOptions", "HoursVerdict", "Window", "verdict"]
