"""Calling hours in the called party's local time: zones, split zones, fallback, DST edges,
the agent's message, and the options table."""

from __future__ import annotations

import datetime as dt
import re

import phonenumbers
import pytest
from corecall_policy_calling_hours import hours
from corecall_policy_calling_hours.hours import (
    Window,
    check_hours,
    clock12,
    format_duration,
    load_zone,
    next_opening,
    number_zones,
    parse_clock,
)
from corecall_policy_calling_hours.options import CallingHoursOptions
from phonenumbers import timezone as pn_timezone

from corecall import numbers

UTC = dt.UTC
NEW_YORK = "+12125550123"  # America/New_York
CHICAGO = "+13125550123"  # America/Chicago
IDAHO = "+12085550123"  # area 208: America/Boise (Mountain) and America/Los_Angeles (Pacific)
SOUTH_DAKOTA = "+16055550123"  # area 605: America/Denver and America/North_Dakota/Center
HONOLULU = "+18085550123"  # no DST
TOLL_FREE = "+18005550123"
UNKNOWN_OVERLAY = "+16245550123"  # NANP overlay missing from libphonenumber's zone data
LONDON_MOBILE = "+447911123456"
DEFAULT = Window()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- zones


def test_zones_come_from_the_number():
    assert number_zones(NEW_YORK) == ("America/New_York",)
    assert number_zones(IDAHO) == ("America/Boise", "America/Los_Angeles")
    assert number_zones(SOUTH_DAKOTA) == ("America/Denver", "America/North_Dakota/Center")
    assert "Europe/London" in number_zones(LONDON_MOBILE)


@pytest.mark.parametrize("number", [TOLL_FREE, UNKNOWN_OVERLAY, "+18885550123", "not a number"])
def test_numbers_without_a_place_have_no_zone(number):
    assert number_zones(number) == ()


def libphonenumbers_zones(e164: str) -> tuple[str, ...]:
    """phonenumbers' own answer, as number_zones() documents it."""
    number = phonenumbers.parse(e164)
    if phonenumbers.number_type(number) in hours._PLACELESS_TYPES:
        return ()
    zones = pn_timezone.time_zones_for_number(number)
    return tuple(sorted(z for z in zones if z != pn_timezone.UNKNOWN_TIMEZONE))


#: Geographic numbers, split zones, no zone, toll-free, and mobiles that are tied to a place
#: (Brazil) and that are not (France, the UK: the whole country's zones).
KINDS_OF_NUMBERS = [
    NEW_YORK, IDAHO, SOUTH_DAKOTA, HONOLULU, TOLL_FREE, UNKNOWN_OVERLAY, LONDON_MOBILE,
    "+5511961234567", "+33612345678", "+61412345678", "+4930123456",
]  # fmt: skip


@pytest.mark.parametrize("number", KINDS_OF_NUMBERS)
def test_zones_are_the_same_whether_or_not_the_number_policy_read_the_number(number, monkeypatch):
    """number_zones() takes the number policy's reading of the number a /call has just had
    checked (issue 11: no second parse); the answer is phonenumbers' either way."""
    expected = libphonenumbers_zones(number)
    monkeypatch.setattr(numbers, "_facts", {})  # nothing read yet
    assert number_zones(number) == expected
    monkeypatch.setattr(numbers, "_facts", {})
    # the policy reads the number (accepted or not, e.g. the overlay missing from its data)
    numbers.check_number(number, allowed_regions=["US", "CA", "GB", "FR", "BR", "AU", "DE"])
    parses = []
    real_parse = phonenumbers.parse
    monkeypatch.setattr(
        phonenumbers, "parse", lambda *a, **k: parses.append(a) or real_parse(*a, **k)
    )
    assert number_zones(number) == expected
    assert parses == []  # the policy's reading was used


# --------------------------------------------------------------------------- the window


def test_new_york_at_7_30_am_is_refused_with_local_time_zone_and_opening():
    verdict = check_hours(NEW_YORK, at("2026-07-01T11:30:00Z"), DEFAULT)
    assert not verdict.allowed and verdict.reason == "outside_calling_hours"
    assert verdict.message == (
        "It is 7:30 am in America/New_York for this number. Calls open at 8:00 am, in 30 minutes."
    )
    assert verdict.opens_at == at("2026-07-01T12:00:00Z")
    assert verdict.zones == ("America/New_York",) and verdict.fallback is False


