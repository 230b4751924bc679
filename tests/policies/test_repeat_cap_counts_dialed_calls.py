"""The repeat-call cap counts the calls that dialed the number, as the agent sees them in
the bot (`corecall console`, the simulated PBX failing the agent's own leg by rule): a call
the bot reported as "… was not dialed" does not use up the cap; one that rang the number
does, whatever its outcome."""

from __future__ import annotations

import io

import pytest
from corecall_testing import config_dict, write_toml

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import load_config
from corecall.console import run_console_async

AGENT = 501
TARGET = "+12125550123"
NOT_DIALED = f"so {TARGET} was not dialed."
REFUSED = (
    "⛔ Not dialed. This number was called once in the last 24 hours, by all agents together "
    "(the limit is 1 call in 24 hours). It may be called again at "
)


@pytest.fixture
def app(tmp_path, monkeypatch):
    raw = config_dict(tmp_path)
    raw["plugins"] = {**raw["plugins"], "policy_repeat_calls": {"max_calls": 1}}
    monkeypatch.setenv("CORECALL_CONFIG", str(write_toml(tmp_path / "corecall.toml", raw)))
    app = App(load_config(None))
    AgentAdmin(app).authorize(AGENT, actor="test", phone="+12125550111", name="Alice")
    AgentAdmin(app).set_route(AGENT, "D", actor="test")  # confirm = "key" (the default)
    yield app
    app.close()


async def console(app: App, script: str) -> str:
    out = io.StringIO()
    await run_console_async(
        app, AGENT, stdin=io.StringIO(script), stdout=out, interactive=False, wait=10
    )
    return out.getvalue()


def set_phone(app: App, phone: str) -> None:
    AgentAdmin(app).set_phone(AGENT, phone, actor="test")


@pytest.mark.parametrize(
    ("agent_phone", "what_the_agent_read"),
    [
        ("+12125550408", "❌ Not connected: you didn't answer your phone +12125550408, "),
        ("+12125550486", "❌ Not connected: your phone +12125550486 was busy, "),
        ("+12125550403", "❌ Not connected: your phone +12125550403 declined the call, "),
        (
            "+12125550777",
            "❌ Not connected: your phone +12125550777 was answered but nobody "
            "pressed 1 (voicemail?), ",
        ),
        (
            "+12125550778",
            "❌ Not connected: your phone +12125550778 was answered but nobody "
            "pressed 1 (voicemail?), ",
        ),
    ],
    ids=["no answer", "busy", "declined", "voicemail", "wrong key"],
)
async def test_a_call_that_was_not_dialed_leaves_the_cap_alone(
    app, agent_phone, what_the_agent_read
):
    set_phone(app, agent_phone)
    first = await console(app, f"/call {TARGET}\n")
    assert what_the_agent_read + NOT_DIALED in first
    set_phone(app, "+12125550111")  # the agent fixes the phone and tries again: it rings
    second = await console(app, f"/call {TARGET}\n")
    assert REFUSED not in second
    assert "☎️ Call ended." in second  # connected and ended: the cap's one call
    third = await console(app, f"/call {TARGET}\n")
    assert f"you: /call {TARGET}\nbot #1: {REFUSED}" in third
    # on record: the call that was not dialed and the one that was (the refusal is not)
    calls = app.store.recent_calls()
    assert (calls[0].target, calls[0].reason) == (TARGET, "completed")
    assert [c.may_have_dialed_target for c in calls] == [True, False]


@pytest.mark.parametrize(
    ("target", "what_the_agent_read"),
    [
        ("+12125550486", "❌ Not connected: +12125550486 was busy. Try again later."),
        ("+12125550408", "❌ Not connected: +12125550408 didn't answer."),
        ("+12125550503", "❌ Not connected: +12125550503 could not be reached. Check the number."),
    ],
    ids=["busy", "no answer", "unreachable"],
)
async def test_a_call_that_rang_the_number_counts_whatever_its_outcome(
    app, target, what_the_agent_read
):
    first = await console(app, f"/call {target}\n")
    assert what_the_agent_read in first
    again = await console(app, f"/call {target}\n")
    assert f"you: /call {target}\nbot #1: {REFUSED}" in again
