"""``corecall console --as TELEGRAM_ID``: the bot's conversation in a terminal.

The same :class:`~corecall.conversation.Conversation` as the Telegram bot, against the
configured store and trunk drivers, as if the given Telegram user were typing. Buttons are
labelled with their message and position (``[2.1] 📴 Hang up`` is the first button of bot
message #2) and pressed by typing that label (``2.1`` or ``[2.1]``). A bare number
(``1``) works while only one message shows buttons; while several do (a live call's Hang up
and a /settings menu), the console asks for the full label instead of guessing. Labels
never change meaning while other messages are edited.

In a terminal it has a prompt, line editing and history (GNU readline, from Python's
standard library: no dependency for the zero-config demo; history in
``<data_dir>/console_history``). Bot messages that arrive while you type are printed above
the prompt, and the line you are typing is redrawn below them. Log records never go into
the conversation: they go to stderr only when stderr is not the same terminal, else to
``<data_dir>/logs/console.log``.

Scriptable: when stdin is not a terminal, it reads one input per line, echoes it, prints
every reply and every edit, and at the end of input waits (bounded) for live calls to end
before exiting::

    printf '/settings\\n1\\n2\\n1\\n/call +12125550123\\n' | corecall console --as 123
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from corecall.app import App
from corecall.conversation import NO_BUTTONS, Conversation, Keyboard, UserRef
from corecall.domain import utcnow

log = logging.getLogger(__name__)

#: Seconds to wait at the end of input for live calls to end.
DEFAULT_WAIT = 60.0
INDENT = "    "
PROMPT = "you> "
_LABEL_RE = re.compile(r"(?P<message>[0-9]{1,6})\.(?P<button>[0-9]{1,3})")
_BARE_RE = re.compile(r"[0-9]{1,3}")
#: A label typed as the console shows it, brackets and all: ``[2.1]``.
_BRACKETED_RE = re.compile(r"\[\s*(?P<inner>[^\[\]]*?)\s*\]")


class ConsolePort:
    """:class:`~corecall.conversation.OutputPort` printing to a terminal (or a pipe)."""

    def __init__(self, out: TextIO, *, above_prompt: bool = False) -> None:
        self.out = out
        self._ids = itertools.count(1)
        #: message id -> its buttons' data, for every message that shows buttons now
        self.keyboards: dict[int, list[bytes]] = {}
        self._above_prompt = above_prompt

    def resolve(self, typed: str) -> tuple[tuple[int, bytes] | None, str | None]:
        """``"2.1"``, ``"[2.1]"`` (as shown) or a bare ``"1"`` -> ((message id, button
        data), None), or (None, what to tell the person); (None, None) when it is not a
        button label. A bare number presses a button only while one message shows buttons;
        the answers name only labels that are on screen."""
        bracketed = _BRACKETED_RE.fullmatch(typed.strip())
        inner = bracketed["inner"] if bracketed else typed.strip()
        label = _LABEL_RE.fullmatch(inner)
        if label is not None:
            message, index = int(label["message"]), int(label["button"])
            buttons = self.keyboards.get(message, [])
            if 1 <= index <= len(buttons):
                return (message, buttons[index - 1]), None
            return None, self._no_such_button(inner)
        if _BARE_RE.fullmatch(inner) is None:
            if bracketed is None:
                return None, None
            return None, (
                f"[{inner}] is not a button label: labels look like [2.1] (message 2, "
                "button 1); type 2.1 or [2.1]."
            )
        index = int(inner)
        holders = [m for m, b in sorted(self.keyboards.items()) if 1 <= index <= len(b)]
        if not holders:
            return None, self._no_such_button(inner)
        if len(self.keyboards) > 1:  # never guessed: labels must not change meaning
            labels = [f"[{m}.{index}]" for m in holders]
            listed = ", ".join(labels[:-1]) + " or " + labels[-1] if len(labels) > 1 else labels[0]
            return None, (
                "Several messages show buttons, so a bare number is not enough: type the "
                f"full label, {listed}."
            )
        return (holders[0], self.keyboards[holders[0]][index - 1]), None

    def _no_such_button(self, label: str) -> str:
        on_screen = [
            f"[{m}.{i}]" for m, b in sorted(self.keyboards.items()) for i in range(1, len(b) + 1)
        ]
        if not on_screen:
            return f"There is no button [{label}] on screen: no message shows buttons now."
        return f"There is no button [{label}] on screen. Buttons on screen: {', '.join(on_screen)}."

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int:
        message_id = next(self._ids)
        self._print(f"bot #{message_id}", message_id, text, buttons)
        return message_id

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: Keyboard = NO_BUTTONS
    ) -> None:
        self._print(f"bot #{message_id} (edited)", message_id, text, buttons)

    def notice(self, text: str) -> None:
        self._write(f"bot (notice): {text}\n")

    def _print(self, label: str, message_id: int, text: str, buttons: Keyboard) -> None:
        first, *rest = text.split("\n")
        lines = [f"{label}: {first}", *(INDENT + line for line in rest)]
        flat = [b for row in buttons for b in row]
        if flat:
            for number, button in enumerate(flat, start=1):
                lines.append(f"{INDENT}[{message_id}.{number}] {button.text}")
            self.keyboards[message_id] = [b.data for b in flat]
        else:
            self.keyboards.pop(message_id, None)  # its buttons are gone
        self._write("\n".join(lines) + "\n")

    def _write(self, text: str) -> None:
        if not self._above_prompt:
            self.out.write(text)
            self.out.flush()
            return
        # Interactive: clear the prompt line, print, then redraw the prompt and whatever
        # the person had typed so far (readline keeps it in its buffer).
        typed = _readline_buffer()
        self.out.write("\r\x1b[K" + text + PROMPT + typed)
        self.out.flush()


def _readline_buffer() -> str:
    try:
        import readline
    except ImportError:  # pragma: no cover - platforms without GNU readline
        return ""
    return readline.get_line_buffer()


def _start_reader(
    stream: TextIO, loop: asyncio.AbstractEventLoop, *, prompt: bool = False
) -> asyncio.Queue[str | None]:
    """Read lines in a daemon thread (a blocked read must never keep the process alive).
    With ``prompt`` (a terminal), lines are read with readline's ``input()``: a prompt,
    line editing (arrows, Ctrl-A/E...) and history."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            if prompt:
                while True:
                    try:
                        line = input(PROMPT)
                    except EOFError:
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            else:
                for line in stream:
                    loop.call_soon_threadsafe(queue.put_nowait, line)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="corecall-console-input", daemon=True).start()
    return queue


