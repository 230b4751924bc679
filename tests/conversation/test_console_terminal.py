"""``corecall demo`` / ``console`` in a real terminal (a pty): prompt, line editing and
history; button labels that stay unambiguous; logs kept out of the conversation; the demo's
opening text says what is true."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time

from corecall_testing import config_dict

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config
from corecall.console import ConsolePort, run_console_async
from corecall.conversation import Button

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")
UP = "\x1b[A"
LEFT = "\x1b[D"


class Terminal:
    """``corecall demo`` on a pseudo-terminal: type into it, read its screen text."""

    def __init__(self, tmp_path, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "CORECALL_DATA_DIR": str(tmp_path), "CORECALL_DEMO_SPEED": "20",
               "TERM": "xterm"}  # fmt: skip
        env.pop("COLUMNS", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "corecall", "demo", *args],
                                     stdin=slave, stdout=slave, stderr=slave, env=env,
                                     close_fds=True)  # fmt: skip
        os.close(slave)
        self.raw = ""

    def read_until(self, text: str, timeout: float = 30, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while self.screen.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; screen:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.raw += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    break
        return self.screen

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        self.type("\x04")  # Ctrl-D
        try:
            self.proc.wait(timeout=30)
        finally:
            os.close(self.master)


def test_a_terminal_gets_a_prompt_line_editing_and_history(tmp_path):
    term = Terminal(tmp_path)
    try:
        term.read_until("you> ")
        # "/hepl": two steps left, insert "l" ("/helpl"), Ctrl-E to the end, Backspace.
        term.type("/hepl" + LEFT + LEFT + "l" + "\x05" + "\x7f" + "\r")
        term.read_until("Agent commands:")
        term.type(UP + "\r")  # history: the same /help again
        term.read_until("Agent commands:", count=2)
        assert "I only understand commands" not in term.screen  # ^[[A never reaches the bot
        assert "don't know that command" not in term.screen
    finally:
        term.close()
    assert "/help" in (tmp_path / "demo" / "console_history").read_text()


def test_logs_never_go_into_the_conversation(tmp_path):
    term = Terminal(tmp_path)
    try:
        term.read_until("you> ")
        term.type("/route D\r")
        term.read_until("successfully changed")
        term.type("/call +12125550123\r")
        term.read_until("Call ended")
    finally:
        term.close()
    assert " INFO " not in term.screen and " WARNING " not in term.screen
    log = (tmp_path / "demo" / "logs" / "console.log").read_text()
    assert " INFO " in log  # they went to the log file instead


def test_the_demo_opening_text_says_what_is_true(tmp_path):
    first = subprocess.run([sys.executable, "-m", "corecall", "demo"], input="/route D\n",
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "CORECALL_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert "an authorized agent with no route yet" in first.stdout
    again = subprocess.run([sys.executable, "-m", "corecall", "demo"],
                           input="/authorize 42 +12125550142 Bob\n", capture_output=True,
                           text=True, timeout=60,
                           env={**os.environ, "CORECALL_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert "on the Development route (Caller ID: +12125550199 [D])" in again.stdout
    assert "an authorized agent with no route yet" not in again.stdout
    third = subprocess.run([sys.executable, "-m", "corecall", "demo"], input="",
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "CORECALL_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert "1 other agent added in earlier runs" in third.stdout


# --------------------------------------------------------------------------- button labels


def test_labels_name_message_and_button_and_bare_numbers_are_never_guessed():
    port = ConsolePort(io.StringIO())
    settings = ((Button("Select Route 🌐", b"open"),),)
    hang_up = ((Button("📴 Hang up", b"hang"),),)
    import asyncio

    asyncio.run(port.send(1, "📞 Call", hang_up))  # message #1: the live call
    assert port.resolve("1") == ((1, b"hang"), None)  # one keyboard on screen: unambiguous
    asyncio.run(port.send(1, "⚙️ Settings", settings))  # message #2
    button, problem = port.resolve("1")
    assert button is None and "not enough" in problem and "[1.1] or [2.1]" in problem
    assert port.resolve("1.1") == ((1, b"hang"), None)
    assert port.resolve("2.1") == ((2, b"open"), None)
    asyncio.run(port.edit(1, 1, "📞 Call\n🔔 Ringing", hang_up))  # edits keep the label
    assert port.resolve("1.1") == ((1, b"hang"), None)
    asyncio.run(port.edit(1, 1, "☎️ Call ended", ()))  # its buttons are gone
    assert port.resolve("1.1")[0] is None
    assert port.resolve("1") == ((2, b"open"), None)
    assert "[2.1] Select Route" in port.out.getvalue()
    assert port.resolve("/call 1")[0] is None and port.resolve("/call 1")[1] is None


def test_typed_labels_name_only_buttons_that_exist():
    """Every way of typing a label (bare, full, bracketed as shown) presses the button it
    names or says plainly that there is none, naming only labels on screen (tester5: '0'
    listed [1.0] and [2.0], '3' was called ambiguous with no 3rd button anywhere, and
    '[2.1]' as shown was not understood)."""
    import asyncio

    port = ConsolePort(io.StringIO())
    asyncio.run(port.send(1, "⚙️ Settings", ((Button("Select Route 🌐", b"open"),),)))
    caller_ids = ((Button("+12125550199", b"cid0"),), (Button("+12125550198", b"cid1"),))
    asyncio.run(port.send(1, "Choose the caller ID", caller_ids))  # message #2
    on_screen = "Buttons on screen: [1.1], [2.1], [2.2]."
    for typed in ("0", "3", "[0]", "[3]", "999"):
        shown = typed.strip("[]")
        assert port.resolve(typed) == (None, f"There is no button [{shown}] on screen. {on_screen}")
    for typed in ("2.0", "2.3", "3.1", "[2.3]", "0.1"):
        shown = typed.strip("[]")
        assert port.resolve(typed) == (None, f"There is no button [{shown}] on screen. {on_screen}")
    # A bare number while several messages show buttons: never guessed, and only the
    # labels that exist are offered.
    assert port.resolve("1") == (None, "Several messages show buttons, so a bare number is not "
                                 "enough: type the full label, [1.1] or [2.1].")  # fmt: skip
    assert port.resolve("[2]") == (None, "Several messages show buttons, so a bare number is not "
                                   "enough: type the full label, [2.2].")  # fmt: skip
    # The label as shown, brackets and all (spaces around it too), presses the button.
    for typed in ("[2.1]", " [2.1] ", "[ 2.1 ]", "2.1"):
        assert port.resolve(typed) == ((2, b"cid0"), None), typed
    assert port.resolve("[abc]") == (None, "[abc] is not a button label: labels look like "
                                     "[2.1] (message 2, button 1); type 2.1 or [2.1].")  # fmt: skip
    asyncio.run(port.edit(1, 2, "✅ done", ()))  # message #2 loses its buttons
    assert port.resolve("[1]") == ((1, b"open"), None)
    assert port.resolve("2") == (None, "There is no button [2] on screen. "
                                 "Buttons on screen: [1.1].")  # fmt: skip
    asyncio.run(port.edit(1, 1, "⚙️ Settings", ()))
    assert port.resolve("1") == (None, "There is no button [1] on screen: no message shows "
                                 "buttons now.")  # fmt: skip
    assert port.resolve("hello") == (None, None)  # not a label: the conversation answers it


async def test_during_a_live_call_1_never_presses_another_messages_button(tmp_path):
    app = App(parse_config(config_dict(tmp_path, trunks={
        "dev": {"driver": "simulated", "ring_seconds": 0.5, "talk_seconds": 5},
    }), path=None))  # fmt: skip
    AgentAdmin(app).authorize(501, actor="test", phone="+12125550111", name="Alice")
    AgentAdmin(app).set_route(501, "D", actor="test")
    out = io.StringIO()
    script = "/call +12125550123\n/settings\n/help\n1\n1.1\n"
    await run_console_async(app, 501, stdin=io.StringIO(script), stdout=out, interactive=False,
                            wait=10)  # fmt: skip
    text = out.getvalue()
    assert "you: 1\nbot (notice): Several messages show buttons" in text
    assert "you: 1.1\nbot (notice): Hanging up…" in text
    assert "Choose a route" not in text  # Select Route was never pressed
    app.close()
