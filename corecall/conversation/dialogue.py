"""The bot's dialogue, independent of any messenger.

:class:`Conversation` turns what a person typed or pressed into actions (through
:class:`~corecall.calls.CallManager` and :class:`~corecall.agents.AgentAdmin`) and into
messages shown through the front end's :class:`~corecall.conversation.ports.OutputPort`.

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
import collections
import contextlib
import datetime as _dt
import logging
import re
import time
from collections.abc import Awaitable, Callable

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.calls import CallManager, effective_caller_id, parse_on_any_route
from corecall.conversation import callbacks as cb
from corecall.conversation import limits, texts
from corecall.conversation.edits import EditScheduler
from corecall.conversation.limits import LimitedPort
from corecall.conversation.live_view import LiveViews
from corecall.conversation.menus import LiveMenu, MenuBook
from corecall.conversation.ports import (
    NO_BUTTONS,
    Button,
    Keyboard,
    OutputPort,
    RateLimited,
    UserRef,
)
from corecall.domain import Agent, CallRecord, CallState, Route, utcnow
from corecall.errors import CorecallError, NotFoundError, RefusedError, StoreError
from corecall.supervision import log_crash

log = logging.getLogger(__name__)

#: ``/name``, an optional ``@botname`` (clients add it in groups), then the arguments.
COMMAND_RE = re.compile(
    r"/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>[A-Za-z0-9_]{1,64}))?(?:\s+(?P<args>.+))?", re.S
)
#: The first word of a message that looks like a command addressed to a bot: ``/cmd@bot``.
_ADDRESSED_RE = re.compile(r"/[A-Za-z0-9_]{1,32}@(?P<bot>[A-Za-z0-9_]{1,64})(?:\s|$)")
_TELEGRAM_ID = r"(?P<id>[0-9]{1,19})"
_ID_ONLY_RE = re.compile(_TELEGRAM_ID)
_ID_AND_REST_RE = re.compile(_TELEGRAM_ID + r"\s+(?P<rest>.+)", re.S)
_PHONE_TOKEN_RE = re.compile(r"[+0-9().\-]+")
_ROUTE_CODE_RE = re.compile(r"[A-Za-z0-9]{1,8}")

#: The plugin that checks the do-not-call list before calls (the list is core data).
DNC_PLUGIN = "policy_dnc"

#: Long lists are split into messages of at most this many UTF-16 code units (Telegram
#: refuses more than limits.MESSAGE_MAX).
MAX_MESSAGE_CHARS = limits.MESSAGE_MAX - 96
HISTORY_LENGTH = 10
#: Seconds a "Do not call again" press waits for the call's final record when the status
#: message showed the end before the store had it (well under Telegram's ~15 s to answer).
FINAL_RECORD_WAIT = 5.0
#: Calls remembered as listed by their "Do not call again" press (status messages older
#: than this are not edited any more anyway).
DNC_PRESSES_REMEMBERED = 10_000
#: Seconds of FloodWait a message may wait out before it is given up. Telegram asks for a
#: few seconds in a storm and rarely for minutes; a status message or a reply is only
#: dropped past this (found by bench/soak.py: 5 attempts lost status messages in a storm).
SEND_PATIENCE = 300.0

#: Kinds of single-use menus (see corecall.conversation.menus).
ROUTE_MENU = "route"
CALLER_ID_MENU = "callerid:{agent_id}"

Handler = Callable[[UserRef, str | None, _dt.datetime | None], Awaitable[None]]


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
        self._clock = clock
        self._monotonic = monotonic
        self._port: OutputPort | None = None
        self._edits: EditScheduler | None = None
        self._watchers: dict[str, asyncio.Task] = {}
        self._status_messages: dict[str, tuple[int, int, CallRecord]] = {}
        #: Calls whose number their agent listed with "Do not call again": their status
        #: message keeps saying so, whatever edit comes later (newest last, bounded).
        self._dnc_pressed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.menus = MenuBook()
        self.accepting = True
        #: Our bot's username (without @), set by the front end once known. Commands
        #: addressed to another bot (``/call@OtherBot``) are never acted on.
        self.bot_username: str | None = None
        self._commands: dict[str, Handler] = {
            "start": self._cmd_start,
            "help": self._cmd_help,
            "call": self._cmd_call,
            "settings": self._cmd_settings,
            "route": self._cmd_route,
            "history": self._cmd_history,
            "authorize": self._cmd_authorize,
            "revoke": self._cmd_revoke,
            "agents": self._cmd_agents,
            "setphone": self._cmd_setphone,
            "callerid": self._cmd_callerid,
            "setroute": self._cmd_setroute,
            "dnc": self._cmd_dnc,
            "undnc": self._cmd_undnc,
            "live": self._cmd_live,
        }
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
            self._port, min_interval=self.edit_interval, clock=self._monotonic, sleep=self.sleep,
            on_sent=plugins.notify_chat_edit_sent, on_rate_limited=plugins.notify_chat_rate_limited,
        )  # fmt: skip

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
        watchers = list(self._watchers.values())
        if watchers:
            _done, pending = await asyncio.wait(watchers, timeout=timeout)
            if pending:
                return False
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await self.edits.flush(remaining)

    async def shutdown(self, timeout: float = 5.0, *, announce: bool = True) -> None:
        """Stop intake and status following. With ``announce``, each live call's status
        message says the bot is restarting and the call goes on (used by ``corecall run``:
        calls stay up in Asterisk)."""
        self.accepting = False
        await self.live_views.close_all(timeout)
        watchers = [t for t in self._watchers.values() if not t.done()]
        for task in watchers:
            task.cancel()
        if watchers:  # bounded: a watcher that lost its cancellation cannot hold the stop
            await asyncio.wait(watchers, timeout=timeout)
        if self._edits is None:
            return
        if announce:
            for chat_id, message_id, record in list(self._status_messages.values()):
                if not record.is_final:
                    self._edits.edit(
                        chat_id, message_id, texts.call_status_paused(record), NO_BUTTONS
                    )
        self._status_messages.clear()
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
            await self._reply(user, texts.STORE_UNAVAILABLE)
        except Exception:
            log.exception("failed to handle a message from %s", user.user_id)
            await self._reply(user, texts.INTERNAL_ERROR)

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
                await self._reply(user, texts.addressed_to_other_bot(other_bot, self.bot_username))
            log.info("ignored a command addressed to @%s", other_bot)
            return
        if not user.private:
            # Groups: answer commands with where to go instead; ignore chatter.
            if text.startswith("/"):
                await self._reply(user, texts.PRIVATE_ONLY)
            return
        if not self.accepting:
            await self._reply(user, texts.SHUTTING_DOWN)
            return
        match = COMMAND_RE.fullmatch(text)
        if match is None:
            if text.startswith("/"):
                await self._reply(user, texts.UNKNOWN_COMMAND)
                return
            agent = await self._agent(user.user_id)
            authorized = agent is not None and agent.authorized
            authorized = authorized or self.is_admin(user.user_id)
            await self._reply(
                user, texts.PLAIN_TEXT if authorized else texts.not_authorized(user.user_id)
            )
            return
        handler = self._commands.get(match["name"].lower())
        if handler is None:
            await self._reply(user, texts.UNKNOWN_COMMAND)
            return
        args = match["args"].strip() if match["args"] else None
        await handler(user, args or None, sent_at)

    # ---- who you are
    async def _cmd_start(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self._agent(user.user_id)
        is_admin = self.is_admin(user.user_id)
        if agent is not None and agent.authorized:
            has_route = self.admin.route_of(agent) is not None
            text = texts.start_agent(agent, has_route=has_route, is_admin=is_admin)
            await self._reply(user, text)
        elif is_admin:
            await self._reply(user, texts.start_admin_only(user.user_id))
        else:
            await self._reply(user, texts.not_authorized(user.user_id))

    async def _cmd_help(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self._agent(user.user_id)
        is_agent = agent is not None and agent.authorized
        is_admin = self.is_admin(user.user_id)
        if not (is_agent or is_admin):
            await self._reply(user, texts.not_authorized(user.user_id))
            return
        limits = self.app.config.limits
        await self._reply(
            user,
            texts.help_text(
                self.app.routes().values(), is_agent=is_agent, is_admin=is_admin,
                live_calls=limits.live_calls_per_agent, calls_per_minute=limits.calls_per_minute,
            ),
        )  # fmt: skip

    # ---- calls
    async def _cmd_call(self, user: UserRef, args: str | None, sent_at) -> None:
        if sent_at is not None:
            age = (self._clock() - sent_at).total_seconds()
            if age > self.max_command_age:
                log.info("expired /call from %s (%.0f s old): not dialed", user.user_id, age)
                await self._reply(user, texts.call_expired(age))
                return
        if args is None:
            agent = await self._authorized_agent(user)
            if agent is not None:
                await self._reply(user, texts.CALL_USAGE)
            return
        try:
            record = await self.calls.place(user.user_id, args)
        except RefusedError as exc:
            if exc.reason == "no_route":
                await self._offer_routes(user, texts.no_route_for_call())
            elif exc.reason == "not_authorized" and self.is_admin(user.user_id):
                await self._reply(user, texts.admin_not_agent(user.user_id))
            else:
                await self._reply(user, texts.call_refused(exc.message))
            return
        await self._follow_call(user, record)

    async def _follow_call(self, user: UserRef, record: CallRecord) -> None:
        text, buttons = self._status(record)
        message_id = await self._send(user.chat_id, text, buttons)
        if message_id is None or record.is_final:
            return
        self._status_messages[record.id] = (user.chat_id, message_id, record)
        task = asyncio.create_task(
            self._follow(record, user.chat_id, message_id), name=f"corecall-status-{record.id}"
        )
        self._watchers[record.id] = task
        task.add_done_callback(log_crash)
        call_id = record.id
        task.add_done_callback(lambda _t: self._watchers.pop(call_id, None))

    async def _follow(self, first: CallRecord, chat_id: int, message_id: int) -> None:
        shown = first
        try:
            async for record in self.calls.watch(first.id):
                if not record.is_final and record.state.order < shown.state.order:
                    continue  # an older state announced late: the message only moves forward
                shown = record
                self._status_messages[first.id] = (chat_id, message_id, record)
                settle = self.ringing_settle if record.state is CallState.AGENT_RINGING else 0.0
                self.edits.edit(chat_id, message_id, *self._status(record), settle=settle)
                if record.is_final:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following call %s failed", first.id)
        else:
            self._status_messages.pop(first.id, None)

    def _status(self, record: CallRecord) -> tuple[str, Keyboard]:
        route = self.app.routes().get(record.route_code)
        text = texts.call_status(record, route.name if route else None)
        if record.is_final:
            if record.id in self._dnc_pressed:
                return texts.call_status_with_dnc(record, route.name if route else None), NO_BUTTONS
            if record.connected_at and record.agent_id > 0 and self._dnc_enforced():
                # The customer (who was on the line) asked not to be called again: one press
                # lists the number. Calls that never reached them get no button.
                listed = cb.make(cb.DO_NOT_CALL, record.agent_id, record.id)
                return text, ((Button(texts.DNC_BUTTON, listed),),)
            return text, NO_BUTTONS
        hang_up = cb.make(cb.HANG_UP, record.agent_id, record.id)
        return text, ((Button(texts.HANG_UP_BUTTON, hang_up),),)

    async def _cmd_history(self, user: UserRef, args: str | None, _sent_at) -> None:
        if await self._authorized_agent(user) is None:
            return
        if args is not None:
            await self._reply(user, texts.no_arguments("history"))
            return
        calls = await self.app.run_in_store(
            self.app.store.recent_calls, user.user_id, HISTORY_LENGTH
        )
        await self._reply(user, texts.history(calls))

    # ---- settings and routes
    async def _cmd_settings(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self._authorized_agent(user)
        if agent is None:
            return
        if args is not None:
            await self._reply(user, texts.no_arguments("settings"))
            return
        await self._settings_menu(user, agent)

    async def _settings_menu(self, user: UserRef, agent: Agent) -> None:
        open_routes = cb.make(cb.OPEN_ROUTES, user.user_id)
        await self._send(
            user.chat_id,
            texts.settings_menu(agent, self.admin.caller_id_line(agent)),
            ((Button(texts.SELECT_ROUTE_BUTTON, open_routes),),),
        )

    def _open_menu(
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

    def _route_menu(
        self, user_id: int, chat_id: int | None = None, message_id: int | None = None
    ) -> tuple[LiveMenu, Keyboard]:
        routes = self.app.routes()
        menu = self._open_menu(
            user_id, ROUTE_MENU, "pick", tuple(routes), chat_id=chat_id, message_id=message_id
        )
        buttons = tuple(
            (Button(route.button, cb.make(cb.PICK_ROUTE, user_id, menu.token, code)),)
            for code, route in routes.items()
        )
        return menu, buttons

    async def _offer_routes(self, user: UserRef, text: str) -> None:
        if not self.app.routes():
            await self._send(user.chat_id, texts.NO_ROUTES_OFFERED)
            return
        menu, buttons = self._route_menu(user.user_id)
        message_id = await self._send(user.chat_id, text, buttons)
        if message_id is not None:
            self.menus.shown(user.user_id, ROUTE_MENU, menu, user.chat_id, message_id)

    async def _cmd_route(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self._authorized_agent(user)
        if agent is None:
            return
        routes = self.app.routes()
        if args is None:
            await self._offer_routes(user, texts.route_usage(routes.values()))
            return
        code = args.upper()
        if not _ROUTE_CODE_RE.fullmatch(args) or code not in routes:
            await self._reply(user, texts.unknown_route(args, routes.values()))
            return
        if self.admin.route_of(agent) == routes[code]:
            line = self.admin.caller_id_line(agent)
            await self._reply(user, texts.already_on_route(routes[code], line))
            return
        if await self._switch_route(user, code) is not None:
            await self._reply(user, texts.route_changed(routes[code]))

    async def _switch_route(self, user: UserRef, code: str) -> Agent | None:
        try:
            return await self.calls.change_agent(
                user.user_id, self.admin.set_route, user.user_id, code, actor=self._actor(user)
            )
        except (RefusedError, NotFoundError) as exc:
            await self._reply(user, str(exc))
            return None

    # ---- admin
    async def _admin_allowed(self, user: UserRef, command: str) -> bool:
        if self.is_admin(user.user_id):
            return True
        # Recorded: someone tried an admin command (who, when, which).
        await self.app.run_in_store(
            self.app.store.audit, self._actor(user), "admin.denied", f"/{command}", ""
        )
        await self._reply(user, texts.ADMIN_ONLY.format(command=f"/{command}"))
        return False

    async def _cmd_authorize(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "authorize"):
            return
        match = _ID_AND_REST_RE.fullmatch(args or "")
        phone, name = _split_phone_and_name(match["rest"]) if match else ("", "")
        if match is None or not phone:
            await self._reply(user, texts.AUTHORIZE_USAGE)
            return
        agent = await self._admin_action(
            user, int(match["id"]), self.admin.authorize, phone=phone, name=name
        )
        if agent is not None:
            await self._reply(user, texts.authorized(agent))

    async def _cmd_revoke(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "revoke"):
            return
        match = _ID_ONLY_RE.fullmatch(args or "")
        if match is None:
            await self._reply(user, texts.REVOKE_USAGE)
            return
        agent = await self._admin_action(user, int(match["id"]), self.admin.revoke)
        if agent is not None:
            await self._reply(user, texts.revoked(agent))

    async def _cmd_setphone(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "setphone"):
            return
        match = _ID_AND_REST_RE.fullmatch(args or "")
        if match is None:
            await self._reply(user, texts.SETPHONE_USAGE)
            return
        agent = await self._admin_action(
            user, int(match["id"]), self.admin.set_phone, match["rest"].strip()
        )
        if agent is not None:
            await self._reply(user, texts.phone_set(agent))

    async def _cmd_agents(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "agents"):
            return
        if args is not None:
            await self._reply(user, texts.no_arguments("agents"))
            return
        agents = await self.app.run_in_store(self.app.store.list_agents)
        await self.app.run_in_store(self.app.store.audit, self._actor(user), "agents.list", "", "")
        rows = [(a, self.admin.caller_id_line(a)) for a in agents]
        for chunk in _chunks(texts.agents_list(rows)):
            await self._reply(user, chunk)

    async def _cmd_setroute(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "setroute"):
            return
        match = _ID_AND_REST_RE.fullmatch(args or "")
        routes = self.app.routes()
        if match is None:
            await self._reply(user, texts.SETROUTE_USAGE)
            return
        agent_id, code = int(match["id"]), match["rest"].strip()
        if not _ROUTE_CODE_RE.fullmatch(code) or code.upper() not in routes:
            await self._reply(user, texts.unknown_route(code, routes.values()))
            return
        route = routes[code.upper()]
        agent = await self._agent(agent_id)
        if agent is None:
            await self._reply(user, _no_such_agent(agent_id))
            return
        if self.admin.route_of(agent) == route:
            line = self.admin.caller_id_line(agent)
            await self._reply(user, texts.agent_already_on_route(agent, route, line))
            return
        agent = await self._admin_action(user, agent_id, self.admin.set_route, route.code)
        if agent is not None:
            line = self.admin.caller_id_line(agent)
            await self._reply(user, texts.route_set(agent, route, line))

    async def _cmd_live(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "live"):
            return
        if args is not None:
            await self._reply(user, texts.no_arguments("live"))
            return
        await self.live_views.open(user)

    async def _cmd_callerid(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "callerid"):
            return
        match = _ID_ONLY_RE.fullmatch(args or "")
        if match is None:
            await self._reply(user, texts.CALLERID_USAGE)
            return
        agent_id = int(match["id"])
        agent = await self._agent(agent_id)
        if agent is None:
            await self._reply(user, _no_such_agent(agent_id))
            return
        route = self.admin.route_of(agent)
        if route is None:
            await self._reply(user, texts.caller_id_no_route(agent))
            return
        current = effective_caller_id(agent, route)
        numbers = route.caller_ids[: cb.MAX_CHOICES]
        kind = CALLER_ID_MENU.format(agent_id=agent_id)
        menu = self._open_menu(user.user_id, kind, "pick", numbers, subject=str(agent_id))
        buttons = tuple(
            (
                Button(
                    texts.caller_id_button(number, number == current),
                    cb.make(cb.SET_CALLER_ID, user.user_id, menu.token, str(index)),
                ),
            )
            for index, number in enumerate(numbers)
        )
        text = texts.caller_id_menu(agent, route, self.admin.caller_id_line(agent))
        message_id = await self._send(user.chat_id, text, buttons)
        if message_id is not None:
            self.menus.shown(user.user_id, kind, menu, user.chat_id, message_id)

    # ---- do not call
    def _dnc_enforced(self) -> bool:
        """Whether the do-not-call list is checked before calls (its plugin is active). The
        list itself is in the store either way; the button is offered only when pressing
        it has an effect."""
        return self.app.plugins.is_active(DNC_PLUGIN)

    async def _cmd_dnc(self, user: UserRef, args: str | None, _sent_at) -> None:
        await self._dnc_change(user, args, "dnc")

    async def _cmd_undnc(self, user: UserRef, args: str | None, _sent_at) -> None:
        await self._dnc_change(user, args, "undnc")

    async def _dnc_change(self, user: UserRef, args: str | None, command: str) -> None:
        if not await self._admin_allowed(user, command):
            return
        if args is None:
            await self._reply(user, texts.DNC_USAGE if command == "dnc" else texts.UNDNC_USAGE)
            return
        verdict = parse_on_any_route(self.app.plugins, self.app.routes().values(), args)
        if not verdict.ok:
            await self._reply(user, texts.dnc_bad_number(verdict.message))
            return
        assert verdict.e164 is not None  # accepted
        e164, actor, store = verdict.e164, self._actor(user), self.app.store
        if command == "dnc":
            added = await self.app.run_in_store(store.dnc_add, e164, reason="", actor=actor)
            text = texts.dnc_added(e164) if added else texts.dnc_already(e164)
        else:
            removed = await self.app.run_in_store(store.dnc_remove, e164, actor=actor)
            text = texts.dnc_removed(e164) if removed else texts.dnc_not_listed(e164)
        if not self._dnc_enforced():
            text += "\n" + texts.DNC_NOT_ENFORCED
        await self._reply(user, text)

    async def _press_do_not_call(self, user: UserRef, message_id: int, call_id: str) -> str:
        # Forged data can carry the presser's id with someone else's call: the call on
        # record must be the presser's own. A revoked agent may still list their own call's
        # number (it only ever stops calls).
        record = await self.app.run_in_store(self.app.store.get_call, call_id)
        if record is None or record.agent_id != user.user_id:
            log.info("ignored %s's do-not-call press for call %s (not theirs)",
                     user.user_id, call_id)  # fmt: skip
            return texts.NOT_YOUR_BUTTON
        if not record.is_final and all(c.id != call_id for c in self.calls.live_calls()):
            # The status message can show the end before the end is on record (a watcher
            # that starts late begins from the in-memory state, which runs ahead of the
            # store): the press comes between the two. Wait, bounded, for the final record.
            with contextlib.suppress(TimeoutError, KeyError):
                record = await self.calls.wait_final(call_id, timeout=FINAL_RECORD_WAIT)
        added = await self.app.run_in_store(
            self.app.store.dnc_add, record.target,
            reason=f"asked during call {record.id}", actor=self._actor(user),
        )  # fmt: skip
        if record.is_final:
            self._dnc_pressed[record.id] = None
            while len(self._dnc_pressed) > DNC_PRESSES_REMEMBERED:
                self._dnc_pressed.popitem(last=False)
            self.edits.edit(user.chat_id, message_id, *self._status(record))
        return texts.DNC_ADDED_TOAST if added else texts.DNC_ALREADY_TOAST

    async def _admin_action(self, user: UserRef, agent_id: int, action, *args, **kwargs):
        """Run an AgentAdmin change off the loop, audited as this Telegram user, in step with
        the agent's calls (a call being placed is handed to the PBX first; none is dialed
        under the old state once this returns); refusals are answered and give None."""
        try:
            return await self.calls.change_agent(
                agent_id, action, agent_id, *args, actor=self._actor(user), **kwargs
            )
        except NotFoundError:
            await self._reply(user, _no_such_agent(agent_id))
        except StoreError:
            raise
        except CorecallError as exc:
            await self._reply(user, str(exc))
        return None

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
        if press.action == cb.HANG_UP:
            return await self._press_hang_up(user, press.args[0])
        if press.action == cb.DO_NOT_CALL:
            return await self._press_do_not_call(user, message_id, press.args[0])
        if press.action == cb.SET_CALLER_ID:
            return await self._press_caller_id(user, message_id, press.args[0], int(press.args[1]))
        if press.action == cb.STOP_LIVE:
            if not self.is_admin(user.user_id):
                return texts.ADMIN_ONLY_TOAST
            return await self.live_views.press_stop(user, message_id)
        # A route menu's token is taken (the menu ends) before anything is awaited: of two
        # racing presses, or of two devices, only the first acts.
        menu = None
        if press.action in (cb.PICK_ROUTE, cb.CONFIRM_ROUTE, cb.CANCEL_ROUTE):
            step = {cb.PICK_ROUTE: "pick", cb.CONFIRM_ROUTE: "confirm"}.get(press.action)
            menu = self.menus.take(user.user_id, ROUTE_MENU, press.args[0], step)
            if menu is None:
                return texts.MENU_CLOSED
        agent = await self._agent(user.user_id)
        if agent is None or not agent.authorized:
            return texts.NOT_AUTHORIZED_TOAST
        chat, routes = user.chat_id, self.app.routes()
        if press.action == cb.OPEN_ROUTES:
            if not routes:
                return texts.NO_ROUTES_OFFERED
            _menu, buttons = self._route_menu(user.user_id, chat, message_id)
            self.edits.edit(chat, message_id, texts.CHOOSE_ROUTE, buttons)
            return None
        assert menu is not None
        if press.action == cb.CANCEL_ROUTE:
            line = self.admin.caller_id_line(agent)
            self.edits.edit(chat, message_id, texts.route_cancelled(line), NO_BUTTONS)
            return None
        code = press.args[1] if press.action == cb.PICK_ROUTE else menu.choices[0]
        route = routes.get(code)
        if route is None or code not in menu.choices:
            self.edits.edit(chat, message_id, texts.ROUTE_GONE, NO_BUTTONS)
            return None
        if press.action == cb.PICK_ROUTE:
            self._ask_route_confirmation(user, message_id, agent, route)
            return None
        # CONFIRM_ROUTE
        if await self._switch_route(user, code) is not None:
            self.edits.edit(chat, message_id, texts.route_changed(route), NO_BUTTONS)
        return None

    def _ask_route_confirmation(
        self, user: UserRef, message_id: int, agent: Agent, route: Route
    ) -> None:
        if self.admin.route_of(agent) == route:
            line = self.admin.caller_id_line(agent)
            self.edits.edit(
                user.chat_id, message_id, texts.already_on_route(route, line), NO_BUTTONS
            )
            return
        menu = self._open_menu(
            user.user_id, ROUTE_MENU, "confirm", (route.code,),
            chat_id=user.chat_id, message_id=message_id,
        )  # fmt: skip
        yes = cb.make(cb.CONFIRM_ROUTE, user.user_id, menu.token)
        cancel = cb.make(cb.CANCEL_ROUTE, user.user_id, menu.token)
        self.edits.edit(
            user.chat_id,
            message_id,
            texts.route_confirmation(route),
            (
                (Button(texts.CONFIRM_ROUTE_BUTTON, yes),),
                (Button(texts.CANCEL_ROUTE_BUTTON, cancel),),
            ),
        )

    async def _press_hang_up(self, user: UserRef, call_id: str) -> str:
        # Anyone may forge a hang-up button with their own id and another agent's call id:
        # only the agent who placed the call can end it. A revoked agent may still end their
        # own call (ending a call never costs anything).
        if any(c.id == call_id for c in self.calls.live_calls(user.user_id)):
            if await self.calls.hangup(call_id):
                return texts.HANGING_UP
            return texts.CALL_ALREADY_ENDED
        stored = await self.app.run_in_store(self.app.store.get_call, call_id)
        if stored is None or stored.agent_id != user.user_id:
            log.info("ignored %s's hang-up of call %s (not theirs)", user.user_id, call_id)
            return texts.NOT_YOUR_BUTTON
        return texts.CALL_ALREADY_ENDED

    async def _press_caller_id(
        self, user: UserRef, message_id: int, token: str, choice: int
    ) -> str | None:
        if not self.is_admin(user.user_id):
            return texts.ADMIN_ONLY_TOAST
        menu = self._take_caller_id_menu(user.user_id, token)
        if menu is None or choice >= len(menu.choices):
            return texts.MENU_CLOSED
        agent_id, number = int(menu.subject), menu.choices[choice]
        try:
            agent = await self.calls.change_agent(
                agent_id, self.admin.set_caller_id, agent_id, number, actor=self._actor(user)
            )
        except NotFoundError:
            self.edits.edit(user.chat_id, message_id, _no_such_agent(agent_id), NO_BUTTONS)
            return None
        except RefusedError as exc:
            self.edits.edit(user.chat_id, message_id, exc.message, NO_BUTTONS)
            return None
        line = self.admin.caller_id_line(agent)
        self.edits.edit(user.chat_id, message_id, texts.caller_id_set(agent, line), NO_BUTTONS)
        return None

    def _take_caller_id_menu(self, owner: int, token: str) -> LiveMenu | None:
        # The token says which menu; the menu (kept here) says which agent it is for.
        kind = self.menus.kind_of(owner, token)
        if kind is None or not kind.startswith(CALLER_ID_MENU.partition("{")[0]):
            return None
        return self.menus.take(owner, kind, token, "pick")

    # ------------------------------------------------------------------ helpers
    async def _agent(self, user_id: int) -> Agent | None:
        return await self.app.run_in_store(self.app.store.get_agent, user_id)

    async def _authorized_agent(self, user: UserRef) -> Agent | None:
        """The agent, re-read now; None (after saying so) when not authorized."""
        agent = await self._agent(user.user_id)
        if agent is None or not agent.authorized:
            if self.is_admin(user.user_id):
                await self._reply(user, texts.admin_not_agent(user.user_id))
            else:
                await self._reply(user, texts.not_authorized(user.user_id))
            return None
        return agent

    @staticmethod
    def _actor(user: UserRef) -> str:
        return f"telegram:{user.user_id}"

    async def _reply(self, user: UserRef, text: str) -> int | None:
        return await self._send(user.chat_id, text)

    async def _send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int | None:
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


def _split_phone_and_name(rest: str) -> tuple[str, str]:
    """``(212) 555-0123 Alice Smith`` -> (``(212) 555-0123``, ``Alice Smith``): the leading
    words that look like parts of a phone number, then the name."""
    words = rest.split()
    count = 0
    while count < len(words) and _PHONE_TOKEN_RE.fullmatch(words[count]):
        count += 1
    phone = " ".join(words[:count])
    name = " ".join(words[count:])  # split() also removed line breaks; AgentAdmin checks it
    return phone, name


def _no_such_agent(agent_id: int) -> str:
    return (
        f"There is no agent with Telegram id {agent_id}. "
        f"Add one with /authorize {agent_id} <phone> [name]."
    )


def _chunks(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split on line breaks into messages Telegram accepts."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = limits.fit(line, limit)
        if current and limits.utf16_len(current) + 1 + limits.utf16_len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks
