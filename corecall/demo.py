"""``corecall demo``: the whole product in a terminal, with zero configuration.

The demo has its own SQLite database in ``<data dir>/demo`` (the per-user data directory, or
``$CORECALL_DATA_DIR``), the simulated PBX on both routes (nothing is ever dialed), and a
demo agent who is authorized and has a phone; on the first run (or with ``--reset``) it has
**no route yet**, so a newcomer sees the route selection first, then a call with live
status. The route and agents added with /authorize persist between runs, and the opening
text says so. The demo user is a super admin too, so
the admin commands work. It never reads or writes the real configuration or database.

A simulated call takes about twelve seconds, like a short real one. ``--speed 20`` (or
``CORECALL_DEMO_SPEED=20``) runs it twenty times faster (tests use this).
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import Config, default_data_dir, parse_config
from corecall.console import DEFAULT_WAIT, run_console
from corecall.errors import UsageError
from corecall.fields import echo

DEMO_AGENT_ID = 100000001
DEMO_AGENT_PHONE = "+12125550111"
DEMO_AGENT_NAME = "Demo Agent"
DEMO_ACTOR = "demo"
SPEED_ENV = "CORECALL_DEMO_SPEED"

#: The simulated PBX's timings at speed 1: ring 1 s + answer 1.5 s on each leg, 2.5 s to press
#: 1, then 5 s of conversation: about 12 s from /call to "Call ended".
HUMAN_TIMINGS = {
    "ring_seconds": 1.0,
    "answer_seconds": 1.5,
    "slow_answer_seconds": 4.0,
    "confirm_seconds": 2.5,  # the agent hears whom they call and presses 1
    "talk_seconds": 5.0,
    "timeout_seconds": 8.0,
}


def demo_data_dir() -> Path:
    return default_data_dir() / "demo"


#: The fastest demo: the simulated timings divided by more than this are below what the
#: event loop can keep apart.
MAX_SPEED = 1000


def speed_from_env(speed: float | None) -> float:
    if speed is None:
        raw = os.environ.get(SPEED_ENV, "1")
        try:
            speed = float(raw)
        except ValueError:
            raise UsageError(
                f"{SPEED_ENV} must be a number like 1 or 20, got {echo(raw)}"
            ) from None
    if not 0 < speed <= MAX_SPEED:  # also nan and inf (the option's range, for the variable)
        raise UsageError(
            f"the demo speed must be a number above 0 and at most {MAX_SPEED:g}, like 1 or 20, "
            f"got {speed:g}"
        )
    return speed


#: Numbers the demo's docs name to show each policy's refusal (docs/compliance.md).
DEMO_DNC_NUMBER = "+12125550166"  # on the demo's do-not-call list
DEMO_OUTSIDE_HOURS_NUMBER = "+18085550123"  # Honolulu: always outside the demo's window
DEMO_REPEAT_CAP = 3  # calls to one number per 24 h in the demo
DEMO_ZONE = "America/New_York"  # the zone of the demo's example numbers (+1 212)


def demo_calling_hours(now: _dt.datetime | None = None) -> dict[str, str]:
    """The demo's calling window, chosen when the demo starts so that it is open in New York
    (the +1 212 numbers every example uses) and Chicago for the next 16 hours at least, and
    closed in Honolulu (5-6 hours behind New York) for the next 3 at least: from an hour
    before New York's current hour to 18 hours later, wrapping midnight. A newcomer's calls
    connect at any hour, and ``/call +1 808 555 0123`` shows the calling-hours refusal on
    demand (restart the demo after 3 hours to re-centre the window)."""
    local = (now or _dt.datetime.now(_dt.UTC)).astimezone(ZoneInfo(DEMO_ZONE))
    opens, closes = (local.hour - 1) % 24, (local.hour + 17) % 24
    return {"opens": f"{opens:02d}:00", "closes": f"{closes:02d}:00"}


def demo_config(
    *, speed: float = 1.0, data_dir: Path | None = None, now: _dt.datetime | None = None
) -> Config:
    """The demo's configuration: simulated trunks for M and D, the demo user as admin, and
    policies that let calls connect at any hour yet refuse the numbers the docs name."""
    data_dir = data_dir or demo_data_dir()
    timings = {name: seconds / speed for name, seconds in HUMAN_TIMINGS.items()}
    raw = {
        "bot": {"super_admins": [DEMO_AGENT_ID]},
        "store": {"backend": "sqlite"},
        "trunks": {
            "main": {"driver": "simulated", **timings},
            "dev": {"driver": "simulated", **timings},
        },
        "routes": {
            "M": {"trunk": "main", "caller_ids": ["+12125550100", "+12125550101"]},
            "D": {"trunk": "dev", "caller_ids": ["+12125550199"]},
        },
        "plugins": {
            "policy_calling_hours": demo_calling_hours(now),
            "policy_repeat_calls": {"max_calls": DEMO_REPEAT_CAP},
        },
    }
    # parse_config lets $CORECALL_DATA_DIR win over data_dir; the demo always lives in its
    # own sub-directory so it can never touch a real database.
    return attrs.evolve(parse_config(raw, path=None), data_dir=data_dir)


def prepare_demo(app: App, *, reset: bool = False) -> None:
    """Make sure the demo agent exists, is authorized and has its phone. ``reset`` forgets
    the chosen route (and caller ID), as on the very first run."""
    store = app.store
    if not store.dnc_contains(DEMO_DNC_NUMBER):
        store.dnc_add(DEMO_DNC_NUMBER, reason="listed by the demo", actor=DEMO_ACTOR)
    agent = store.get_agent(DEMO_AGENT_ID)
    if agent is None:
        AgentAdmin(app).add(
            DEMO_AGENT_ID, DEMO_AGENT_PHONE, DEMO_AGENT_NAME, authorized=True, actor=DEMO_ACTOR
        )
        return
    if not agent.authorized:
        store.set_authorized(DEMO_AGENT_ID, True, actor=DEMO_ACTOR)
    if agent.phone != DEMO_AGENT_PHONE:
        store.set_phone(DEMO_AGENT_ID, DEMO_AGENT_PHONE, actor=DEMO_ACTOR)
    if reset:
        store.set_route(DEMO_AGENT_ID, None, actor=DEMO_ACTOR)
        store.set_caller_id(DEMO_AGENT_ID, None, actor=DEMO_ACTOR)


def banner(app: App) -> str:
    """The opening text, saying what is true now: the demo's data persists between runs
    (the chosen route, agents added with /authorize), so it is read from the store."""
    admin = AgentAdmin(app)
    agent = admin.get(DEMO_AGENT_ID)
    route = admin.route_of(agent)
    others = [a for a in app.store.list_agents() if a.telegram_id != DEMO_AGENT_ID]
    if route is None:
        where = "an authorized agent with no route yet, and a super admin."
        first = "Try /settings to choose a route, then /call +12125550123."
    else:
        where = (
            f"an authorized agent on the {route.name} route "
            f"({admin.caller_id_line(agent)}), and a super admin."
        )
        first = "Try /call +12125550123, or /settings to change the route."
    lines = [
        "corecall demo: the Telegram bot's conversation in your terminal, on a simulated "
        "phone system (nothing is dialed).",
        f"You are {DEMO_AGENT_NAME} (Telegram id {DEMO_AGENT_ID}, phone {DEMO_AGENT_PHONE}), "
        + where,
    ]
    if others:
        count = len(others)
        lines.append(
            f"{count} other agent{'s' if count != 1 else ''} added in earlier runs "
            "(/agents lists them)."
        )
    return "\n".join(
        [
            *lines,
            first + " Type a button's label (like 1.1, or just 1) to press it. /help lists "
            "every command; Ctrl-D quits.",
            "When your phone answers it tells you whom you are calling and waits for 1 (the "
            "demo presses it for you). Your voicemail never gets the call: try "
            f"/setphone {DEMO_AGENT_ID} +12125550777 (a voicemail box), then /call.",
            "Simulated outcomes by the last 4 digits: 0486 busy, 0408 no answer, 0403 rejected,"
            " 0503 unreachable, 0202 slow answer, 0183 early media, never answers, 0777 "
            "voicemail (never presses 1), 0778 presses a wrong key.",
            f"Compliance checks refuse {_pretty(DEMO_OUTSIDE_HOURS_NUMBER)} (outside calling "
            f"hours in Honolulu), {_pretty(DEMO_DNC_NUMBER)} (do-not-call list) and any number "
            f"called {DEMO_REPEAT_CAP} times today (repeat-call cap); see docs/compliance.md.",
            f"Demo data: {app.config.data_dir} (kept between runs; corecall demo --reset "
            "forgets the route).",
            "",
        ]
    )


def _pretty(e164: str) -> str:
    return f"+1 {e164[2:5]} {e164[5:8]} {e164[8:]}"


def run_demo(*, speed: float | None = None, reset: bool = False, wait: float = DEFAULT_WAIT):
    app = App(demo_config(speed=speed_from_env(speed)))
    try:
        prepare_demo(app, reset=reset)
        run_console(app, DEMO_AGENT_ID, wait=wait, banner=banner(app))
    finally:
        app.close()
