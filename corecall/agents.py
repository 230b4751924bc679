"""Agent administration shared by the CLI and the bot's admin commands.

Every change goes through here so both front ends validate the same way (phones through the
number policy, routes among the offered ones, caller IDs among the route's operator-owned
numbers) and every change is audited with its actor. Synchronous: the bot calls these on
the application's store thread (:meth:`corecall.app.App.run_in_store`).
"""

from __future__ import annotations

from corecall.app import App
from corecall.calls import effective_caller_id
from corecall.domain import Agent, Route
from corecall.errors import NotFoundError, PluginError, RefusedError
from corecall.fields import TELEGRAM_ID_MAX, check_agent_name, echo
from corecall.numbers import normalize_phone


class AgentAdmin:
    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def store(self):
        return self.app.store

    def _phone(self, phone: str) -> str:
        verdict = normalize_phone(
            phone,
            allowed_regions=self.app.allowed_regions(),
            allow_unlisted_nanp=self.app.allows_unlisted_nanp(),
        )
        if not verdict.ok:
            raise RefusedError(verdict.reason or "invalid", f"Agent phone: {verdict.message}")
        return verdict.e164  # type: ignore[return-value]

    def get(self, telegram_id: int) -> Agent:
        agent = self.store.get_agent(telegram_id)
        if agent is None:
            raise NotFoundError(
                f"no agent with Telegram id {telegram_id}; add one with "
                f"`corecall agents add --telegram-id {telegram_id} --phone ...` or /authorize"
            )
        return agent

    def add(
        self, telegram_id: int, phone: str, name: str = "", *, authorized: bool = False,
        actor: str,
    ) -> Agent:  # fmt: skip
        _check_id(telegram_id)
        return self.store.add_agent(
            telegram_id,
            self._phone(phone),
            check_agent_name(name),
            authorized=authorized,
            actor=actor,
        )

    def authorize(
        self, telegram_id: int, *, actor: str, phone: str | None = None, name: str = ""
    ) -> Agent:
        """Authorize an agent, creating them first when a phone is given (bot's /authorize)."""
        _check_id(telegram_id)
        if self.store.get_agent(telegram_id) is None:
            if phone is None:
                self.get(telegram_id)  # raises NotFoundError with the how-to
            return self.add(telegram_id, phone, name, authorized=True, actor=actor)  # type: ignore[arg-type]
        if phone is not None:
            self.store.set_phone(telegram_id, self._phone(phone), actor=actor)
        return self.store.set_authorized(telegram_id, True, actor=actor)

    def revoke(self, telegram_id: int, *, actor: str) -> Agent:
        self.get(telegram_id)
        return self.store.set_authorized(telegram_id, False, actor=actor)

    def remove(self, telegram_id: int, *, actor: str) -> None:
        self.get(telegram_id)
        self.store.remove_agent(telegram_id, actor=actor)

    def set_phone(self, telegram_id: int, phone: str, *, actor: str) -> Agent:
        self.get(telegram_id)
        return self.store.set_phone(telegram_id, self._phone(phone), actor=actor)

    def set_route(self, telegram_id: int, code: str, *, actor: str) -> Agent:
        agent = self.get(telegram_id)
        code = code.strip().upper()
        routes = self.app.routes()
        if code not in routes:
            offered = ", ".join(f"{c} ({r.name})" for c, r in sorted(routes.items())) or "none"
            raise RefusedError(
                "unknown_route", f"No route {echo(code)}. Offered routes: {offered}."
            )
        updated = self.store.set_route(telegram_id, code, actor=actor)
        if agent.caller_id and agent.caller_id not in routes[code].caller_ids:
            # The old caller ID belongs to the old route: never carry it across routes.
            updated = self.store.set_caller_id(telegram_id, None, actor=actor)
        return updated

    def set_caller_id(self, telegram_id: int, number: str, *, actor: str) -> Agent:
        agent = self.get(telegram_id)
        route = self.route_of(agent)
        if route is None:
            withdrawn = self.withdrawn_route(agent)
            whose = (
                f"Agent {telegram_id} has no route yet" if withdrawn is None
                else f"Agent {telegram_id}'s route {withdrawn} is no longer offered"
            )  # fmt: skip
            raise RefusedError(
                "no_route",
                f"{whose}; a caller ID belongs to a route. Set the route first (agents set-route).",
            )
        # Accept every format /call accepts: "(212) 555-0100" is +12125550100.
        verdict = normalize_phone(number, allow_unlisted_nanp=True)
        if verdict.ok:
            number = verdict.e164  # type: ignore[assignment]
        if number not in route.caller_ids:
            raise RefusedError(
                "caller_id_not_owned",
                f"{number} is not one of route {route.code}'s caller IDs. "
                f"Choose one of: {', '.join(route.caller_ids)}.",
            )
        return self.store.set_caller_id(telegram_id, number, actor=actor)

    def route_of(self, agent: Agent) -> Route | None:
        """The route the agent's calls use (the route resolvers' choice), for what is shown
        and checked outside a call (menus, lists, caller ID choices). When a resolver plugin
        fails (logged with its name), the agent's own selected route if it is still offered:
        one plugin's bug must not take every screen down. A call itself fails closed
        instead (:meth:`corecall.calls.CallManager.prepare`)."""
        routes = self.app.routes()
        try:
            return self.app.plugins.resolve_route(agent, routes)
        except PluginError:
            return routes.get(agent.route_code) if agent.route_code else None

    def withdrawn_route(self, agent: Agent) -> str | None:
        """The code of the route the agent chose when it is no longer offered (its plugin
        was disabled, or ``[routes.CODE]`` left the configuration) and no route applies
        instead, else None. Every screen that says "no route" says this instead: the
        agent did choose one, and must choose again."""
        code = agent.route_code
        if code is None or code in self.app.routes() or self.route_of(agent) is not None:
            return None
        return code

    def caller_id_line(self, agent: Agent) -> str:
        """``Caller ID: +15551234567 [D]`` — the line every menu showing a caller ID uses."""
        route = self.route_of(agent)
        if route is None:
            withdrawn = self.withdrawn_route(agent)
            if withdrawn is not None:
                return f"Caller ID: none [route {withdrawn} is no longer offered]"
            return "Caller ID: none yet [no route]"
        return f"Caller ID: {effective_caller_id(agent, route)} {route.tag}"


def _check_id(telegram_id: int) -> None:
    if not isinstance(telegram_id, int) or isinstance(telegram_id, bool) or telegram_id <= 0:
        raise RefusedError(
            "bad_telegram_id",
            f"{telegram_id!r} is not a Telegram user id; it is a positive number like 123456789.",
        )
    if telegram_id > TELEGRAM_ID_MAX:
        raise RefusedError("bad_telegram_id", f"{telegram_id} is too large for a Telegram id.")
