"""corecall's offline Telegram harness: a REAL ``telethon.TelegramClient``, no network.

The seam is the client's MTProto sender (``client._sender``): :class:`FakeSender` answers
every request with a plausible Telegram result (or an error a test asks for) and records it.
Everything above it is Telethon's own code: request resolution, FloodWait bookkeeping,
entity caching, ``send_message``/``edit_message``, the update state machine (pts), event
builders and handler dispatch. Updates go in as real TL objects (``types.Updates``), so the
bot under test is driven exactly as Telegram would drive it. ``connect()``/``start()`` are
never called and no socket is ever opened.

Gotchas this harness takes care of (found in Telethon 1.45):

* Results of our own requests carry pts too: they are fed back into the update queue (like
  ``MTProtoSender._store_own_updates``) or the next incoming update looks like a gap.
* The sender of every injected update is included in ``Updates.users``; otherwise Telethon
  tries a network lookup (which bots can't do).
* ``_dispatch_update`` logs handler exceptions instead of raising them: :meth:`feed`
  collects those logs (and corecall's own error logs) and fails the test with them.
* Telegram's limits are enforced like Telegram does, whatever a test's responder says
  (:meth:`OfflineTelegram.check_limits`): a text over 4,096 UTF-16 code units is
  ``MESSAGE_TOO_LONG``, an empty one ``MESSAGE_EMPTY``, a toast over 200 ``MESSAGE_TOO_LONG``,
  callback data over 64 bytes ``BUTTON_DATA_INVALID``, an empty button label
  ``BUTTON_TEXT_INVALID``, more than 100 buttons ``REPLY_MARKUP_TOO_LONG``.
* FloodWait: the client is built with ``flood_sleep_threshold=0`` so FloodWait errors reach
  corecall (as in ``corecall run``) instead of Telethon sleeping through them.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import logging
from collections.abc import Callable

from telethon import TelegramClient, errors, utils
from telethon._updates.messagebox import GapError
from telethon.sessions import MemorySession
from telethon.tl import custom, functions, types

UTC = _dt.UTC
_names = itertools.count()

#: Background tasks that belong to corecall (status following, edit workers, the call
#: writer, simulated calls). :meth:`OfflineTelegram.feed` does not wait for them.
BACKGROUND_PREFIXES = ("corecall-", "simulated-call-")


def now() -> _dt.datetime:
    return _dt.datetime.now(tz=UTC).replace(microsecond=0)


class ErrorLog(logging.Handler):
    """Collects ERROR records (handler exceptions Telethon swallows, corecall's own)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        records, self.records = self.records, []
        return records


class FakeSender:
    """Stands in for ``telethon.network.MTProtoSender``: records requests, answers them."""

    _OWN_UPDATES = (
        types.Updates, types.UpdatesCombined, types.UpdateShort, types.UpdateShortSentMessage,
        types.UpdateShortMessage, types.UpdateShortChatMessage,
    )  # fmt: skip

    def __init__(
        self, respond: Callable, updates_queue: asyncio.Queue, *, keep_history: bool = True
    ) -> None:
        self._respond = respond
        self._updates_queue = updates_queue
        self._keep = keep_history
        self.requests: list = []
        self.results: list = []  # what each request got (None when it raised)
        self.count = 0  # requests made (kept or not)
        self._connected = True
        self.disconnected = asyncio.get_running_loop().create_future()

    def is_connected(self) -> bool:
        return self._connected

    async def disconnect(self) -> None:
        self._connected = False
        if not self.disconnected.done():
            self.disconnected.set_result(None)

    def send(self, request, ordered=False):
        if isinstance(request, list):
            return [self.send(r) for r in request]
        bytes(request)  # serialise it as the real sender would: malformed TL fails here
        self.count += 1
        if self._keep:
            self.requests.append(request)
        future = asyncio.get_running_loop().create_future()
        try:
            result = self._respond(request)
        except Exception as exc:  # an RPC error a test asked for
            if self._keep:
                self.results.append(None)
            future.set_exception(exc)
            return future
        if self._keep:
            self.results.append(result)
        if isinstance(result, self._OWN_UPDATES):
            result._self_outgoing = True
            self._updates_queue.put_nowait(result)
        future.set_result(result)
        return future


class OfflineTelegram(TelegramClient):
    """A real TelegramClient, logged in as a bot, talking to :class:`FakeSender`."""

    def __init__(self, bot_id: int = 7_000_000_001, *, keep_history: bool = True, **kwargs) -> None:
        """``keep_history=False`` keeps no request or answer (only :attr:`request_count`):
        Telegram's servers are not in the bot's process, so a benchmark of the bot's memory
        must not count the fake server's log of every request."""
        self._log_name = f"corecall_offline_tg.{next(_names)}"
        kwargs.setdefault("flood_sleep_threshold", 0)
        super().__init__(
            MemorySession(), api_id=1, api_hash="0" * 32, base_logger=self._log_name, **kwargs
        )
        self._sender = FakeSender(
            self._respond, self._updates_queue, keep_history=keep_history
        )  # the seam
        self.me = types.User(
            id=bot_id, access_hash=0xB07, is_self=True, bot=True, first_name="corecall",
            username="corecall_bot",
        )  # fmt: skip
        self._mb_entity_cache.set_self_user(bot_id, True, 0xB07)
        self._authorized = True
        self.known_users: dict[int, types.User] = {bot_id: self.me}
        self._keep_history = keep_history
        self._compact_users: dict[int, tuple[str, bool]] = {}  # without keep_history
        #: {request type: fn(request) -> result or raise}; overrides the defaults below
        self.responders: dict[type, Callable] = {}
        self._pts = itertools.count(1)
        self._ids = itertools.count(100)
        self.errors = ErrorLog()
        logging.getLogger(f"{self._log_name}.telethon.client.updates").addHandler(self.errors)
        logging.getLogger("corecall").addHandler(self.errors)

    @property
    def requests(self) -> list:
        return self._sender.requests

    @property
    def request_count(self) -> int:
        """Requests made so far (also without ``keep_history``)."""
        return self._sender.count

    # ------------------------------------------------------------------ Telegram's answers
    #: Telegram's limits (Bot API: sendMessage, answerCallbackQuery, InlineKeyboardButton).
    MESSAGE_MAX, TOAST_MAX, DATA_MAX_BYTES, MAX_BUTTONS = 4096, 200, 64, 100

    @staticmethod
    def _utf16(text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    def check_limits(self, request) -> None:
        """Raise the RPC error Telegram answers a request outside its limits with."""
        messages = functions.messages
        if isinstance(request, messages.SendMessageRequest | messages.EditMessageRequest):
            text = request.message or ""
            if isinstance(request, messages.SendMessageRequest) and not text.strip():
                raise errors.MessageEmptyError(request)
            if self._utf16(text) > self.MESSAGE_MAX:
                raise errors.MessageTooLongError(request)
            if request.reply_markup is not None:
                labels = [label for row in buttons_of(request) for label, _data in row]
                datas = [data for row in buttons_of(request) for _label, data in row]
                if len(labels) > self.MAX_BUTTONS:
                    raise errors.ReplyMarkupTooLongError(request)
                if any(not label.strip() for label in labels):
                    raise errors.ButtonTextInvalidError(request)
                if any(not data or len(data) > self.DATA_MAX_BYTES for data in datas):
                    raise errors.ButtonDataInvalidError(request)
        if isinstance(request, messages.SetBotCallbackAnswerRequest) and request.message:
            if self._utf16(request.message) > self.TOAST_MAX:
                raise errors.MessageTooLongError(request)

    def _respond(self, request):
        self.check_limits(request)
        if type(request) in self.responders:
            return self.responders[type(request)](request)
        return self.default_response(request)

    def default_response(self, request):
        """What Telegram normally answers (responders can fall back to it)."""
        if isinstance(request, functions.messages.SendMessageRequest):
            return types.UpdateShortSentMessage(
                id=next(self._ids), pts=next(self._pts), pts_count=1, date=now(), out=True
            )
        if isinstance(request, functions.messages.EditMessageRequest):
            message = types.Message(
                id=request.id, peer_id=utils.get_peer(request.peer), date=now(),
                message=request.message or "", out=True, reply_markup=request.reply_markup,
                edit_date=now(),
            )  # fmt: skip
            return types.Updates(
                [types.UpdateEditMessage(message, next(self._pts), 1)],
                users=[], chats=[], date=now(), seq=0,
            )  # fmt: skip
        if isinstance(request, functions.messages.SetBotCallbackAnswerRequest):
            return True
        if isinstance(request, functions.users.GetUsersRequest):
            found = []
            for input_user in request.id:
                uid = (
                    self.me.id if isinstance(input_user, types.InputUserSelf)
                    else input_user.user_id
                )  # fmt: skip
                found.append(self._known_user(uid) or types.UserEmpty(uid))
            return found
        if isinstance(request, functions.messages.GetDialogsRequest):
            raise errors.BotMethodInvalidError(request)  # what Telegram tells bots
        raise NotImplementedError(f"the offline harness can't answer {type(request).__name__}")

    # ------------------------------------------------------------------ building updates
    def user(self, user_id: int, first_name: str = "Alice", *, bot: bool = False) -> types.User:
        user = types.User(id=user_id, access_hash=user_id * 7 + 1, first_name=first_name, bot=bot)
        if self._keep_history:
            self.known_users[user_id] = user
        else:  # Telegram's user table is not the bot's memory: keep only what rebuilds it
            self._compact_users[user_id] = (first_name, bot)
        return user

    def _known_user(self, user_id: int) -> types.User | None:
        if user_id in self._compact_users:
            first_name, bot = self._compact_users[user_id]
            return types.User(id=user_id, access_hash=user_id * 7 + 1, first_name=first_name,
                              bot=bot)  # fmt: skip
        return self.known_users.get(user_id)

    def _updates(self, update, user: types.User, chats=()) -> types.Updates:
        return types.Updates([update], users=[user], chats=list(chats), date=now(), seq=0)

    def private_text(
        self, user: types.User, text: str, *, date: _dt.datetime | None = None
    ) -> types.Updates:
        message = types.Message(
            id=next(self._ids), peer_id=types.PeerUser(user.id), date=date or now(), message=text
        )
        return self._updates(types.UpdateNewMessage(message, next(self._pts), 1), user)

    def group_text(self, user: types.User, chat_id: int, text: str) -> types.Updates:
        chat = types.Chat(
            id=chat_id, title="Sales floor", photo=types.ChatPhotoEmpty(), participants_count=5,
            date=now(), version=1,
        )  # fmt: skip
        message = types.Message(
            id=next(self._ids), peer_id=types.PeerChat(chat_id), date=now(), message=text,
            from_id=types.PeerUser(user.id),
        )  # fmt: skip
        return self._updates(types.UpdateNewMessage(message, next(self._pts), 1), user, [chat])

    def button_press(
        self, user: types.User, message_id: int, data: bytes, *, peer=None
    ) -> types.Updates:
        update = types.UpdateBotCallbackQuery(
            query_id=next(self._ids) * 1_000_003, user_id=user.id,
            peer=peer or types.PeerUser(user.id), msg_id=message_id, chat_instance=-42, data=data,
        )  # fmt: skip
        return self._updates(update, user)

    # ------------------------------------------------------------------ driving
    async def drain_updates(self) -> None:
        """Process every update waiting in Telethon's queue (the answers to the bot's own
        sends and edits), as Telethon's update loop does all along in production."""
        while not self._updates_queue.empty():
            item = self._updates_queue.get_nowait()
            processed: list = []
            try:
                users, chats = self._message_box.process_updates(
                    item, self._mb_entity_cache, processed
                )
            except GapError:
                raise AssertionError(f"pts gap while injecting {item!r}") from None
            for update in await self._preprocess_updates(processed, users, chats):
                await self._dispatch_update(update)

    async def feed(self, updates: types.Updates, timeout: float = 5.0) -> None:
        """Hand ``updates`` to Telethon as if Telegram sent them and return once every
        handler finished (corecall's own background work goes on). Fails on any error
        logged meanwhile, including handler exceptions Telethon would swallow."""
        before = asyncio.all_tasks()
        me = asyncio.current_task()
        self._updates_queue.put_nowait(updates)
        while True:
            await self.drain_updates()
            spawned = [
                t for t in asyncio.all_tasks()
                if t not in before and t is not me and not t.done()
                and not t.get_name().startswith(BACKGROUND_PREFIXES)
            ]  # fmt: skip
            if not spawned and self._updates_queue.empty():
                break
            if spawned:
                _done, still = await asyncio.wait(spawned, timeout=timeout)
                if still:
                    raise TimeoutError(f"{len(still)} task(s) started by a handler never ended")
        if self._message_box.possible_gaps:
            raise AssertionError(f"updates parked as gaps: {self._message_box.possible_gaps}")
        self.raise_errors()

    def raise_errors(self) -> None:
        records = self.errors.take()
        if records:
            first = records[0]
            cause = first.exc_info[1] if first.exc_info else None
            raise AssertionError(f"error logged: {first.getMessage()}") from cause

    async def aclose(self) -> None:
        logging.getLogger(f"{self._log_name}.telethon.client.updates").removeHandler(self.errors)
        logging.getLogger("corecall").removeHandler(self.errors)
        await self._sender.disconnect()

    # ------------------------------------------------------------------ reading requests
    def message_id(self, request) -> int:
        """The id Telegram gave the message a SendMessageRequest created."""
        index = next(i for i, r in enumerate(self.requests) if r is request)
        return self._sender.results[index].id

    def of_type(self, kind: type) -> list:
        return [r for r in self.requests if isinstance(r, kind)]

    def sent(self) -> list[functions.messages.SendMessageRequest]:
        return self.of_type(functions.messages.SendMessageRequest)

    def edits(self) -> list[functions.messages.EditMessageRequest]:
        return self.of_type(functions.messages.EditMessageRequest)

    def answers(self) -> list[functions.messages.SetBotCallbackAnswerRequest]:
        return self.of_type(functions.messages.SetBotCallbackAnswerRequest)


def buttons_of(request) -> list[list[tuple[str, bytes]]]:
    """``[[(label, data), ...], ...]`` of a request's inline keyboard ([] for none), read
    through Telethon's own MessageButton (robust to TL layer changes)."""
    markup = request.reply_markup
    if markup is None:
        return []
    assert isinstance(markup, types.ReplyInlineMarkup), markup
    return [
        [(b.text, b.data) for b in (custom.MessageButton(None, raw, None, None, 0)
                                    for raw in row.buttons)]
        for row in markup.rows
    ]  # fmt: skip


def data_of(request, label: str) -> bytes:
    """The callback data of the button labelled ``label`` (menus carry fresh tokens, so
    tests read the data from the message like a person's client does)."""
    found = [data for row in buttons_of(request) for text, data in row if text == label]
    assert len(found) == 1, (label, buttons_of(request))
    return found[0]


def labels_of(request) -> list[str]:
    return [label for row in buttons_of(request) for label, _data in row]
