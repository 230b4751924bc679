"""What a front end gives the conversation: who is talking, and a way to show messages.

The conversation never imports Telethon or a terminal library. A front end (the Telegram
adapter, the console) turns its input into :class:`UserRef` + text or button data, and
implements :class:`OutputPort` to show what the conversation says.
"""

from __future__ import annotations

from typing import Protocol

import attrs


@attrs.frozen
class UserRef:
    """The person who sent a message or pressed a button, and where to answer.

    ``user_id`` is the numeric Telegram user id (the only identity corecall trusts);
    ``chat_id`` is where replies go; ``private`` is False for groups and channels, where the
    bot refuses to work.
    """

    user_id: int
    chat_id: int
    private: bool = True
    first_name: str = ""


@attrs.frozen
class Button:
    """An inline button: the label people see and the callback data the front end returns."""

    text: str
    data: bytes


#: Rows of buttons, top to bottom. An empty tuple means "no buttons" (and removes them).
Keyboard = tuple[tuple[Button, ...], ...]

NO_BUTTONS: Keyboard = ()


class RateLimited(Exception):
    """The messenger asked us to wait ``seconds`` before the next request (Telegram's
    FloodWait). The conversation sleeps that long, then sends the newest text."""

    def __init__(self, seconds: float):
        super().__init__(f"rate limited for {seconds} s")
        self.seconds = float(seconds)


class MessageGone(Exception):
    """The message can no longer be edited (deleted, too old). Edits to it are dropped."""


class OutputPort(Protocol):
    """Implemented by each front end.

    ``send`` returns the new message's id (used for later edits). ``edit`` replaces a
    message's text and buttons; editing to identical content must not fail. Both raise
    :class:`RateLimited` when the messenger says to slow down and :class:`MessageGone` (edit
    only) when the message can't be edited any more. Text is plain: no markup is parsed.
    """

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int: ...

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: Keyboard = NO_BUTTONS
    ) -> None: ...