async def run_console_async(
    app: App,
    user_id: int,
    *,
    stdin: TextIO,
    stdout: TextIO,
    interactive: bool,
    wait: float = DEFAULT_WAIT,
) -> None:
    app.store  # noqa: B018 - open (and migrate) the store before reading input
    # SIGTERM (systemd, kill, a container stop) stops the console as Ctrl-C does: the calls'
    # last states and the plugins' pending work (webhook events) are written first.
    loop, main = asyncio.get_running_loop(), asyncio.current_task()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        if main is not None:
            main.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        await _serve_console(app, user_id, stdin=stdin, stdout=stdout, interactive=interactive,
                             wait=wait)  # fmt: skip
    except asyncio.CancelledError:
        if not terminated:
            raise
        if main is not None:
            main.uncancel()
        log.warning("console stopped by SIGTERM")
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _serve_console(
    app: App, user_id: int, *, stdin: TextIO, stdout: TextIO, interactive: bool, wait: float
) -> None:
    from corecall.telegram.runner import start_calls  # clear errors for an unreachable PBX

    manager = await start_calls(app, "console")
    port = ConsolePort(stdout, above_prompt=interactive)
    log.info("console started as Telegram user %s (%s)", user_id,
             "terminal" if interactive else "scripted")  # fmt: skip
    # A terminal has no edit rate limit: show every state the call goes through.
    conversation = Conversation(app, manager, port=port, edit_interval=0.0)
    user = UserRef(user_id=user_id, chat_id=user_id, private=True)
    try:
        lines = _start_reader(stdin, asyncio.get_running_loop(), prompt=interactive)
        while (line := await lines.get()) is not None:
            text = line.strip()
            if not text:
                continue
            if not interactive:
                stdout.write(f"you: {text}\n")
            button, problem = port.resolve(text)
            if problem is not None:
                port.notice(problem)
            elif button is not None:
                notice = await conversation.handle_button(user, *button)
                if notice:
                    port.notice(notice)
            else:
                await conversation.handle_text(user, text, utcnow())
            if not interactive:
                await conversation.flush_edits(timeout=10)
        if manager.live_calls():
            stdout.write(f"(end of input: waiting up to {wait:.0f} s for live calls to end)\n")
            stdout.flush()
            await manager.wait_all_final(wait)
        await conversation.wait_idle(timeout=5)
    finally:
        await conversation.shutdown(timeout=2, announce=False)
        await manager.stop()


def run_console(
    app: App,
    user_id: int,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    wait: float = DEFAULT_WAIT,
    banner: str | None = None,
) -> None:
    """Run the console until end of input (Ctrl-D), then wait up to ``wait`` seconds for
    live calls to end."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and stdin is sys.stdin
    data_dir = Path(app.config.data_dir)
    log_file = route_logs_away_from(stdout, data_dir)
    history = _load_history(data_dir) if interactive else None
    if banner:
        stdout.write(banner + "\n")
    elif interactive:
        stdout.write(
            f"corecall console as Telegram user {user_id}. Type commands (/help); type a "
            "button's number to press it; Ctrl-D quits.\n"
        )
    if log_file is not None and interactive:
        stdout.write(f"(log messages go to {log_file})\n")
    stdout.flush()
    try:
        asyncio.run(
            run_console_async(
                app, user_id, stdin=stdin, stdout=stdout, interactive=interactive, wait=wait
            )
        )
    finally:
        if history is not None:
            _save_history(history)


def route_logs_away_from(stdout: TextIO, data_dir: Path) -> Path | None:
    """Keep log records out of the conversation.

    When stderr is the same terminal as stdout, the root logger's stream handlers are
    replaced by a file handler on ``<data_dir>/logs/console.log`` (returned); otherwise
    (stderr redirected, or stdout a pipe) logs stay on stderr and None is returned.
    """
    if not _same_terminal(stdout, sys.stderr):
        return None
    path = data_dir / "logs" / "console.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        shown: Path | None = path
    except OSError:
        handler = logging.NullHandler()  # never print into the conversation
        shown = None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, logging.StreamHandler) and not isinstance(old, logging.FileHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return shown


def _same_terminal(a: TextIO, b: TextIO) -> bool:
    try:
        if not (a.isatty() and b.isatty()):
            return False
        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def _load_history(data_dir: Path) -> Path | None:
    try:
        import readline
    except ImportError:  # pragma: no cover
        return None
    path = data_dir / "console_history"
    readline.set_history_length(1000)
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    return path


def _save_history(path: Path) -> None:
    try:
        import readline

        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
        os.chmod(path, 0o600)
    except (ImportError, OSError):
        pass
