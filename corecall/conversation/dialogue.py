"""The bot's dialogue, independent of any messenger.

:class:`Conversation` turns what a person typed or pressed into actions (through
:class:`~corecall.calls.CallManager` and :class:`~corecall.agents.AgentAdmin`) and into
messages shown through the front end's :class:`~corecall.conversation.ports.OutputPort`.
It checks what every input needs (private chat, not shutting down, button data well formed
and made for the presser) and hands each command and button to the part that owns it:
:mod:`~corecall.conversation.agent_commands`, :mod:`~corecall.conversation.admin_commands`,
:mod:`~corecall.conversation.call_status` (see :mod:`corecall.conversation.router`).

Rules it keeps for every front end:

* Authorization is re-read from the store on every message and every button press; super
  admins are the numeric ids in ``[bot] super_admins``.
* Commands match the whole text (``/call 123abc`` is the command ``call`` with the argument
  ``123abc``, which the number policy then refuses); nothing is matched by prefix.
* Button data is parsed strictly (:mod:`corecall.conversation.callbacks`) and acted on only for
  the user it was made for.
* A ``/call`` older than ``[bot] max_command_age`` when it arrives is answered "expired" and
  nothing is dialed (Telegram replays missed updates after downtime).
* Private chats only.
* Every call gets ONE status message, edited as the call moves, coalesced per chat by
  :class:`~corecall.conversation.edits.EditScheduler`; the final state is always shown.
* Store calls run off the event loop, on the application's one store thread
  (:meth:`~corecall.app.App.run_in_store`).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import re
import time
from collections.abc import Awaitable, Callable

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.calls import CallManager
from corecall.conversation import callbacks as cb
from corecall.conversation import limits, texts
from corecall.conversation.admin_commands import AdminCommands
from corecall.conversation.agent_commands import AgentCommands
from corecall.conversation.call_status import CallStatus
from corecall.conversation.edits import EditScheduler
from corecall.conversation.limits import LimitedPort
from corecall.conversation.live_view import LiveViews
from corecall.conversation.menus import LiveMenu, MenuBook
from corecall.conversation.ports import (
    NO_BUTTONS,
    Keyboard,
    OutputPort,
    RateLimited,
    UserRef,
)
from corecall.conversation.router import ButtonHandler, CommandHandler, Router
from corecall.domain import Agent, utcnow
from corecall.errors import StoreError

log = logging.getLogger(__name__)

#: ``/name``, an optional ``@botname`` (clients add it in groups), then the arguments.
COMMAND_RE = re.compile(
    r"/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>[A-Za-z0-9_]{1,64}))?(?:\s+(?P<args>.+))?", re.S
)
#: The first word of a message that looks like a command addressed to a bot: ``/cmd@bot``.
_ADDRESSED_RE = re.compile(
    r"(?P<command>/[A-Za-z0-9_]{1,32})@(?P<bot>[A-Za-z0-9_]{1,64})(?P<end>\s|$)"
)


def _without_bot(match: re.Match[str]) -> str:
    """``/revoke@OtherBot 501`` -> ``/revoke 501``: the command as typed, to send to us."""
    return match["command"] + match["end"]


#: The plugin that checks the do-not-call list before calls (the list is core data).
DNC_PLUGIN = "policy_dnc"

#: Seconds of FloodWait a message may wait out before it is given up. Telegram asks for a
#: few seconds in a storm and rarely for minutes; a status message or a reply is only
#: dropped past this (found by bench/soak.py: 5 attempts lost status messages in a storm).
SEND_PATIENCE = 300.0


class Conversation:
    """One bot's dialogue. Bind an output port (the front end) before handling input."""

    def __init__(
        self,
        app: App,
        calls: CallManager,
        *,
        port: OutputPort | None = None,
        edit_interval: float = 1.0,
        ringing_settle: float | None = None,
        clock: Callable[[], _dt.datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.calls = calls
        self.admin = AgentAdmin(app)
        self.edit_interval = edit_interval
        #: Seconds the "your phone is ringing" status waits before it is shown: agents pick
        #: up within seconds, and the next status ("press 1" or "dialing") then replaces it
        #: unsent, one Telegram request fewer per call (issue 11). Ringing that lasts longer
        #: is shown. Default: two edit intervals (2 s).
        self.ringing_settle = 2 * edit_interval if ringing_settle is None else ringing_settle
        self.sleep = sleep
        self.clock = clock
        self.monotonic = monotonic
        self._port: OutputPort | None = None
        self._edits: EditScheduler | None = None
        self.menus = MenuBook()
        self.accepting = True
        #: Our bot's username (without @), set by the front end once known. Commands
        #: addressed to another bot (``/call@OtherBot``) are never acted on.
        self.bot_username: str | None = None
        #: The parts of the dialogue, one job each (corecall.conversation.router); each
        #: command and button action belongs to exactly one.
        self.call_status = CallStatus(self)
        self.routers: tuple[Router, ...] = (
            AgentCommands(self),
            AdminCommands(self),
            self.call_status,
        )
        self._commands: dict[str, CommandHandler] = {}
        self._buttons: dict[str, ButtonHandler] = {}
        for router in self.routers:
            commands, buttons = router.commands(), router.buttons()
            clash = (commands.keys() & self._commands.keys()) | (
                buttons.keys() & self._buttons.keys()
            )
            if clash:
                raise RuntimeError(f"{type(router).__name__} claims {sorted(clash)} a second time")
            self._commands.update(commands)
            self._buttons.update(buttons)
        self.live_views = LiveViews(self)
        if port is not None:
            self.bind(port)

    # ------------------------------------------------------------------ wiring
    def bind(self, port: OutputPort) -> None:
        """Attach the front end's output. Done once."""
        if self._port is not None:
            raise RuntimeError("this Conversation is already bound to a front end")
        # Every text, keyboard and toast leaves within Telegram's limits (conversation.limits).
        self._port = LimitedPort(port)
        plugins = self.app.plugins
        self._edits = EditScheduler(
            self._port, min_interval=self.edit_interval, clock=self.monotonic, sleep=self.sleep,
            on_sent=plugins.notify_chat_edit_sent, on_rate_limited=plugins.notify_chat_rate_limited,
        )  # fmt: skip

    @property
    def is_bound(self) -> bool:
        return self._edits is not None

    @property
    def edits(self) -> EditScheduler:
        if self._edits is None:
            raise RuntimeError("Conversation.bind(port) was not called")
        return self._edits

    @property
    def max_command_age(self) -> float:
        return self.app.config.bot.max_command_age

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.app.config.bot.super_admins

    # ------------------------------------------------------------------ lifecycle
    async def flush_edits(self, timeout: float | None = None) -> bool:
        """Wait until every scheduled edit was delivered."""
        return await self.edits.flush(timeout)

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every followed call reached its final state and it was shown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not await self.call_status.wait_idle(timeout):
            return False
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await self.edits.flush(remaining)

    async def shutdown(self, timeout: float = 5.0, *, announce: bool = True) -> None:
        """Stop intake and status following. With ``announce``, each live call's status
        message says the bot is restarting and the call goes on (used by ``corecall run``:
        calls stay up in Asterisk)."""
        self.accepting = False
        await self.live_views.close_all(timeout)
        await self.call_status.stop(timeout, announce=announce)
        if self._edits is None:
            return
        await self._edits.flush(timeout)
        await self._edits.close()

    # ------------------------------------------------------------------ input: text
    async def handle_text(
        self, user: UserRef, text: str, sent_at: _dt.datetime | None = None
    ) -> None:
        """Handle one message. ``sent_at`` is when the person sent it (for expiry)."""
        try:
            await self._handle_text(user, text or "", sent_at)
        except StoreError as exc:
            # The database is down or locked (seen in bench/soak.py): say so, not "a bug".
            log.warning("store unavailable while handling a message from %s: %s",
                      user.user_id, exc)  # fmt: skip
            await self.reply(user, texts.STORE_UNAVAILABLE)
        except Exception:
            log.exception("failed to handle a message from %s", user.user_id)
            await self.reply(user, texts.INTERNAL_ERROR)

    def addressed_elsewhere(self, text: str) -> str | None:
        """The other bot's name when ``text`` is ``/cmd@OtherBot ...``, else None.

        Telegram clients add ``@botname`` to commands in groups, and people paste them into
        private chats: only ``/cmd`` and ``/cmd@<our username>`` (any case) are ours. While
        our username is unknown, every addressed command is treated as someone else's.
        """
        match = _ADDRESSED_RE.match(text)
        if match is None:
            return None
        bot = match["bot"]
        if self.bot_username and bot.lower() == self.bot_username.lstrip("@").lower():
            return None
        return bot

    async def _handle_text(self, user: UserRef, text: str, sent_at: _dt.datetime | None) -> None:
        text = text.strip()
        other_bot = self.addressed_elsewhere(text)
        if other_bot is not None:
            if user.private:  # in groups: silence, it is another bot's conversation
                resend = _ADDRESSED_RE.sub(_without_bot, text, count=1)
                reply = texts.addressed_to_other_bot(other_bot, self.bot_username, resend)
                await self.reply(user, reply)
            log.info("ignored a command addressed to @%s", other_bot)
            return
        if not user.private:
            # Groups: answer commands with where to go instead; ignore chatter.
            if text.startswith("/"):
                await self.reply(user, texts.PRIVATE_ONLY)
            return
        if not self.accepting:
            await self.reply(user, texts.SHUTTING_DOWN)
            return
        match = COMMAND_RE.fullmatch(text)
        if match is None:
            if text.startswith("/"):
                await self.reply(user, texts.UNKNOWN_COMMAND)
                return
            agent = await self.agent(user.user_id)
            authorized = agent is not None and agent.authorized
            authorized = authorized or self.is_admin(user.user_id)
            await self.reply(
                user, texts.PLAIN_TEXT if authorized else texts.not_authorized(user.user_id)
            )
            return
        handler = self._commands.get(match["name"].lower())
        if handler is None:
            await self.reply(user, texts.UNKNOWN_COMMAND)
            return
        args = match["args"].strip() if match["args"] else None
        await handler(user, args or None, sent_at)

    # ------------------------------------------------------------------ input: buttons
    async def handle_button(self, user: UserRef, message_id: int, data: bytes) -> str | None:
        """Handle a button press on ``message_id``. Returns a short notice for the presser
        (Telegram shows it as a toast), or None."""
        try:
            return limits.fit_toast(await self._handle_button(user, message_id, data))
        except StoreError as exc:
            log.warning("store unavailable while handling a button press from %s: %s",
                      user.user_id, exc)  # fmt: skip
            return texts.STORE_UNAVAILABLE_TOAST
        except Exception:
            log.exception("failed to handle a button press from %s", user.user_id)
            return texts.INTERNAL_ERROR

    async def _handle_button(self, user: UserRef, message_id: int, data: bytes) -> str | None:
        if not user.private:
            return texts.PRIVATE_ONLY_TOAST
        if not self.accepting:
            return texts.SHUTTING_DOWN
        press = cb.parse(data)
        if press is None:
            log.info("ignored malformed button data from %s: %.100r", user.user_id, data)
            return texts.INVALID_BUTTON
        if press.owner != user.user_id:
            log.info("ignored %s's press of a button made for %s", user.user_id, press.owner)
            return texts.NOT_YOUR_BUTTON
        on_press = self._buttons.get(press.action)
        if on_press is None:  # pragma: no cover - callbacks.parse knows only these actions
            return texts.INVALID_BUTTON
        return await on_press(user, message_id, press)

    # ------------------------------------------------------------------ helpers
    def open_menu(
        self, owner: int, kind: str, step: str, choices: tuple[str, ...] = (), *,
        subject: str = "", chat_id: int | None = None, message_id: int | None = None,
    ) -> LiveMenu:  # fmt: skip
        """A new single-use menu; the one of the same kind it replaces loses its buttons."""
        menu, replaced = self.menus.open(
            owner, kind, step, choices, subject=subject, chat_id=chat_id, message_id=message_id
        )
        if (
            replaced is not None and replaced.message_id is not None
            and replaced.chat_id is not None
            and (replaced.chat_id, replaced.message_id) != (chat_id, message_id)
        ):  # fmt: skip
            self.edits.edit(replaced.chat_id, replaced.message_id, texts.MENU_REPLACED, NO_BUTTONS)
        return menu

    def dnc_enforced(self) -> bool:
        """Whether the do-not-call list is checked before calls (its plugin is active). The
        list itself is in the store either way; the button is offered only when pressing
        it has an effect."""
        return self.app.plugins.is_active(DNC_PLUGIN)

    async def agent(self, user_id: int) -> Agent | None:
        return await self.app.run_in_store(self.app.store.get_agent, user_id)

    async def authorized_agent(self, user: UserRef) -> Agent | None:
        """The agent, re-read now; None (after saying so) when not authorized."""
        agent = await self.agent(user.user_id)
        if agent is None or not agent.authorized:
            if self.is_admin(user.user_id):
                await self.reply(user, texts.admin_not_agent(user.user_id))
            else:
                await self.reply(user, texts.not_authorized(user.user_id))
            return None
        return agent

    @staticmethod
    def actor(user: UserRef) -> str:
        return f"telegram:{user.user_id}"

    async def reply(self, user: UserRef, text: str) -> int | None:
        return await self.send(user.chat_id, text)

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int | None:
        """Send a message; on rate limiting wait as told and retry (a reply is never
        coalesced away). Returns the message id, or None when it could not be sent."""
        if self._port is None:
            raise RuntimeError("Conversation.bind(port) was not called")
        waited = 0.0
        while True:
            try:
                message_id = await self._port.send(chat_id, text, buttons)
            except RateLimited as exc:
                wait = max(exc.seconds, 0.0)
                if waited + wait > SEND_PATIENCE:
                    log.error("chat %s: gave up sending a message after %.0f s of FloodWait",
                              chat_id, waited)  # fmt: skip
                    return None
                log.info("chat %s: rate limited for %.0f s before sending", chat_id, exc.seconds)
                self.app.plugins.notify_chat_rate_limited(chat_id, exc.seconds)
                waited += wait
                await self.sleep(wait)
                continue
            self.edits.note_sent(chat_id, message_id, text, buttons)
            return message_id