def test_the_issue_example_wording():
    verdict = check_hours(CHICAGO, at("2026-07-01T12:12:00Z"), DEFAULT)  # 7:12 am CDT
    assert verdict.message == (
        "It is 7:12 am in America/Chicago for this number. Calls open at 8:00 am, in 48 minutes."
    )


def test_new_york_at_9_30_am_is_allowed():
    verdict = check_hours(NEW_YORK, at("2026-07-01T13:30:00Z"), DEFAULT)
    assert verdict.allowed and verdict.reason is None
    assert "9:30 am in America/New_York" in verdict.message


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        ("2026-07-01T11:59:59Z", False),  # 7:59:59 am
        ("2026-07-01T12:00:00Z", True),  # 8:00 am: opens (inclusive)
        ("2026-07-02T00:59:59Z", True),  # 8:59:59 pm
        ("2026-07-02T01:00:00Z", False),  # 9:00 pm: closed (exclusive)
    ],
)
def test_window_edges(moment, allowed):
    assert check_hours(NEW_YORK, at(moment), DEFAULT).allowed is allowed


def test_after_closing_calls_open_tomorrow():
    verdict = check_hours(NEW_YORK, at("2026-07-02T01:30:00Z"), DEFAULT)  # 9:30 pm
    assert verdict.message == (
        "It is 9:30 pm in America/New_York for this number. "
        "Calls open tomorrow at 8:00 am, in 10 hours 30 minutes."
    )


def test_closed_days_push_the_opening_to_another_day():
    window = Window(closed_days=frozenset({5, 6}))  # no calls on weekends
    saturday = at("2026-07-04T15:00:00Z")  # Saturday 11:00 am in New York
    verdict = check_hours(NEW_YORK, saturday, window)
    assert not verdict.allowed
    assert "Calls open on Monday at 8:00 am, in 1 day 21 hours." in verdict.message


# --------------------------------------------------------------------------- split zones


def test_split_zone_area_is_refused_when_one_zone_is_outside():
    # 14:30Z: 8:30 am in Boise (inside), 7:30 am in Los Angeles (outside)
    verdict = check_hours(IDAHO, at("2026-07-01T14:30:00Z"), DEFAULT)
    assert not verdict.allowed
    assert verdict.message == (
        "This number may be in America/Boise or America/Los_Angeles; calls must be inside "
        "calling hours in every one of them. It is 7:30 am in America/Los_Angeles for this "
        "number. Calls open at 8:00 am, in 30 minutes."
    )
    assert verdict.opens_at == at("2026-07-01T15:00:00Z")


def test_split_zone_area_in_the_evening_closes_with_the_earlier_zone():
    assert check_hours(IDAHO, at("2026-07-02T02:30:00Z"), DEFAULT).allowed  # 8:30/7:30 pm
    late = check_hours(IDAHO, at("2026-07-02T03:30:00Z"), DEFAULT)  # 9:30 pm in Boise
    assert not late.allowed
    assert "It is 9:30 pm in America/Boise" in late.message
    # opens when Los Angeles reaches 8:00 am (Boise opened an hour earlier)
    assert late.opens_at == at("2026-07-02T15:00:00Z")
    assert (
        "Calls open tomorrow at 8:00 am in America/Los_Angeles, in 11 hours 30 min" in late.message
    )


def test_split_zone_other_area_same_rule():
    # 605: Denver (UTC-6 in July) and North Dakota Center (UTC-5): 13:30Z is 7:30 / 8:30 am
    verdict = check_hours(SOUTH_DAKOTA, at("2026-07-01T13:30:00Z"), DEFAULT)
    assert not verdict.allowed and "7:30 am in America/Denver" in verdict.message
    assert check_hours(SOUTH_DAKOTA, at("2026-07-01T14:00:00Z"), DEFAULT).allowed


def test_zones_that_never_share_a_window_are_refused_saying_so():
    window = Window(opens=dt.time(9), closes=dt.time(10))
    opening, zone = next_opening(
        ("Pacific/Honolulu", "America/New_York"), at("2026-07-01T00:00:00Z"), window
    )
    assert (opening, zone) == (None, None)


# --------------------------------------------------------------------------- unknown zones


