"""``corecall console`` and ``corecall demo``: the same conversation in a terminal, scripted
through stdin (one input per line, every reply and every edit printed)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from corecall_testing import config_dict

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config
from corecall.console import run_console_async

AGENT = 501

SEED_SELECTION = """\
you: /settings
bot #1: ⚙️ Settings
    Your phone: +12125550111
    Caller ID: none yet [no route]
    [1.1] Select Route 🌐
you: 1
bot #1 (edited): Choose a route for your outbound calls:
    [1.1] [Main Route]  🌍
    [1.2] [Development Route]  🛠️
you: 2
bot #1 (edited): Are you sure you want to switch to the Development route?
    All outbound calls will now go through this route.
    [1.1] ✅ Yes, Switch Route
    [1.2] ❌ Cancel
you: 1
bot #1 (edited): ✅ Your route has been successfully changed to [Development]!
"""


def make_app(tmp_path) -> App:
    app = App(parse_config(config_dict(tmp_path), path=None))
    AgentAdmin(app).authorize(AGENT, actor="test", phone="+12125550111", name="Alice")
    return app


async def run_script(app: App, script: str, wait: float = 10.0) -> str:
    out = io.StringIO()
    await run_console_async(
        app, AGENT, stdin=io.StringIO(script), stdout=out, interactive=False, wait=wait
    )
    return out.getvalue()


async def test_scripted_console_selects_a_route_and_places_a_call(tmp_path):
    app = make_app(tmp_path)
    output = await run_script(app, "/settings\n1\n2\n1\n\n/call (212) 555-0123\n")
    assert output.startswith(SEED_SELECTION)
    rest = output[len(SEED_SELECTION) :]
    assert rest.startswith(
        "you: /call (212) 555-0123\n"
        "bot #2: 📞 Call to +12125550123\n"
        "    Caller ID: +12125550199 [D]\n"
        "    ⏳ Calling your phone +12125550111…\n"
        "    [2.1] 📴 Hang up\n"
    )
    assert "(end of input: waiting up to 10 s for live calls to end)\n" in rest
    # Every state is printed as an edit of the same message, ending with the final one.
    assert rest.count("bot #2 (edited): ") >= 2
    assert "    🔔 Ringing +12125550123…\n" in rest
    assert rest.endswith(
        "bot #2 (edited): 📞 Call to +12125550123\n"
        "    Caller ID: +12125550199 [D]\n"
        "    ☎️ Call ended. Duration 0:00.\n"
        "    [2.1] 🚫 Do not call again\n"
    )
    (call,) = app.store.recent_calls(AGENT)
    assert (call.target, call.route_code, call.reason.value) == ("+12125550123", "D", "completed")
    app.close()


async def test_hang_up_by_typing_the_buttons_number(tmp_path):
    app = App(parse_config(config_dict(tmp_path, trunks={
        "dev": {"driver": "simulated", "ring_seconds": 0.5, "talk_seconds": 5},
    }), path=None))  # fmt: skip
    AgentAdmin(app).authorize(AGENT, actor="test", phone="+12125550111", name="Alice")
    AgentAdmin(app).set_route(AGENT, "D", actor="test")
    output = await run_script(app, "/call +12125550123\n1\n")
    assert "you: 1\nbot (notice): Hanging up…\n" in output
    assert output.endswith("    📴 You hung up before the call connected.\n")
    app.close()


async def test_a_number_without_a_button_says_so(tmp_path):
    app = make_app(tmp_path)
    output = await run_script(app, "7\n/route D\n")
    assert output == (
        "you: 7\n"
        "bot (notice): There is no button [7] on screen: no message shows buttons now.\n"
        "you: /route D\n"
        "bot #1: ✅ Your route has been successfully changed to [Development]!\n"
    )
    app.close()


def test_demo_shows_the_press_1_step_and_a_voicemail_that_never_confirms(tmp_path):
    env = {**os.environ, "CORECALL_DATA_DIR": str(tmp_path), "CORECALL_DEMO_SPEED": "2"}
    script = "/route D\n/setphone 100000001 +12125550777\n/call +12125550123\n"
    done = subprocess.run(
        [sys.executable, "-m", "corecall", "demo"], input=script, capture_output=True,
        text=True, env=env, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "/setphone 100000001 +12125550777 (a voicemail box)" in out  # the banner says how
    assert "    📲 Answered: press 1 on your phone to connect\n" in out
    assert out.rstrip().endswith(
        "    ❌ Not connected: your phone +12125550777 was answered but nobody pressed 1 "
        "(voicemail?), so +12125550123 was not dialed. Answer it yourself and press 1 when it "
        "tells you whom you are calling."
    ), out


def test_corecall_demo_scripted_end_to_end(tmp_path):
    """The README's run command, scripted: route selection, then a simulated call."""
    env = {**os.environ, "CORECALL_DATA_DIR": str(tmp_path), "CORECALL_DEMO_SPEED": "10"}
    script = "/start\n/call +12125550123\n2\n1\n/call +12125550123\n/history\n"
    done = subprocess.run(
        [sys.executable, "-m", "corecall", "demo"], input=script, capture_output=True,
        text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("corecall demo: the Telegram bot's conversation in your terminal")
    assert "Before your first call, choose a route in /settings." in out
    assert (
        "you: /call +12125550123\n"
        "bot #2: You haven't chosen a route yet, so I can't place calls for you. Choose one "
        "below, then send your /call again.\n"
        "    [2.1] [Main Route]  🌍\n"
        "    [2.2] [Development Route]  🛠️\n"
        "you: 2\n"
        "bot #2 (edited): Are you sure you want to switch to the Development route?\n"
        "    All outbound calls will now go through this route.\n"
        "    [2.1] ✅ Yes, Switch Route\n"
        "    [2.2] ❌ Cancel\n"
        "you: 1\n"
        "bot #2 (edited): ✅ Your route has been successfully changed to [Development]!\n"
        "you: /call +12125550123\n"
        "bot #3: 📞 Call to +12125550123\n"
        "    Caller ID: +12125550199 [D]\n"
        "    ⏳ Calling your phone +12125550111…\n"
    ) in out
    assert "· +12125550123 · [D] · 🟢 in progress\n" in out  # /history while it rings
    # ~0.5 s of talk; the customer was on the line, so the agent may list the number
    assert re.search(
        r"\n    ☎️ Call ended\. Duration 0:0[01]\.\n    \[3\.1\] 🚫 Do not call again\n\Z", out
    )
    assert (tmp_path / "demo" / "corecall.sqlite3").exists()  # its own database

    # The route persists: the next run calls right away; --reset forgets it.
    again = subprocess.run(
        [sys.executable, "-m", "corecall", "demo"], input="/settings\n", capture_output=True,
        text=True, env=env, timeout=60,
    )  # fmt: skip
    assert "    Caller ID: +12125550199 [D]\n" in again.stdout
    reset = subprocess.run(
        [sys.executable, "-m", "corecall", "demo", "--reset"], input="/settings\n",
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert "    Caller ID: none yet [no route]\n" in reset.stdout


def test_sigterm_stops_the_console_as_ctrl_c_does_and_the_call_ends_on_record(tmp_path):
    """`kill -TERM` used to end the console at once: the call stayed 'awaiting
    confirmation' on record and its webhook events were never written. Now the console
    stops as on Ctrl-C: the call reaches a final state on record, exit 0."""
    import signal
    import time

    from corecall_testing import write_toml

    app = make_app(tmp_path)
    app.store.set_route(AGENT, "M", actor="test")
    app.close()
    config = write_toml(tmp_path / "c.toml", config_dict(tmp_path))
    console = subprocess.Popen(
        [sys.executable, "-m", "corecall", "--config", str(config), "console", "--as",
         str(AGENT)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert console.stdin is not None and console.stdout is not None
        console.stdin.write("/call +12125550123\n")
        console.stdin.flush()
        deadline = time.monotonic() + 60
        seen = ""
        while "Calling your phone" not in seen and time.monotonic() < deadline:
            seen += console.stdout.readline()
        assert "Calling your phone" in seen, seen
        console.send_signal(signal.SIGTERM)
        console.wait(timeout=60)  # stdin stays open: only the signal stops it
        err = console.stderr.read() if console.stderr else ""
    finally:
        if console.poll() is None:
            console.kill()
    assert console.returncode == 0, err
    assert "console stopped by SIGTERM" in err and "Traceback" not in err
    app = App(parse_config(config_dict(tmp_path), path=None))
    [call] = app.store.recent_calls(AGENT, 5)
    app.close()
    assert call.is_final, call.state
