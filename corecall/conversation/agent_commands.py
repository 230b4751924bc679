"""What agents type and press: ``/start``, ``/help``, ``/call``, ``/history``, ``/settings``,
``/route`` and the route menu's buttons (pick, confirm, cancel)."""

from __future__ import annotations

import logging

from corecall.conversation import callbacks as cb
from corecall.conversation import texts
from corecall.conversation.callbacks import CallbackData
from corecall.conversation.menus import LiveMenu
from corecall.conversation.ports import NO_BUTTONS, Button, Keyboard, UserRef
from corecall.conversation.router import ROUTE_CODE_RE, ButtonHandler, CommandHandler, Router
from corecall.domain import Agent, Route
from corecall.errors import NotFoundError, RefusedError

log = logging.getLogger(__name__)

#: Calls shown by ``/history``.
HISTORY_LENGTH = 10
#: The kind of the route menu (single-use: see corecall.conversation.menus).
ROUTE_MENU = "route"


class AgentCommands(Router):
    """An agent's own commands and the route menu."""

    def commands(self) -> dict[str, CommandHandler]:
        return {
            "start": self._cmd_start,
            "help": self._cmd_help,
            "call": self._cmd_call,
            "history": self._cmd_history,
            "settings": self._cmd_settings,
            "route": self._cmd_route,
        }

    def buttons(self) -> dict[str, ButtonHandler]:
        return dict.fromkeys(
            (cb.OPEN_ROUTES, cb.PICK_ROUTE, cb.CONFIRM_ROUTE, cb.CANCEL_ROUTE), self._press_route
        )

    async def _cmd_start(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self.agent(user.user_id)
        is_admin = self.is_admin(user.user_id)
        if agent is not None and agent.authorized:
            has_route = self.admin.route_of(agent) is not None
            withdrawn = None if has_route else self.admin.withdrawn_route(agent)
            text = texts.start_agent(
                agent, has_route=has_route, is_admin=is_admin, withdrawn=withdrawn
            )
            await self.reply(user, text)
        elif is_admin:
            await self.reply(user, texts.start_admin_only(user.user_id))
        else:
            await self.reply(user, texts.not_authorized(user.user_id))

    async def _cmd_help(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self.agent(user.user_id)
        is_agent = agent is not None and agent.authorized
        is_admin = self.is_admin(user.user_id)
        if not (is_agent or is_admin):
            await self.reply(user, texts.not_authorized(user.user_id))
            return
        limits = self.app.config.limits
        await self.reply(
            user,
            texts.help_text(
                self.app.routes().values(), is_agent=is_agent, is_admin=is_admin,
                live_calls=limits.live_calls_per_agent, calls_per_minute=limits.calls_per_minute,
            ),
        )  # fmt: skip

    async def _cmd_call(self, user: UserRef, args: str | None, sent_at) -> None:
        if sent_at is not None:
            age = (self.conversation.clock() - sent_at).total_seconds()
            if age > self.conversation.max_command_age:
                log.info("expired /call from %s (%.0f s old): not dialed", user.user_id, age)
                await self.reply(user, texts.call_expired(age))
                return
        if args is None:
            agent = await self.authorized_agent(user)
            if agent is not None:
                await self.reply(user, texts.CALL_USAGE)
            return
        try:
            record = await self.calls.place(user.user_id, args)
        except RefusedError as exc:
            if exc.reason == "no_route":
                agent = await self.agent(user.user_id)
                withdrawn = self.admin.withdrawn_route(agent) if agent is not None else None
                await self._offer_routes(user, texts.no_route_for_call(withdrawn))
            elif exc.reason == "not_authorized" and self.is_admin(user.user_id):
                await self.reply(user, texts.admin_not_agent(user.user_id))
            else:
                await self.reply(user, texts.call_refused(exc.message))
            return
        await self.conversation.call_status.follow(user, record)

    async def _cmd_history(self, user: UserRef, args: str | None, _sent_at) -> None:
        if await self.authorized_agent(user) is None:
            return
        if args is not None:
            await self.reply(user, texts.no_arguments("history"))
            return
        calls = await self.app.run_in_store(
            self.app.store.recent_calls, user.user_id, HISTORY_LENGTH
        )
        await self.reply(user, texts.history(calls))

    async def _cmd_settings(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self.authorized_agent(user)
        if agent is None:
            return
        if args is not None:
            await self.reply(user, texts.no_arguments("settings"))
            return
        await self._settings_menu(user, agent)

    async def _settings_menu(self, user: UserRef, agent: Agent) -> None:
        open_routes = cb.make(cb.OPEN_ROUTES, user.user_id)
        await self.send(
            user.chat_id,
            texts.settings_menu(agent, self.admin.caller_id_line(agent)),
            ((Button(texts.SELECT_ROUTE_BUTTON, open_routes),),),
        )

    def _route_menu(
        self, user_id: int, chat_id: int | None = None, message_id: int | None = None
    ) -> tuple[LiveMenu, Keyboard]:
        routes = self.app.routes()
        menu = self.open_menu(
            user_id, ROUTE_MENU, "pick", tuple(routes), chat_id=chat_id, message_id=message_id
        )
        buttons = tuple(
            (Button(route.button, cb.make(cb.PICK_ROUTE, user_id, menu.token, code)),)
            for code, route in routes.items()
        )
        return menu, buttons

    async def _offer_routes(self, user: UserRef, text: str) -> None:
        if not self.app.routes():
            await self.send(user.chat_id, texts.NO_ROUTES_OFFERED)
            return
        menu, buttons = self._route_menu(user.user_id)
        message_id = await self.send(user.chat_id, text, buttons)
        if message_id is not None:
            self.menus.shown(user.user_id, ROUTE_MENU, menu, user.chat_id, message_id)

    async def _cmd_route(self, user: UserRef, args: str | None, _sent_at) -> None:
        agent = await self.authorized_agent(user)
        if agent is None:
            return
        routes = self.app.routes()
        if args is None:
            withdrawn = self.admin.withdrawn_route(agent)
            await self._offer_routes(user, texts.route_usage(routes.values(), withdrawn))
            return
        code = args.upper()
        if not ROUTE_CODE_RE.fullmatch(args) or code not in routes:
            await self.reply(user, texts.unknown_route(args, routes.values()))
            return
        if self.admin.route_of(agent) == routes[code]:
            line = self.admin.caller_id_line(agent)
            await self.reply(user, texts.already_on_route(routes[code], line))
            return
        if await self._switch_route(user, code) is not None:
            await self.reply(user, texts.route_changed(routes[code]))

    async def _switch_route(self, user: UserRef, code: str) -> Agent | None:
        try:
            return await self.calls.change_agent(
                user.user_id, self.admin.set_route, user.user_id, code, actor=self.actor(user)
            )
        except (RefusedError, NotFoundError) as exc:
            await self.reply(user, str(exc))
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
        menu = self.open_menu(
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

    async def _press_route(self, user: UserRef, message_id: int, press: CallbackData) -> str | None:
        # A route menu's token is taken (the menu ends) before anything is awaited: of two
        # racing presses, or of two devices, only the first acts.
        menu = None
        if press.action in (cb.PICK_ROUTE, cb.CONFIRM_ROUTE, cb.CANCEL_ROUTE):
            step = {cb.PICK_ROUTE: "pick", cb.CONFIRM_ROUTE: "confirm"}.get(press.action)
            menu = self.menus.take(user.user_id, ROUTE_MENU, press.args[0], step)
            if menu is None:
                return texts.MENU_CLOSED
        agent = await self.agent(user.user_id)
        if agent is None or not agent.authorized:
            return texts.NOT_AUTHORIZED_TOAST
        chat, routes = user.chat_id, self.app.routes()
        if press.action == cb.OPEN_ROUTES:
            if not routes:
                return texts.NO_ROUTES_OFFERED
            _menu, buttons = self._route_menu(user.user_id, chat, message_id)
            text = texts.choose_route(self.admin.withdrawn_route(agent))
            self.edits.edit(chat, message_id, text, buttons)
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