@pytest.mark.parametrize("number", [UNKNOWN_OVERLAY, "+18005550123"])  # toll-free too
def test_a_window_open_at_every_hour_needs_no_zone(number):
    """The docs' own 'any hour' window (00:00-24:00, no closed day) still refused every
    toll-free number as 'unknown_time_zone' (tester5): no zone can change the answer."""
    always = Window(opens=dt.time(0), closes=dt.time.max)
    verdict = check_hours(number, at("2026-07-01T03:00:00Z"), always, route_name="M")
    assert verdict.allowed and "at any hour" in verdict.message
    sundays_off = Window(opens=dt.time(0), closes=dt.time.max, closed_days=frozenset({6}))
    verdict = check_hours(number, at("2026-07-01T03:00:00Z"), sundays_off, route_name="M")
    assert not verdict.allowed and verdict.reason == "unknown_time_zone"


def test_unknown_zone_without_fallback_is_refused_never_guessed():
    verdict = check_hours(UNKNOWN_OVERLAY, at("2026-07-01T16:00:00Z"), DEFAULT, route_name="M")
    assert not verdict.allowed and verdict.reason == "unknown_time_zone"
    assert verdict.message == (
        "I can't tell which time zone +16245550123 is in, so I can't check calling hours "
        "there. Ask your admin to set a fallback time zone for route M "
        "(fallback_zone in [plugins.policy_calling_hours])."
    )


@pytest.mark.parametrize("number", [UNKNOWN_OVERLAY, TOLL_FREE])
def test_unknown_zone_uses_the_fallback_and_says_so(number):
    window = Window(fallback_zone="America/Chicago")
    refused = check_hours(number, at("2026-07-01T12:30:00Z"), window)  # 7:30 am CDT
    assert not refused.allowed and refused.fallback and refused.zones == ("America/Chicago",)
    assert refused.message == (
        "It is 7:30 am in America/Chicago for this number (this number's time zone is "
        "unknown; using the fallback zone America/Chicago). Calls open at 8:00 am, in 30 minutes."
    )
    allowed = check_hours(number, at("2026-07-01T16:00:00Z"), window)
    assert allowed.allowed and "using the fallback zone America/Chicago" in allowed.message


# --------------------------------------------------------------------------- DST


def test_spring_forward_night_counts_real_minutes():
    # 2026-03-08 in New York: 2:00 am EST jumps to 3:00 am EDT.
    # 06:30Z is 1:30 am EST; 8:00 am EDT is 12:00Z: 5 h 30 min of real time, not 6 h 30.
    verdict = check_hours(NEW_YORK, at("2026-03-08T06:30:00Z"), DEFAULT)
    assert "It is 1:30 am" in verdict.message
    assert verdict.opens_at == at("2026-03-08T12:00:00Z")
    assert "Calls open at 8:00 am, in 5 hours 30 minutes." in verdict.message
    # the window follows the wall clock: 8:00 am EDT is 12:00Z that day, 13:00Z the day before
    assert check_hours(NEW_YORK, at("2026-03-08T12:00:00Z"), DEFAULT).allowed
    assert not check_hours(NEW_YORK, at("2026-03-07T12:30:00Z"), DEFAULT).allowed  # 7:30 EST


def test_fall_back_night_counts_real_minutes():
    # 2026-11-01 in New York: 2:00 am EDT falls back to 1:00 am EST (1:xx happens twice).
    # 05:30Z is 1:30 am EDT (first pass); 8:00 am EST is 13:00Z: 7 h 30 min away.
    verdict = check_hours(NEW_YORK, at("2026-11-01T05:30:00Z"), DEFAULT)
    assert "It is 1:30 am" in verdict.message
    assert verdict.opens_at == at("2026-11-01T13:00:00Z")
    assert "in 7 hours 30 minutes" in verdict.message
    assert not check_hours(NEW_YORK, at("2026-11-01T12:30:00Z"), DEFAULT).allowed  # 7:30 EST
    # closing follows the wall clock too: 9:00 pm EST is 02:00Z next day
    assert check_hours(NEW_YORK, at("2026-11-02T01:30:00Z"), DEFAULT).allowed  # 8:30 pm EST


def test_opening_inside_a_dst_gap_moves_to_the_first_real_moment():
    window = Window(opens=dt.time(2, 30), closes=dt.time(21))
    # 2026-03-08 02:30 does not exist in New York; the first moment after is 3:00 EDT = 07:00Z
    opening, zone = next_opening(("America/New_York",), at("2026-03-08T06:00:00Z"), window)
    assert zone == "America/New_York"
    assert opening.astimezone(UTC) >= at("2026-03-08T06:30:00Z")
    assert window.is_open(opening.astimezone(dt.timezone(dt.timedelta(hours=-4))))


