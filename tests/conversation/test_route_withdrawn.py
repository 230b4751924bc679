"""An agent whose chosen route is no longer offered (its plugin switched off, or its
[routes.CODE] table removed) is told so on every screen that reads their route, and shown
the routes they can choose: it was "You haven't chosen a route yet" (tester)."""

from __future__ import annotations

import io
import json

import pytest
from corecall_testing import config_dict, write_toml

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.cli import main
from corecall.config import load_config
from corecall.console import run_console_async

AGENT = 501
ADMIN = 1000  # the config's super admin


def withdraw_route_d(tmp_path, how: str) -> dict:
    raw = config_dict(tmp_path)
    if how == "plugin disabled":
        raw["plugins"] = {**raw["plugins"], "disabled": ["route_dev"]}
    else:
        raw["routes"] = {"M": raw["routes"]["M"]}
    return raw


@pytest.fixture(params=["plugin disabled", "route removed"])
def config_path(request, tmp_path, monkeypatch):
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    monkeypatch.setenv("CORECALL_CONFIG", str(path))
    app = App(load_config(None))
    AgentAdmin(app).authorize(AGENT, actor="test", phone="+12125550111", name="Alice")
    AgentAdmin(app).set_route(AGENT, "D", actor="test")
    app.close()
    write_toml(path, withdraw_route_d(tmp_path, request.param))  # the operator withdraws D
    return path


async def console(user: int, script: str) -> str:
    app = App(load_config(None))
    out = io.StringIO()
    try:
        await run_console_async(
            app, user, stdin=io.StringIO(script), stdout=out, interactive=False, wait=10
        )
    finally:
        app.close()
    return out.getvalue()


GONE = "Your route [D] is no longer offered."


async def test_the_agent_is_told_their_route_is_gone_and_shown_the_choices(config_path):
    out = await console(AGENT, "/start\n/call +12125550123\n/route\n/settings\n[4.1]\n")
    assert (
        "    Your route [D] is no longer offered. Before your next call, choose another in "
        "/settings.\n"
    ) in out  # /start
    assert (
        "you: /call +12125550123\n"
        f"bot #2: {GONE} I can't place calls for you until you choose another. Choose one "
        "below, then send your /call again.\n"
        "    [2.1] [Main Route]  🌍\n"
    ) in out
    assert (
        "you: /route\n"
        f"bot #3: {GONE} Tell me which route: /route M (Main). Or choose one below.\n"
        "    [3.1] [Main Route]  🌍\n"
    ) in out
    assert "    Caller ID: none [route D is no longer offered]\n    [4.1] Select Route 🌐\n" in out
    assert f"bot #4 (edited): {GONE} Choose a route for your outbound calls:\n" in out
    assert "haven't chosen" not in out and "none yet" not in out
    # Chosen again: every screen is back to normal, and the call goes out on M.
    out = await console(AGENT, "/route M\n/start\n/call +12125550123\n")
    assert "bot #1: ✅ Your route has been successfully changed to [Main]!" in out
    assert "no longer offered" not in out and "📞 Call to +12125550123" in out


async def test_the_admin_screens_say_the_agents_route_is_gone(config_path, capsys):
    out = await console(ADMIN, "/callerid 501\n/agents\n")
    assert (
        "bot #1: Agent 501 (Alice)'s route [D] is no longer offered, and a caller ID belongs to "
        "a route. Set one with /setroute 501 M (Main) (or they choose one in /settings), then "
        "send /callerid 501 again.\n"
    ) in out
    assert "· Caller ID: none [route D is no longer offered]" in out
    # the CLI: agents list / set-caller-id, policy check
    assert main(["agents", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "Alice" in line)
    assert row.split("\t")[4:] == ["D (no longer offered)", "none [route D is no longer offered]"]
    assert main(["agents", "set-caller-id", "501", "+12125550100"]) != 0
    assert capsys.readouterr().err == (
        "error: Agent 501's route D is no longer offered; a caller ID belongs to a route. "
        "Set the route first (agents set-route).\n"
    )
    assert main(["policy", "check", "--agent", "501", "--target", "+12125550123", "--json"]) == 1
    step = next(s for s in json.loads(capsys.readouterr().out)["checks"] if s["step"] == "route")
    assert step["message"] == (
        "No route: the agent's route 'D' is no longer offered (offered routes: M); pass "
        "--route CODE, or set theirs with `corecall agents set-route 501 CODE`."
    )
