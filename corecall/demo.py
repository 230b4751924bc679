"""``corecall demo``: the whole product in a terminal, with zero configuration.

The demo has its own SQLite database in ``<data dir>/demo`` (the per-user data directory, or
``$CORECALL_DATA_DIR``), the simulated PBX on both routes (nothing is ever dialed), and a
demo agent who is authorized and has a phone; on the first run (or with ``--reset``) it has
**no route yet**, so a newcomer sees the route selection first, then a call with live
status. The route and agents added with /authorize persist between runs, and the opening
text says so. The demo user is a super admin too, so
the admin commands work. It never reads or writes the real configuration or database.

A simulated call takes about ten seconds, like a short real one. ``--speed 20`` (or
``CORECALL_DEMO_SPEED=20``) runs it twenty times faster (tests use this).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import Config, default_data_dir, parse_config
from corecall.console import DEFAULT_WAIT, run_console
from corecall.errors import UsageError

DEMO_AGENT_ID = 100000001
DEMO_AGENT_PHONE = "+12125550111"
DEMO_AGENT_NAME = "Demo Agent"
DEMO_ACTOR = "demo"
SPEED_ENV = "CORECALL_DEMO_SPEED"

#: The simulated PBX's timings at speed 1: ring 1 s + answer 1.5 s on each leg, then 5 s of
#: conversation: about 10 s from /call to "Call ended".
HUMAN_TIMINGS = {
    "ring_seconds": 1.0,
    "answer_seconds": 1.5,
    "slow_answer_seconds": 4.0,
    "talk_seconds": 5.0,
    "timeout_seconds": 8.0,
}


def demo_data_dir() -> Path:
    return default_data_dir() / "demo"


def speed_from_env(speed: float | None) -> float:
    if speed is None:
        raw = os.environ.get(SPEED_ENV, "1")
        try:
            speed = float(raw)
        except ValueError:
            raise UsageError(f"{SPEED_ENV} must be a number like 1 or 20, got {raw!r}") from None
    if not speed > 0:
        raise UsageError(f"the demo speed must be a positive number like 1 or 20, got {speed}")
    return speed


def demo_config(*, speed: float = 1.0, data_dir: Path | None = None) -> Config:
    """The demo's configuration: simulated trunks for M and D, the demo user as admin."""
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
    }
    # parse_config lets $CORECALL_DATA_DIR win over data_dir; the demo always lives in its
    # own sub-directory so it can never touch a real database.
    return attrs.evolve(parse_config(raw, path=None), data_dir=data_dir)


def prepare_demo(app: App, *, reset: bool = False) -> None:
    """Make sure the demo agent exists, is authorized and has its phone. ``reset`` forgets
    the chosen route (and caller ID), as on the very first run."""
    store = app.store
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
            "Simulated outcomes by the last 4 digits: 0486 busy, 0408 no answer, 0403 rejected,"
            " 0503 unreachable, 0202 slow answer.",
            f"Demo data: {app.config.data_dir} (kept between runs; corecall demo --reset "
            "forgets the route).",
            "",
        ]
    )


def run_demo(*, speed: float | None = None, reset: bool = False, wait: float = DEFAULT_WAIT):
    app = App(demo_config(speed=speed_from_env(speed)))
    try:
        prepare_demo(app, reset=reset)
        run_console(app, DEMO_AGENT_ID, wait=wait, banner=banner(app))
    finally:
        app.close()
