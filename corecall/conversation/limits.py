"""Telegram's limits on what a bot sends, and the seam that keeps every output within them.

Telegram refuses a message over 4,096 characters (``MESSAGE_TOO_LONG``), a callback answer
(toast) over 200, callback data over 64 bytes (``BUTTON_DATA_INVALID``), an empty message
(``MESSAGE_EMPTY``) and more than 100 inline buttons (``REPLY_MARKUP_TOO_LONG``); lengths are
counted in UTF-16 code units (an emoji outside the BMP counts twice). Sources: Telegram Bot
API, ``sendMessage`` / ``answerCallbackQuery`` / ``InlineKeyboardButton``.

Templates are built from bounded values (:mod:`corecall.fields`), so they fit by
construction (``tests/conversation/test_output_limits.py`` renders every template with
maximal values). :class:`LimitedPort` is the last line, between the conversation and any
front end: an output that would still be refused is cut to fit and logged as an error,
rather than turning a done action into "Sorry, something went wrong".
"""

from __future__ import annotations

import logging

from corecall.conversation.ports import NO_BUTTONS, Button, Keyboard, OutputPort

log = logging.getLogger(__name__)

#: A message's text, in UTF-16 code units.
MESSAGE_MAX = 4096
#: A callback answer (toast), in UTF-16 code units.
TOAST_MAX = 200
#: Callback data, in bytes.
CALLBACK_DATA_MAX_BYTES = 64
#: Inline buttons on one message.
KEYBOARD_MAX_BUTTONS = 100
#: Buttons on one row.
ROW_MAX_BUTTONS = 8
#: A button's label. Telegram documents no figure; labels longer than this are cut off on
#: phones anyway, so corecall keeps its own labels within it (UTF-16 code units).
BUTTON_TEXT_MAX = 64

ELLIPSIS = "…"
#: Long lists (``/agents``) are split into messages of at most this many UTF-16 code units.
LIST_MESSAGE_MAX = MESSAGE_MAX - 96


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 code units (ending in "…" when cut), never
    splitting a surrogate pair."""
    if utf16_len(text) <= limit:
        return text
    budget = limit - utf16_len(ELLIPSIS)
    out, used = [], 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > budget:
            break
        out.append(char)
        used += width
    return "".join(out) + ELLIPSIS


def fits_message(text: str) -> bool:
    return 0 < utf16_len(text.strip()) and utf16_len(text) <= MESSAGE_MAX


def fits_keyboard(buttons: Keyboard) -> bool:
    count = sum(len(row) for row in buttons)
    return count <= KEYBOARD_MAX_BUTTONS and all(
        0 < len(row) <= ROW_MAX_BUTTONS
        and all(
            0 < utf16_len(b.text) <= BUTTON_TEXT_MAX and 0 < len(b.data) <= CALLBACK_DATA_MAX_BYTES
            for b in row
        )
        for row in buttons
    )


def fit_message(text: str) -> str:
    if fits_message(text):
        return text
    log.error("an outgoing message of %d UTF-16 units was cut to fit Telegram", utf16_len(text))
    return fit(text, MESSAGE_MAX) if text.strip() else ELLIPSIS


def fit_toast(text: str | None) -> str | None:
    if text is None or utf16_len(text) <= TOAST_MAX:
        return text
    log.error("a toast of %d UTF-16 units was cut to fit Telegram", utf16_len(text))
    return fit(text, TOAST_MAX)


def fit_keyboard(buttons: Keyboard) -> Keyboard:
    if fits_keyboard(buttons):
        return buttons
    log.error("an inline keyboard outside Telegram's limits was trimmed")
    rows = []
    count = 0
    for row in buttons:
        kept = tuple(
            Button(fit(b.text, BUTTON_TEXT_MAX) or ELLIPSIS, b.data)
            for b in row[:ROW_MAX_BUTTONS]
            if 0 < len(b.data) <= CALLBACK_DATA_MAX_BYTES
        )[: KEYBOARD_MAX_BUTTONS - count]
        if kept:
            rows.append(kept)
            count += len(kept)
    return tuple(rows)


class LimitedPort:
    """Wraps a front end's :class:`OutputPort`: every text and keyboard goes out within
    Telegram's limits (see the module docstring)."""

    def __init__(self, port: OutputPort) -> None:
        self.port = port

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int:
        return await self.port.send(chat_id, fit_message(text), fit_keyboard(buttons))

    async def edit(
        self, chat_id: int, message_id: int, text: str, buttons: Keyboard = NO_BUTTONS
    ) -> None:
        await self.port.edit(chat_id, message_id, fit_message(text), fit_keyboard(buttons))


def split_message(text: str, limit: int = LIST_MESSAGE_MAX) -> list[str]:
    """``text`` split on line breaks into messages of at most ``limit`` UTF-16 code units
    (a single longer line is cut to fit)."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = fit(line, limit)
        if current and utf16_len(current) + 1 + utf16_len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks
