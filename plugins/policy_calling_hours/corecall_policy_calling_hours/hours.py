"""Calling hours in the called party's local time: pure functions, no I/O, no plugin manager.

The rule (the US TCPA's 8 am to 9 pm, 47 CFR § 64.1200(c)(1), as the default): a call is
allowed only when the called party's local time is inside the window **in every time zone
the number may be in**. The zones come from libphonenumber's time-zone data (the
``phonenumbers`` package, by number prefix: US area codes, Canadian and Australian regions,
whole countries elsewhere); local times come from the IANA database through the standard
library's :mod:`zoneinfo` (the system's tz files, else the ``tzdata`` package). When the
number maps to no zone, the route's fallback zone is used and every message says so; with
no fallback configured the call is refused (``unknown_time_zone``): we never guess.

Times are compared on the local wall clock, so the window follows daylight-saving time;
durations ("in 48 minutes") are real elapsed time, so they are right across a transition.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import phonenumbers
from phonenumbers import timezone as pn_timezone

from corecall.numbers import number_facts

UTC = dt.UTC
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: How far ahead the next opening is searched (a week plus a day covers any weekly rule).
_SEARCH_DAYS = 9


def parse_clock(text: str) -> dt.time:
    """``"08:00"`` -> 08:00; ``"24:00"`` is the end of the day. Raises ValueError with what
    works."""
    if text == "24:00":
        return dt.time.max
    try:
        hours, minutes = text.split(":")
        if len(hours) not in (1, 2) or len(minutes) != 2:
            raise ValueError
        return dt.time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise ValueError(
            f"expected a time of day as HH:MM (24-hour, 00:00 to 24:00), e.g. 08:00; got {text!r}"
        ) from None


@attrs.frozen
class Window:
    """When calls are allowed, on the called party's wall clock.

    ``opens`` inclusive, ``closes`` exclusive (08:00-21:00 allows 20:59:59, not 21:00); a
    window that opens after it closes wraps midnight (22:00-06:00; the demo uses one);
    ``closed_days`` are weekdays with no calls at all (``"sun"``); ``fallback_zone`` is
    the IANA zone used for numbers whose zone is unknown (empty: refuse them).
    """

    opens: dt.time = dt.time(8, 0)
    closes: dt.time = dt.time(21, 0)
    closed_days: frozenset[int] = frozenset()  # 0 = Monday
    fallback_zone: str = ""

    def __attrs_post_init__(self) -> None:
        if self.opens == self.closes:
            raise ValueError(
                f"the window opens and closes at the same time ({self.opens:%H:%M}): no call "
                "could ever be placed; for any hour use opens = 00:00, closes = 24:00"
            )
        if len(self.closed_days) >= 7:
            raise ValueError("every day is closed: no call could ever be placed")
        if self.fallback_zone:
            load_zone(self.fallback_zone)

    def describe(self) -> str:
        text = f"{clock12(self.opens)} to {clock12(self.closes)}"
        if self.closed_days:
            days = ", ".join(_DAY_NAMES[d] for d in sorted(self.closed_days))
            text += f", never on {days}"
        return text

    def is_open(self, local: dt.datetime) -> bool:
        """Whether ``local`` (a zone's wall clock) is inside. In a window that wraps
        midnight, the hours after midnight belong to the day the window opened."""
        now = local.time()
        if self.opens < self.closes:
            return local.weekday() not in self.closed_days and self.opens <= now < self.closes
        if now >= self.opens:
            return local.weekday() not in self.closed_days
        opened = (local.weekday() - 1) % 7
        return now < self.closes and opened not in self.closed_days


def parse_days(days: Iterable[str]) -> frozenset[int]:
    """``["sat", "Sun"]`` -> {5, 6}. Raises ValueError naming the bad entry."""
    found = set()
    for day in days:
        key = str(day).strip().lower()[:3]
        if key not in WEEKDAYS or str(day).strip().lower() not in (key, _full(key)):
            raise ValueError(f"{day!r} is not a weekday; use mon, tue, wed, thu, fri, sat, sun")
        found.add(WEEKDAYS.index(key))
    return frozenset(found)


def _full(key: str) -> str:
    return _DAY_NAMES[WEEKDAYS.index(key)].lower()


@functools.lru_cache(maxsize=512)
def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError when the tz database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone in the IANA database (e.g. America/New_York)"
        ) from None


#: Number types that are not tied to a place: libphonenumber answers them with every zone of
#: the country plan (for +1 800, 42 zones from Guam to Newfoundland, which never share a
#: window), so they count as "zone unknown" and the route's fallback zone applies.
_PLACELESS_TYPES = frozenset({
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.UAN,
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    phonenumbers.PhoneNumberType.VOIP,
})  # fmt: skip


def _loadable(name: str) -> bool:
    try:
        load_zone(name)
    except ValueError:
        return False
    return True


def number_zones(e164: str) -> tuple[str, ...]:
    """Every IANA zone libphonenumber says ``e164`` may be in, sorted; () when unknown
    (no data for its prefix, e.g. a new NANP overlay, or a number type not tied to a place,
    e.g. toll-free). The same answer as ``phonenumbers.timezone.time_zones_for_number``,
    from the reading the number policy made of the number (one parse per ``/call``)."""
    facts = number_facts(e164)
    if facts is None:
        return ()
    number, kind = facts
    if kind == phonenumbers.PhoneNumberType.UNKNOWN or kind in _PLACELESS_TYPES:
        return ()
    if phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
        zones = pn_timezone.time_zones_for_geographical_number(number)
    else:  # e.g. mobiles outside the few countries whose mobile prefixes are regional
        zones = pn_timezone.time_zones_for_number(number)
    return tuple(sorted(z for z in zones if z != pn_timezone.UNKNOWN_TIMEZONE))


@attrs.frozen
class HoursVerdict:
    """The answer for one number at one moment.

    ``allowed``; ``reason`` (``outside_calling_hours``, ``unknown_time_zone``) when not;
    ``zones`` checked; ``fallback`` True when they are the fallback zone;
    ``opens_at`` (UTC) the first moment all zones are inside the window, when refused for
    the hour; ``message`` for the agent (or the operator's dry run); ``operator_message``
    when the agent is told to ask their admin: what the admin should do.
    """

    allowed: bool
    message: str
    zones: tuple[str, ...] = ()
    fallback: bool = False
    reason: str | None = None
    opens_at: dt.datetime | None = None
    operator_message: str | None = None


def check_hours(
    e164: str, at: dt.datetime, window: Window, *, route_name: str = ""
) -> HoursVerdict:
    """Whether calling ``e164`` at ``at`` (timezone-aware) is inside ``window`` in every zone
    the number may be in. Never raises for a number; ValueError for a naive ``at``."""
    if at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    at = at.astimezone(UTC)
    zones, fallback = number_zones(e164), False
    if not zones:
        if (
            window.opens == dt.time(0) and window.closes == dt.time.max and not (window.closed_days)
        ):  # open every hour of every day: the zone cannot change the answer
            return HoursVerdict(
                allowed=True,
                message=f"Calls are allowed at any hour ({window.describe()}), wherever {e164} is.",
            )
        if not window.fallback_zone:
            where = f" for route {route_name}" if route_name else ""
            return HoursVerdict(
                allowed=False,
                reason="unknown_time_zone",
                message=(
                    f"I can't tell which time zone {e164} is in, so I can't check calling "
                    f"hours there. Ask your admin to set a fallback time zone{where} "
                    "(fallback_zone in [plugins.policy_calling_hours])."
                ),
                operator_message=(
                    f"phonenumbers maps {e164} to no time zone and no fallback zone is set"
                    f"{where}: set fallback_zone in [plugins.policy_calling_hours] (or "
                    '[plugins.policy_calling_hours.routes.CODE]), e.g. "America/New_York".'
                ),
            )
        zones, fallback = (window.fallback_zone,), True
    missing = [z for z in zones if not _loadable(z)]
    if missing:  # libphonenumber names a zone this machine's tz database lacks: never guess
        return HoursVerdict(
            allowed=False, reason="unknown_time_zone", zones=zones, fallback=fallback,
            message=(
                f"This number is in {_or_list(missing)}, which this server's time-zone "
                "database does not know, so I can't check calling hours there. Ask your "
                "admin to update the tzdata package."
            ),
            operator_message=(
                f"This number is in {_or_list(missing)}, which this server's time-zone "
                "database does not know: update the tzdata package (pip install -U tzdata)."
            ),
        )  # fmt: skip
    note = (
        f" (this number's time zone is unknown; using the fallback zone {zones[0]})"
        if fallback
        else ""
    )
    many = (
        f"This number may be in {_or_list(zones)}; calls must be inside calling hours in "
        "every one of them. "
        if len(zones) > 1
        else ""
    )
    outside = [z for z in zones if not window.is_open(at.astimezone(load_zone(z)))]
    if not outside:
        shown = "; ".join(f"{_clock_at(at, z)} in {z}" for z in zones)
        return HoursVerdict(
            allowed=True, zones=zones, fallback=fallback,
            message=f"{many}It is {shown}{note}: inside calling hours ({window.describe()}).",
        )  # fmt: skip
    opens_at, binding = next_opening(zones, at, window)
    # Say where it is too early or too late now; the opening is told on the clock of the
    # zone that opens last (named when it is another zone).
    zone = binding if binding in outside else outside[0]
    now_there = f"It is {_clock_at(at, zone)} in {zone} for this number{note}."
    operator_message = None
    if opens_at is None or binding is None:
        never = (
            f"Calls are allowed {window.describe()} local time, and there is no moment in the "
            "coming week when that holds in all of its zones."
        )
        tail = f"{never} Ask your admin."
        operator_message = (
            f"{many}{now_there} {never} Widen opens/closes or shorten closed_days in "
            "[plugins.policy_calling_hours] (or the route's table)."
        )
    else:
        there = "" if binding == zone else f" in {binding}"
        tail = (
            f"Calls open {_when(opens_at, at, binding)}{there}, in "
            f"{format_duration(opens_at - at)}."
        )
    return HoursVerdict(
        allowed=False, reason="outside_calling_hours", zones=zones, fallback=fallback,
        opens_at=opens_at, message=f"{many}{now_there} {tail}",
        operator_message=operator_message,
    )  # fmt: skip


def next_opening(
    zones: Sequence[str], at: dt.datetime, window: Window
) -> tuple[dt.datetime | None, str | None]:
    """The first moment at or after ``at`` when every zone is inside ``window``, and the zone
    whose opening it is; (None, None) when there is none in the coming week.

    The set of moments when all zones are open is an intersection of intervals, so it
    starts at one zone's opening: try each zone's openings in time order."""
    candidates: list[tuple[dt.datetime, str]] = []
    for name in zones:
        zone = load_zone(name)
        today = at.astimezone(zone).date()
        for offset in range(-1, _SEARCH_DAYS):
            local = dt.datetime.combine(today + dt.timedelta(days=offset), window.opens, zone)
            # An opening inside a DST gap (02:30 on a spring-forward day) does not exist on
            # the wall clock; the round trip through UTC moves it to the first real moment.
            moment = local.astimezone(UTC)
            if moment >= at:
                candidates.append((moment, name))
    for moment, name in sorted(candidates):
        if all(window.is_open(moment.astimezone(load_zone(z))) for z in zones):
            return moment, name
    return None, None


# --------------------------------------------------------------------------- wording


def clock12(value: dt.time | dt.datetime) -> str:
    """08:00 -> "8:00 am", 12:05 -> "12:05 pm", 00:30 -> "12:30 am"; 24:00 -> "midnight"."""
    if isinstance(value, dt.time) and value == dt.time.max:
        return "midnight"
    hour = value.hour % 12 or 12
    return f"{hour}:{value.minute:02d} {'am' if value.hour < 12 else 'pm'}"


def _clock_at(at: dt.datetime, zone: str) -> str:
    return clock12(at.astimezone(load_zone(zone)))


def _when(opens_at: dt.datetime, at: dt.datetime, zone: str) -> str:
    """ "at 8:00 am", "tomorrow at 8:00 am" or "on Monday at 8:00 am" (in ``zone``)."""
    tz = load_zone(zone)
    local, now = opens_at.astimezone(tz), at.astimezone(tz)
    days = (local.date() - now.date()).days
    clock = clock12(local)
    if days == 0:
        return f"at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    return f"on {_DAY_NAMES[local.weekday()]} at {clock}"


def format_duration(delta: dt.timedelta) -> str:
    """Whole minutes, rounded up: "48 minutes", "1 hour 5 minutes", "2 days 3 hours"."""
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts[:2])


def _or_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" or {items[-1]}"
