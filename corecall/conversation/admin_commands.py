"""What super admins type and press: ``/authorize``, ``/revoke``, ``/setphone``, ``/agents``,
``/setroute``, ``/callerid`` (and its menu), ``/dnc``, ``/undnc`` and ``/live`` (and its stop
button). Every one is checked against ``[bot] super_admins`` and recorded: a refused attempt
too."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from corecall import agent_changes
from corecall.agent_changes import Change, NameNotChanged
from corecall.calls import effective_caller_id, parse_on_any_route
from corecall.conversation import callbacks as cb
from corecall.conversation import limits, texts
from corecall.conversation.callbacks import CallbackData
from corecall.conversation.menus import LiveMenu
from corecall.conversation.ports import NO_BUTTONS, Button, UserRef
from corecall.conversation.router import ROUTE_CODE_RE, ButtonHandler, CommandHandler, Router
from corecall.errors import CorecallError, NotFoundError, RefusedError, StoreError
from corecall.numbers import plain_separators

log = logging.getLogger(__name__)

_TELEGRAM_ID = r"(?P<id>[0-9]{1,19})"
_ID_ONLY_RE = re.compile(_TELEGRAM_ID)
_ID_AND_REST_RE = re.compile(_TELEGRAM_ID + r"\s+(?P<rest>.+)", re.S)
_PHONE_TOKEN_RE = re.compile(r"[+0-9().\-]+")

#: The kind of an agent's caller ID menu (single-use: see corecall.conversation.menus).
CALLER_ID_MENU = "callerid:{agent_id}"


class AdminCommands(Router):
    """The super admins' commands."""

    def commands(self) -> dict[str, CommandHandler]:
        return {
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

    def buttons(self) -> dict[str, ButtonHandler]:
        return {cb.SET_CALLER_ID: self._press_caller_id, cb.STOP_LIVE: self._press_stop_live}

    async def _press_stop_live(self, user: UserRef, message_id: int, _press: CallbackData) -> str:
        if not self.is_admin(user.user_id):
            return texts.ADMIN_ONLY_TOAST
        return await self.conversation.live_views.press_stop(user, message_id)

    async def _admin_allowed(self, user: UserRef, command: str) -> bool:
        if self.is_admin(user.user_id):
            return True
        # Recorded: someone tried an admin command (who, when, which).
        await self.app.run_in_store(
            self.app.store.audit, self.actor(user), "admin.denied", f"/{command}", ""
        )
        await self.reply(user, texts.ADMIN_ONLY.format(command=f"/{command}"))
        return False

    async def _admin_action(
        self, user: UserRef, agent_id: int, change: Callable[..., Change], *args,
        explain: Callable[[CorecallError], str] = str, **kwargs,
    ) -> Change | None:  # fmt: skip
        """Run an agent change (:mod:`corecall.agent_changes`) off the loop, audited as this
        Telegram user, in step with the agent's calls (a call being placed is handed to the
        PBX first; none is dialed under the old state once this returns); refusals are
        answered (``explain`` words them) and give None."""
        try:
            return await self.calls.change_agent(
                agent_id, functools.partial(change, self.admin), agent_id, *args,
                actor=self.actor(user), **kwargs,
            )  # fmt: skip
        except NotFoundError:
            await self.reply(user, _no_such_agent(agent_id))
        except StoreError:
            raise
        except CorecallError as exc:
            await self.reply(user, explain(exc))
        return None

    async def _cmd_authorize(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "authorize"):
            return
        match = _ID_AND_REST_RE.fullmatch(args or "")
        phone, name = _split_phone_and_name(match["rest"]) if match else ("", "")
        if match is None or not phone:
            await self.reply(user, texts.AUTHORIZE_USAGE)
            return
        agent_id = int(match["id"])

        def explain(exc: CorecallError) -> str:
            if isinstance(exc, NameNotChanged):  # nothing applied: say how to apply the rest
                resend = f"/authorize {agent_id} {phone}"
                return texts.authorize_name_not_changed(exc.message, resend)
            return str(exc)

        change = await self._admin_action(
            user, agent_id, agent_changes.authorize, phone=phone, name=name or None,
            explain=explain,
        )  # fmt: skip
        if change is None:
            return
        if not change.changed:
            await self.reply(user, texts.already_authorized(change.agent))
            return
        previous = change.before.phone if change.before and "phone" in change.fields else None
        await self.reply(user, texts.authorized(change.agent, previous))

    async def _cmd_revoke(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "revoke"):
            return
        match = _ID_ONLY_RE.fullmatch(args or "")
        if match is None:
            await self.reply(user, texts.REVOKE_USAGE)
            return
        change = await self._admin_action(user, int(match["id"]), agent_changes.revoke)
        if change is not None:
            done = texts.revoked if change.changed else texts.already_revoked
            await self.reply(user, done(change.agent))

    async def _cmd_setphone(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "setphone"):
            return
        match = _ID_AND_REST_RE.fullmatch(args or "")
        if match is None:
            await self.reply(user, texts.SETPHONE_USAGE)
            return
        change = await self._admin_action(
            user, int(match["id"]), agent_changes.set_phone, match["rest"].strip()
        )
        if change is not None:
            done = texts.phone_set if change.changed else texts.phone_already
            await self.reply(user, done(change.agent))

    async def _cmd_agents(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "agents"):
            return
        if args is not None:
            await self.reply(user, texts.no_arguments("agents"))
            return
        agents = await self.app.run_in_store(self.app.store.list_agents)
        await self.app.run_in_store(self.app.store.audit, self.actor(user), "agents.list", "", "")
        rows = [(a, self.admin.caller_id_line(a)) for a in agents]
        for chunk in limits.split_message(texts.agents_list(rows)):
            await self.reply(user, chunk)

    async def _cmd_setroute(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "setroute"):
            return
        match = _ID_AND_REST_RE.fullmatch(args or "")
        routes = self.app.routes()
        if match is None:
            await self.reply(user, texts.SETROUTE_USAGE)
            return
        agent_id, code = int(match["id"]), match["rest"].strip()
        if not ROUTE_CODE_RE.fullmatch(code) or code.upper() not in routes:
            await self.reply(user, texts.unknown_route_to_set(code, routes.values(), agent_id))
            return
        route = routes[code.upper()]
        change = await self._admin_action(user, agent_id, agent_changes.set_route, route.code)
        if change is not None:
            line = self.admin.caller_id_line(change.agent)
            done = texts.route_set if change.changed else texts.agent_already_on_route
            await self.reply(user, done(change.agent, route, line))

    async def _cmd_live(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "live"):
            return
        if args is not None:
            await self.reply(user, texts.no_arguments("live"))
            return
        await self.conversation.live_views.open(user)

    async def _cmd_callerid(self, user: UserRef, args: str | None, _sent_at) -> None:
        if not await self._admin_allowed(user, "callerid"):
            return
        match = _ID_ONLY_RE.fullmatch(args or "")
        if match is None:
            await self.reply(user, texts.CALLERID_USAGE)
            return
        agent_id = int(match["id"])
        agent = await self.agent(agent_id)
        if agent is None:
            await self.reply(user, _no_such_agent(agent_id))
            return
        route = self.admin.route_of(agent)
        if route is None:
            withdrawn = self.admin.withdrawn_route(agent)
            routes = self.app.routes().values()
            await self.reply(user, texts.caller_id_no_route(agent, routes, withdrawn))
            return
        current = effective_caller_id(agent, route)
        numbers = route.caller_ids[: cb.MAX_CHOICES]
        kind = CALLER_ID_MENU.format(agent_id=agent_id)
        menu = self.open_menu(user.user_id, kind, "pick", numbers, subject=str(agent_id))
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
        message_id = await self.send(user.chat_id, text, buttons)
        if message_id is not None:
            self.menus.shown(user.user_id, kind, menu, user.chat_id, message_id)

    async def _press_caller_id(
        self, user: UserRef, message_id: int, press: CallbackData
    ) -> str | None:
        token, choice = press.args[0], int(press.args[1])
        if not self.is_admin(user.user_id):
            return texts.ADMIN_ONLY_TOAST
        menu = self._take_caller_id_menu(user.user_id, token)
        if menu is None or choice >= len(menu.choices):
            return texts.MENU_CLOSED
        agent_id, number = int(menu.subject), menu.choices[choice]
        try:
            change = await self.calls.change_agent(
                agent_id, agent_changes.set_caller_id, self.admin, agent_id, number,
                actor=self.actor(user),
            )  # fmt: skip
        except NotFoundError:
            self.edits.edit(user.chat_id, message_id, _no_such_agent(agent_id), NO_BUTTONS)
            return None
        except RefusedError as exc:
            text = await self._caller_id_refused(agent_id, number, exc)
            self.edits.edit(user.chat_id, message_id, text, NO_BUTTONS)
            return None
        line = self.admin.caller_id_line(change.agent)
        done = texts.caller_id_set if change.changed else texts.caller_id_already
        self.edits.edit(user.chat_id, message_id, done(change.agent, line), NO_BUTTONS)
        return None

    async def _caller_id_refused(self, agent_id: int, number: str, exc: RefusedError) -> str:
        """A caller ID menu answered after the agent's route changed: what works now, in
        the bot's commands (AgentAdmin's own message names the CLI's)."""
        agent = await self.agent(agent_id)
        route = self.admin.route_of(agent) if agent is not None else None
        if agent is None:
            return _no_such_agent(agent_id)
        if route is None:
            withdrawn = self.admin.withdrawn_route(agent)
            return texts.caller_id_no_route(agent, self.app.routes().values(), withdrawn)
        if exc.reason == "caller_id_not_owned":
            return texts.caller_id_not_on_route(number, agent, route)
        return exc.message

    def _take_caller_id_menu(self, owner: int, token: str) -> LiveMenu | None:
        # The token says which menu; the menu (kept here) says which agent it is for.
        kind = self.menus.kind_of(owner, token)
        if kind is None or not kind.startswith(CALLER_ID_MENU.partition("{")[0]):
            return None
        return self.menus.take(owner, kind, token, "pick")

    async def _cmd_dnc(self, user: UserRef, args: str | None, _sent_at) -> None:
        await self._dnc_change(user, args, "dnc")

    async def _cmd_undnc(self, user: UserRef, args: str | None, _sent_at) -> None:
        await self._dnc_change(user, args, "undnc")

    async def _dnc_change(self, user: UserRef, args: str | None, command: str) -> None:
        if not await self._admin_allowed(user, command):
            return
        if args is None:
            await self.reply(user, texts.DNC_USAGE if command == "dnc" else texts.UNDNC_USAGE)
            return
        verdict = parse_on_any_route(self.app.plugins, self.app.routes().values(), args)
        if not verdict.ok:
            await self.reply(user, texts.dnc_bad_number(verdict.message))
            return
        assert verdict.e164 is not None  # accepted
        e164, actor, store = verdict.e164, self.actor(user), self.app.store
        if command == "dnc":
            added = await self.app.run_in_store(store.dnc_add, e164, reason="", actor=actor)
            text = texts.dnc_added(e164) if added else texts.dnc_already(e164)
        else:
            removed = await self.app.run_in_store(store.dnc_remove, e164, actor=actor)
            text = texts.dnc_removed(e164) if removed else texts.dnc_not_listed(e164)
        if not self.conversation.dnc_enforced():
            text += "\n" + texts.DNC_NOT_ENFORCED
        await self.reply(user, text)


def _split_phone_and_name(rest: str) -> tuple[str, str]:
    """``(212) 555-0123 Alice Smith`` -> (``(212) 555-0123``, ``Alice Smith``): the leading
    words that look like parts of a phone number, then the name."""
    words = rest.split()
    count = 0
    # A number pasted from a contact card: no-break spaces, non-breaking hyphens and
    # invisible marks read as /call reads them (corecall.numbers.plain_separators).
    while count < len(words) and _PHONE_TOKEN_RE.fullmatch(plain_separators(words[count])):
        count += 1
    phone = " ".join(words[:count])
    name = " ".join(words[count:])  # split() also removed line breaks; AgentAdmin checks it
    return phone, name


def _no_such_agent(agent_id: int) -> str:
    return (
        f"There is no agent with Telegram id {agent_id}. "
        f"Add one with /authorize {agent_id} <phone> [name]."
    )
