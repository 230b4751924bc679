"""``corecall demo``: the whole product in a terminal, with zero configuration.

The demo has its own SQLite database in ``<data dir>/demo`` (the per-user data directory, or
``$CORECALL_DATA_DIR``), the simulated PBX on both routes (nothing is ever dialed), and a
demo agent who is authorized and has a phone; on the first run (or with ``--reset``) it has
**no route yet**, so a newcomer sees the route selection first, then a call with live
status. The route and agents added with /authorize persist between runs, and the opening
text says so. The demo user is a super admin too, so
the admin commands work. It never writes the real configuration or database, and reads only
the operator's plugin switches (:func:`operator_choices`).

Plugins switched off for corecall on this machine are off in the demo too: those in the
configured data directory's ``plugins.json`` (``corecall plugins disable``) and in the
configuration's ``[plugins] disabled``, besides the demo's own ``<data dir>/demo/plugins.json``.
A disabled plugin is never imported, so one that crashes on import can be switched off for
the demo as for everything else. The plugins the demo is made of (:data:`DEMO_PARTS`: its
store, simulated phone system, routes and route resolver) are loaded even when disabled
there (an operator on Asterisk may well disable the simulated PBX), and the opening text
says which. The rest of the configuration (routes, trunks, store, plugin options) is not
the demo's: it has its own.

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
from corecall.config import Config, default_data_dir, load_config, parse_config
from corecall.console import DEFAULT_WAIT, run_console
from corecall.errors import ConfigError, UsageError
from corecall.fields import echo, show_path
from corecall.plugins import read_disabled

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


#: The plugins the demo is made of, with what each is to it: loaded even when the operator
#: disabled them (the opening text says so), since without them there is no demo.
DEMO_PARTS = {
    "store_sqlite": "its database",
    "simulated_pbx": "its simulated phone system",
    "route_main": "its route M",
    "route_dev": "its route D",
    "route_resolver": "choosing the demo agent's route",
}


@attrs.frozen
class OperatorChoices:
    """The plugin switches of corecall's configuration on this machine, as the demo takes
    them: ``disabled`` are off in the demo too, ``kept`` are disabled there but loaded by the
    demo (:data:`DEMO_PARTS`); ``where`` says where each disabled name was found; ``problem``
    is why the configuration file could not be read (its ``[plugins] disabled`` then is
    unknown; the default data directory's ``plugins.json`` is still read)."""

    disabled: frozenset[str] = frozenset()
    kept: frozenset[str] = frozenset()
    where: tuple[str, ...] = ()
    problem: str | None = None
    #: The plugins.json read.
    state_path: Path | None = None


def operator_choices(config_path: str | None = None) -> OperatorChoices:
    """Read the plugins disabled for corecall on this machine: ``[plugins] disabled`` of the
    configuration ``config_path`` names (``--config``; else ``$CORECALL_CONFIG`` or the
    default path; none is fine) and ``plugins.json`` in its data directory. Raises
    :class:`ConfigError` for a ``plugins.json`` that is not ``{"disabled": [...]}`` (every
    other command refuses it too)."""
    problem = None
    in_config: tuple[str, ...] = ()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        problem, data_dir = str(exc), default_data_dir()
    else:
        in_config, data_dir = config.disabled_plugins, config.data_dir
    state_path = data_dir / "plugins.json"
    in_state = read_disabled(state_path)
    where = []
    if in_state:
        where.append(f"{', '.join(sorted(in_state))} in {show_path(state_path)}")
    if in_config:
        where.append(f"{', '.join(sorted(in_config))} in [plugins] disabled")
    names = set(in_state) | set(in_config)
    return OperatorChoices(
        disabled=frozenset(names - DEMO_PARTS.keys()),
        kept=frozenset(names & DEMO_PARTS.keys()),
        where=tuple(where),
        problem=problem,
        state_path=state_path,
    )


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


def _pretty_number(e164: str) -> str:
    return f"+1 {e164[2:5]} {e164[5:8]} {e164[8:]}"


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
    *,
    speed: float = 1.0,
    data_dir: Path | None = None,
    now: _dt.datetime | None = None,
    disabled: frozenset[str] = frozenset(),
) -> Config:
    """The demo's configuration: simulated trunks for M and D, the demo user as admin, and
    policies that let calls connect at any hour yet refuse the numbers the docs name.
    ``disabled`` are plugins to leave off (the operator's, :func:`operator_choices`)."""
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
    return attrs.evolve(
        parse_config(raw, path=None), data_dir=data_dir, disabled_plugins=tuple(sorted(disabled))
    )


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


def banner(app: App, choices: OperatorChoices = OperatorChoices()) -> str:
    """The opening text, saying what is true now: the demo's data persists between runs
    (the chosen route, agents added with /authorize), so it is read from the store; the
    plugins switched off (``choices``, the demo's own ``plugins.json``) are named, and the
    compliance checks of those are not promised."""
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
            _compliance_line(app.disabled_plugins),
            *_plugin_lines(app, choices),
            f"Demo data: {app.config.data_dir} (kept between runs; corecall demo --reset "
            "forgets the route).",
            "",
        ]
    )


#: The demo's compliance showcase: policy plugin -> what it refuses in the demo.
_SHOWCASE = {
    "policy_calling_hours": f"{_pretty_number(DEMO_OUTSIDE_HOURS_NUMBER)} (outside calling hours "
    "in Honolulu)",
    "policy_dnc": f"{_pretty_number(DEMO_DNC_NUMBER)} (do-not-call list)",
    "policy_repeat_calls": f"any number called {DEMO_REPEAT_CAP} times today (repeat-call cap)",
}


def _compliance_line(disabled: set[str]) -> str:
    shown = [what for name, what in _SHOWCASE.items() if name not in disabled]
    off = [name for name in _SHOWCASE if name in disabled]
    if not shown:
        line = "Compliance checks: none, the compliance plugins are switched off"
    elif len(shown) == 1:
        line = f"Compliance checks refuse {shown[0]}"
    else:
        line = f"Compliance checks refuse {', '.join(shown[:-1])} and {shown[-1]}"
    if off and shown:
        line += f"; {', '.join(off)} {'is' if len(off) == 1 else 'are'} switched off"
    return line + "; see docs/compliance.md."


def _plugin_lines(app: App, choices: OperatorChoices) -> list[str]:
    lines = []
    if choices.problem:
        lines.append(
            f"Your configuration could not be read ({choices.problem}), so the plugins its "
            "[plugins] disabled names may be loaded here; those disabled in "
            f"{show_path(choices.state_path)} are not."
        )
    if choices.where:
        line = f"Plugins switched off for corecall on this machine: {'; '.join(choices.where)}."
        if choices.disabled:
            line += f" Off in the demo too: {', '.join(sorted(choices.disabled))}."
        if choices.kept:
            parts = ", ".join(f"{name} ({DEMO_PARTS[name]})" for name in sorted(choices.kept))
            them = "it" if len(choices.kept) == 1 else "them"
            line += f" The demo is made of {parts}, so it loads {them} anyway."
        lines.append(line)
    own = sorted(read_disabled(app.config.plugin_state_path))
    if own:
        lines.append(
            f"Switched off in the demo's own {show_path(app.config.plugin_state_path)}: "
            f"{', '.join(own)}."
        )
    return lines


def run_demo(
    *,
    speed: float | None = None,
    reset: bool = False,
    wait: float = DEFAULT_WAIT,
    config_path: str | None = None,
):
    """``corecall demo``: ``config_path`` is ``--config`` (only its plugin switches are
    taken: :func:`operator_choices`)."""
    choices = operator_choices(config_path)
    app = App(demo_config(speed=speed_from_env(speed), disabled=choices.disabled))
    try:
        prepare_demo(app, reset=reset)
        run_console(app, DEMO_AGENT_ID, wait=wait, banner=banner(app, choices))
    finally:
        app.close()
