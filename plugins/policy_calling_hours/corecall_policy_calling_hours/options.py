"""The ``[plugins.policy_calling_hours]`` table (per route: ``[...routes.CODE]``)."""

from __future__ import annotations

import functools

import attrs

from corecall import option
from corecall_policy_calling_hours.hours import Window, load_zone, parse_clock, parse_days


def _clock(_instance, _attribute, value: str) -> None:
    parse_clock(value)


def _days(_instance, _attribute, value) -> None:
    if len(parse_days(value)) >= 7:
        raise ValueError("every day is closed: no call could ever be placed")


def _zone(_instance, _attribute, value: str) -> None:
    if value:
        load_zone(value)


def _not_opening(instance, _attribute, value: str) -> None:
    # Compares two keys: runs when the whole table is built (the core checks one key at a
    # time first, with no instance).
    if instance is not None and parse_clock(instance.opens) == parse_clock(value):
        raise ValueError(
            f"opens and closes are both {value}: no call could ever be placed (for any hour "
            'use opens = "00:00", closes = "24:00")'
        )


@attrs.frozen
class CallingHoursOptions:
    """Calls are allowed only inside this window in the called party's local time, in every
    time zone the number may be in. Defaults: 8:00 am to 9:00 pm, every day (the TCPA's
    hours); numbers with no known zone are refused unless a fallback zone is set. Every key
    can be set per route in ``[plugins.policy_calling_hours.routes.CODE]``."""

    opens: str = option("08:00", doc="Local time calls may start, HH:MM (24-hour).",
                        validator=_clock)  # fmt: skip
    closes: str = option(
        "21:00", doc="Local time calls stop, HH:MM (24:00 = midnight; before opens = overnight).",
        validator=[_clock, _not_opening],
    )  # fmt: skip
    closed_days: tuple[str, ...] = option(
        (), doc='Weekdays with no calls at all, e.g. ["sun"].', validator=_days
    )
    fallback_zone: str = option(
        "", doc='IANA zone for numbers with no known zone, e.g. "America/New_York"; empty: refuse.',
        validator=_zone,
    )  # fmt: skip

    def window(self) -> Window:
        return _window(self.opens, self.closes, tuple(self.closed_days), self.fallback_zone)


@functools.lru_cache(maxsize=64)
def _window(opens: str, closes: str, closed_days: tuple[str, ...], fallback_zone: str) -> Window:
    """The window of a set of options, built once (it is asked for on every call)."""
    return Window(
        opens=parse_clock(opens), closes=parse_clock(closes),
        closed_days=parse_days(closed_days), fallback_zone=fallback_zone,
    )  # fmt: skip
