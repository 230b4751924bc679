"""The compliance policies where people meet them: `corecall console` (a number added with
`corecall dnc add` is refused) and the zero-config demo (calls connect at any hour, and each
policy refuses the number the demo's docs name)."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import uuid

import pytest
from corecall_policy_calling_hours.hours import Window, check_hours, parse_clock
from corecall_testing import config_dict, write_toml

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.cli import main
from corecall.config import load_config
from corecall.console import run_console_async
from corecall.demo import (
    DEMO_AGENT_ID,
    DEMO_DNC_NUMBER,
    DEMO_OUTSIDE_HOURS_NUMBER,
    demo_calling_hours,
    demo_config,
)
from corecall.domain import CallRecord, CallState, EndReason

AGENT = 501
REFUSED_DNC = "⛔ Not dialed. This number is on the do-not-call list: it may not be called."


@pytest.mark.parametrize("typed", ["(212) 555-0123", "+1 212 555 0123", "212-555-0123"])
async def test_console_refuses_a_number_added_with_dnc_add(tmp_path, monkeypatch, typed):
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    monkeypatch.setenv("CORECALL_CONFIG", str(path))
    assert main(["dnc", "add", typed]) == 0
    app = App(load_config(None))
    AgentAdmin(app).authorize(AGENT, actor="test", phone="+12125550111", name="Alice")
    AgentAdmin(app).set_route(AGENT, "D", actor="test")
    out = io.StringIO()
    script = "/call 2125550123\n/call +12125550124\n"
    await run_console_async(
        app, AGENT, stdin=io.StringIO(script), stdout=out, interactive=False, wait=10
    )
    output = out.getvalue()
    assert f"you: /call 2125550123\nbot #1: {REFUSED_DNC}" in output
    assert "bot #2: 📞 Call to +12125550124" in output
    assert [c.target for c in app.store.recent_calls()] == ["+12125550124"]
    app.close()


# --------------------------------------------------------------------------- the demo


@pytest.mark.parametrize("hour", range(24))
def test_the_demo_window_lets_new_york_calls_connect_at_any_hour_and_refuses_honolulu(hour):
    for minute in (0, 59):
        start = dt.datetime(2026, 1, 15, hour, minute, tzinfo=dt.UTC)  # winter
        for moment in (start, start.replace(month=7)):  # and summer (DST)
            table = demo_calling_hours(moment)
            window = Window(opens=parse_clock(table["opens"]), closes=parse_clock(table["closes"]))
            for later in (0, 60 * 60 * 5, 60 * 60 * 16):  # the next 16 hours of the session
                at = moment + dt.timedelta(seconds=later)
                assert check_hours("+12125550123", at, window).allowed, (moment, at)
            for later in (0, 60 * 60 * 3):  # Honolulu stays outside for 3 hours at least
                at = moment + dt.timedelta(seconds=later)
                assert not check_hours(DEMO_OUTSIDE_HOURS_NUMBER, at, window).allowed


def demo(tmp_path, script: str) -> str:
    env = {**os.environ, "CORECALL_DATA_DIR": str(tmp_path), "CORECALL_DEMO_SPEED": "20"}
    done = subprocess.run(
        [sys.executable, "-m", "corecall", "demo"], input=script, capture_output=True,
        text=True, env=env, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_shows_each_policy_refusal_with_the_numbers_its_docs_name(tmp_path):
    script = (
        "/route D\n"
        "/call +1 212 555 0166\n"  # on the demo's do-not-call list
        "/call +1 808 555 0123\n"  # outside calling hours in Honolulu
        "/dnc (212) 555-0177\n"  # the demo user is an admin
        "/call 212-555-0177\n"
    )
    out = demo(tmp_path, script)
    assert "Compliance checks refuse +1 808 555 0123 (outside calling hours in Honolulu), " \
        "+1 212 555 0166 (do-not-call list)" in out  # fmt: skip
    assert f"you: /call +1 212 555 0166\nbot #2: {REFUSED_DNC}" in out
    assert "you: /call +1 808 555 0123\nbot #3: ⛔ Not dialed. It is " in out
    assert " in Pacific/Honolulu for this number. Calls open " in out
    assert "🚫 +12125550177 is on the do-not-call list now" in out
    assert f"you: /call 212-555-0177\nbot #5: {REFUSED_DNC}" in out
    assert DEMO_DNC_NUMBER == "+12125550166"


def test_the_demo_connects_ordinary_calls_and_caps_repeat_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))
    app = App(demo_config())  # the demo's own database, as `corecall demo` opens it
    now = dt.datetime.now(dt.UTC)
    # three calls that rang +12125550123 in the last few minutes, and one that never dialed
    # it (the agent's phone was not answered): not counted
    for minutes, reason in ((1, "completed"), (2, "target_busy"), (3, "completed"),
                            (4, "agent_no_answer")):  # fmt: skip
        at = now - dt.timedelta(minutes=minutes)
        stamp = {} if reason == "agent_no_answer" else {"dialing_target_at": at}
        app.store.create_call(CallRecord(
            id=uuid.uuid4().hex, agent_id=DEMO_AGENT_ID, agent_phone="+12125550111",
            target="+12125550123", route_code="D", trunk="dev", caller_id="+12125550199",
            created_at=at, state=CallState.ENDED, reason=EndReason(reason), ended_at=at,
            **stamp,
        ))  # fmt: skip
    app.close()
    out = demo(tmp_path, "/route D\n/call +12125550123\n/call +12125550124\n")
    assert (
        "This number was called 3 times in the last 24 hours, by all agents together (the "
        "limit is 3 calls in 24 hours). It may be called again at "
    ) in out
    assert "☎️ Call ended." in out  # +12125550124 connected, at whatever hour this runs
