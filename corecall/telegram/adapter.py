"""The thin Telethon adapter: Telegram updates in, conversation messages out.

Everything the bot decides lives in :class:`~corecall.conversation.Conversation`; this module
only translates. :func:`attach_handlers` is the one entry point: it needs a
``TelegramClient`` but never logs in or connects, so tests and embedders can drive the bot
with any client (the test suite uses a real ``TelegramClient`` whose network sender is
replaced).
"""

from __future__ import annotations

import logging

from telethon import Button as TelethonButton
from telethon import TelegramClient, errors, events, types

from corecall.conversation import Conversation, Keyboard, MessageGone, RateLimited, UserRef
from corecall.conversation.limits import fit_toast

log = logging.getLogger(__name__)


def _markup(buttons: Keyboard):
    if not buttons:
        return None
    return [[TelethonButton.inline(b.text, b.data) for b in row] for row in buttons]


class TelegramPort:
    """:class:`~corecall.conversation.OutputPort` over a ``TelegramClient``.

    Texts are sent as plain text (``parse_mode=None``), so nothing in a name or a number is
    ever read as Markdown. FloodWait becomes :class:`RateLimited` for the conversation to
    honour: it then waits and sends only the newest status (see ``EditScheduler``).
    """

    def __init__(self, client: TelegramClient) -> None:
        self.client = client
        self._peers: dict[int, types.TypeInputPeer] = {}

    def remember(self, chat_id: int, input_peer) -> None:
        """Keep the chat's input peer from an incoming update, so replies need no lookup."""
        if input_peer is not None:
            self._peers[chat_id] = input_peer

    def _peer(self, chat_id: int):
        return self._peers.get(chat_id, chat_id)

    async def send(self, chat_id: int, text: str, buttons: Keyboard = ()) -> int:
        try:
            message = await self.client.send_message(
                self._peer(chat_id), text, buttons=_markup(buttons), parse_mode=None,
                link_preview=False,
            )  # fmt: skip
        except errors.FloodWaitError as exc:
            raise RateLimited(exc.seconds) from None
        return message.id

    async def edit(self, chat_id: int, message_id: int, text: str, buttons: Keyboard = ()) -> None:
        try:
            await self.client.edit_message(
                self._peer(chat_id), message_id, text, buttons=_markup(buttons), parse_mode=None,
                link_preview=False,
            )  # fmt: skip
        except errors.MessageNotModifiedError:
            return  # already showing exactly this
        except errors.FloodWaitError as exc:
            raise RateLimited(exc.seconds) from None
        except (
            errors.MessageIdInvalidError,
            errors.MessageEditTimeExpiredError,
            errors.MessageAuthorRequiredError,
        ) as exc:
            raise MessageGone(str(exc)) from None


def attach_handlers(client: TelegramClient, conversation: Conversation) -> None:
    """Attach corecall's handlers to ``client`` and bind ``conversation`` to it.

    Adds two event handlers: incoming messages (commands, in private chats only; groups get a
    one-line refusal to commands and are otherwise ignored) and inline-button presses. Does
    not connect or log in: start the client yourself (``corecall run`` does it in
    :func:`corecall.telegram.run_bot`).

    FloodWait: with ``client.flood_sleep_threshold = 0`` every FloodWait reaches corecall,
    which waits as told and coalesces status edits meanwhile (what ``corecall run`` does after
    logging in); with Telethon's default threshold, Telethon itself sleeps through short waits,
    which is also safe.
    """
    port = TelegramPort(client)
    conversation.bind(port)

    async def on_message(event: events.NewMessage.Event) -> None:
        message = event.message
        sender_id = event.sender_id
        if message.out or sender_id is None or sender_id <= 0:
            return  # our own messages, anonymous admins, channels
        sender = event.sender
        if getattr(sender, "bot", False):
            return  # never talk to other bots
        user = UserRef(
            user_id=sender_id,
            chat_id=event.chat_id,
            private=event.is_private,
            first_name=getattr(sender, "first_name", "") or "",
        )
        port.remember(event.chat_id, event.input_chat)
        text = message.message or ""
        if conversation.bot_username is None and text.startswith("/"):
            head = text.split(maxsplit=1)[0] if text.strip() else ""
            if "@" in head:  # addressed: we must know our own username to tell whose it is
                await _learn_username(client, conversation)
        await conversation.handle_text(user, text, message.date)

    async def on_button(event: events.CallbackQuery.Event) -> None:
        if not isinstance(event.query, types.UpdateBotCallbackQuery):
            await _answer(event, None)  # inline-mode messages: corecall never makes them
            return
        notice = None
        try:
            user = UserRef(user_id=event.sender_id, chat_id=event.chat_id, private=event.is_private)
            port.remember(event.chat_id, event.input_chat)
            notice = await conversation.handle_button(user, event.message_id, event.data)
        finally:
            await _answer(event, notice)  # always: the presser's client shows a spinner

    client.add_event_handler(on_message, events.NewMessage(incoming=True))
    client.add_event_handler(on_button, events.CallbackQuery())


async def _learn_username(client: TelegramClient, conversation: Conversation) -> None:
    try:
        me = await client.get_me()
    except Exception as exc:  # unknown username: addressed commands stay ignored
        log.warning("could not read the bot's own username: %s", exc)
        return
    conversation.bot_username = getattr(me, "username", None) or ""


async def _answer(event: events.CallbackQuery.Event, notice: str | None) -> None:
    try:
        await event.answer(fit_toast(notice) or None)
    except (errors.QueryIdInvalidError, errors.FloodWaitError) as exc:
        # Too old, or Telegram says slow down: a missing toast is harmless.
        log.info("could not answer a button press: %s", exc)
