"""``corecall console --as TELEGRAM_ID``: the bot's conversation in a terminal.

The same :class:`~corecall.conversation.Conversation` as the Telegram bot, against the
configured store and trunk drivers, as if the given Telegram user were typing. Buttons are
shown numbered (``[1] ✅ Yes, Switch Route``) and pressed by typing the number; the numbers
refer to the buttons printed last.

Scriptable: when stdin is not a terminal, it reads one input per line, echoes it, prints
every reply and every edit, and at the end of input waits (bounded) for live calls to end
before exiting::

    printf '/settings\\n1\\n2\\n1\\n/call +12125550123\\n' | corecall console --as 123
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from typing import TextIO

from corecall.app import App
from corecall.conversation import NO_BUTTONS, Conversation, Keyboard, UserRef
from corecall.domain import utcnow

#: Seconds to wait at the end of input for live calls to end.
DEFAULT_WAIT = 60.0
INDENT = "    "


class ConsolePort:
    """:class:`~corecall.conversation.OutputPort` printing to a terminal (or a pipe)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._ids = itertools.count(1)
        #: number typed -> (message id, button data), for the buttons printed last
        self.keyboard: dict[int, tuple[int, bytes]] = {}
        self._keyboard_message: int | None = None

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int:
        message_id = next(self._ids)
        self._print(f"bot #{message_id}", message_id, text, buttons)
        return message_id

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: Keyboard = NO_BUTTONS
    ) -> None:
        self._print(f"bot #{message_id} (edited)", message_id, text, buttons)

    def notice(self, text: str) -> None:
        self.out.write(f"bot (notice): {text}\n")
        self.out.flush()

    def _print(self, label: str, message_id: int, text: str, buttons: Keyboard) -> None:
        first, *rest = text.split("\n")
        lines = [f"{label}: {first}", *(INDENT + line for line in rest)]
        if buttons:
            numbered = {}
            for number, button in enumerate((b for row in buttons for b in row), start=1):
                lines.append(f"{INDENT}[{number}] {button.text}")
                numbered[number] = (message_id, button.data)
            self.keyboard, self._keyboard_message = numbered, message_id
        elif message_id == self._keyboard_message:
            self.keyboard, self._keyboard_message = {}, None  # its buttons are gone
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()


def _start_reader(stream: TextIO, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Read lines in a daemon thread (a blocked read must never keep the process alive)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
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
    from corecall.telegram.runner import start_calls  # clear errors for an unreachable PBX

    app.store  # noqa: B018 - open (and migrate) the store before reading input
    manager = await start_calls(app)
    port = ConsolePort(stdout)
    # A terminal has no edit rate limit: show every state the call goes through.
    conversation = Conversation(app, manager, port=port, edit_interval=0.0)
    user = UserRef(user_id=user_id, chat_id=user_id, private=True)
    try:
        lines = _start_reader(stdin, asyncio.get_running_loop())
        while (line := await lines.get()) is not None:
            text = line.strip()
            if not text:
                continue
            if not interactive:
                stdout.write(f"you: {text}\n")
            if text.isdigit() and len(text) <= 3:
                button = port.keyboard.get(int(text))
                if button is None:
                    port.notice(f"There is no button [{text}] on screen.")
                else:
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
    interactive = stdin.isatty()
    if banner:
        stdout.write(banner + "\n")
    elif interactive:
        stdout.write(
            f"corecall console as Telegram user {user_id}. Type commands (/help); type a "
            "button's number to press it; Ctrl-D quits.\n"
        )
    stdout.flush()
    asyncio.run(
        run_console_async(
            app, user_id, stdin=stdin, stdout=stdout, interactive=interactive, wait=wait
        )
    )