def test_split_zones_across_a_dst_transition_day():
    # Honolulu has no DST; New York springs forward on 2026-03-08. Window 8:00-21:00 both:
    # New York open 12:00Z-01:00Z (EDT), Honolulu open 18:00Z-07:00Z -> both 18:00Z-01:00Z.
    window = DEFAULT
    opening, zone = next_opening(
        ("America/New_York", "Pacific/Honolulu"), at("2026-03-08T06:00:00Z"), window
    )
    assert (opening, zone) == (at("2026-03-08T18:00:00Z"), "Pacific/Honolulu")


def test_calls_at_any_hour_with_a_whole_day_window():
    window = Window(opens=dt.time(0, 0), closes=parse_clock("24:00"))
    for hour in range(24):
        assert check_hours(HONOLULU, at(f"2026-07-01T{hour:02d}:59:59Z"), window).allowed


# --------------------------------------------------------------------------- wording


@pytest.mark.parametrize(
    ("value", "text"),
    [(dt.time(0, 30), "12:30 am"), (dt.time(8), "8:00 am"), (dt.time(12, 5), "12:05 pm"),
     (dt.time(21), "9:00 pm"), (dt.time.max, "midnight")],
)  # fmt: skip
def test_clock12(value, text):
    assert clock12(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 minute"), (60, "1 minute"), (61, "2 minutes"), (3600, "1 hour"),
     (3900, "1 hour 5 minutes"), (90000, "1 day 1 hour")],
)  # fmt: skip
def test_format_duration(seconds, text):
    assert format_duration(dt.timedelta(seconds=seconds)) == text


# --------------------------------------------------------------------------- wrapping


def test_a_window_that_wraps_midnight():
    window = Window(opens=dt.time(22), closes=dt.time(6), closed_days=frozenset({6}))  # not Sun
    ny = "America/New_York"
    assert window.is_open(at("2026-07-02T02:30:00Z").astimezone(load_zone(ny)))  # Wed 22:30
    assert window.is_open(at("2026-07-02T09:30:00Z").astimezone(load_zone(ny)))  # Thu 05:30
    assert not window.is_open(at("2026-07-02T10:30:00Z").astimezone(load_zone(ny)))  # 06:30
    # Sunday 22:00 does not open; Monday 01:00 belongs to Sunday's (closed) night
    assert not window.is_open(at("2026-07-06T02:30:00Z").astimezone(load_zone(ny)))
    assert not window.is_open(at("2026-07-06T05:00:00Z").astimezone(load_zone(ny)))
    verdict = check_hours(NEW_YORK, at("2026-07-05T16:00:00Z"), window)  # Sunday noon
    assert verdict.opens_at == at("2026-07-07T02:00:00Z")  # Monday 22:00 EDT
    assert "Calls open tomorrow at 10:00 pm" in verdict.message


# --------------------------------------------------------------------------- options


def test_options_build_the_window():
    options = CallingHoursOptions(fallback_zone="America/New_York", closed_days=("sun",))
    assert options.window() == Window(closed_days=frozenset({6}), fallback_zone="America/New_York")
    whole_day = CallingHoursOptions(opens="00:00", closes="24:00").window()
    assert whole_day.describe() == "12:00 am to midnight"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"opens": "8am"}, "expected a time of day as HH:MM"),
        ({"closes": "25:00"}, "expected a time of day as HH:MM"),
        ({"opens": "21:00"}, "opens and closes are both 21:00"),
        ({"closed_days": ("sunday", "funday")}, "'funday' is not a weekday"),
        ({"closed_days": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}, "every day is closed"),
        ({"fallback_zone": "America/Gotham"}, "'America/Gotham' is not a time zone"),
    ],
)
def test_options_mistakes_are_refused_with_what_works(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CallingHoursOptions(**kwargs)


def test_a_zone_missing_from_the_tz_database_is_refused_not_guessed(monkeypatch):
    import corecall_policy_calling_hours.hours as hours

    monkeypatch.setattr(hours, "number_zones", lambda _n: ("America/New_York", "Mars/Olympus"))
    verdict = check_hours(NEW_YORK, at("2026-07-01T16:00:00Z"), DEFAULT)
    assert not verdict.allowed and verdict.reason == "unknown_time_zone"
    assert "Mars/Olympus, which this server's time-zone database does not know" in verdict.message
