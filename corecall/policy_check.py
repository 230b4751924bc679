"""The policy dry run (``corecall policy check``): the whole pre-dial pipeline for a
hypothetical call at a given moment, with every step's verdict, and nothing dialed,
recorded or changed.

The steps are the ones :meth:`corecall.calls.CallManager.prepare` runs, in its order: the
agent's authorization (when an agent is named), the route (``--route``, else the agent's
own through ``corecall_resolve_route``), the number (``corecall_parse_number`` and the
number policy), then **every** ``corecall_check_call`` plugin (a real call stops at the
first refusal; the dry run asks them all so the operator sees every reason at once).
"""

from __future__ import annotations

import datetime as _dt

import attrs

from corecall.app import App
from corecall.calls import (
    OPERATOR_AGENT_ID,
    authorization_refusal,
    effective_caller_id,
    own_number_refusal,
)
from corecall.domain import Agent, AgentActivity, CallRequest, Refusal
from corecall.errors import PluginError
from corecall.fields import echo
from corecall.plugins import plugin_failed_message


@attrs.frozen
class StepVerdict:
    """One step's answer: ``step`` is ``agent``, ``route``, ``number`` or a plugin's NAME."""

    step: str
    ok: bool
    message: str = ""
    reason: str | None = None

    def as_json(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class DryRun:
    target: str  # as given
    e164: str | None
    route: str | None
    agent: int | None
    at: _dt.datetime
    steps: tuple[StepVerdict, ...]

    @property
    def refusal(self) -> StepVerdict | None:
        return next((s for s in self.steps if not s.ok), None)

    @property
    def ok(self) -> bool:
        return self.refusal is None

    def as_json(self) -> dict:
        first = self.refusal
        return {
            "ok": self.ok,
            "reason": first.reason if first else None,
            "plugin": first.step if first else None,
            "message": first.message if first else "",
            "target": self.target, "e164": self.e164, "route": self.route,
            "agent": self.agent, "at": self.at.isoformat(),
            "checks": [s.as_json() for s in self.steps],
        }  # fmt: skip


def dry_run(
    app: App, target: str, *, at: _dt.datetime, route_code: str | None = None,
    agent_id: int | None = None,
) -> DryRun:  # fmt: skip
    """Run every pre-dial check for calling ``target`` at ``at`` (timezone-aware).

    Reads the store (the agent, their recent calls, the policies' data) and writes nothing.
    """
    steps: list[StepVerdict] = []

    def done(e164: str | None = None, route: str | None = None) -> DryRun:
        return DryRun(target, e164, route, agent_id, at, tuple(steps))

    if agent_id is None:
        agent = Agent(OPERATOR_AGENT_ID, phone="", name="policy check", authorized=True,
                      route_code=route_code)  # fmt: skip
    else:
        found = app.store.get_agent(agent_id)
        refused = authorization_refusal(found, agent_id)
        if refused is not None:
            message = _agent_problem(found, agent_id, refused.reason)
            steps.append(StepVerdict("agent", False, message, refused.reason))
            return done()
        agent = found  # type: ignore[assignment]
        steps.append(StepVerdict("agent", True, f"agent {agent_id} is authorized"))
    routes = app.routes()
    if route_code is not None:
        route = routes.get(route_code)
        if route is None:
            known = ", ".join(sorted(routes)) or "none"
            message = f"Route {echo(route_code)} is not offered (offered routes: {known})."
            steps.append(StepVerdict("route", False, message, "no_route"))
            return done()
    else:
        try:
            route = app.plugins.resolve_route(agent, routes)
        except PluginError as exc:  # a call would fail closed the same way
            steps.append(StepVerdict("route", False, plugin_failed_message(exc), "policy_error"))
            return done()
        if route is None:
            message = "No route: pass --route CODE, or the agent has not chosen a route."
            if agent.route_code is not None and agent.route_code not in routes:
                known = ", ".join(sorted(routes)) or "none"
                message = (
                    f"No route: the agent's route {echo(agent.route_code)} is no longer offered "
                    f"(offered routes: {known}); pass --route CODE, or set theirs with "
                    f"`corecall agents set-route {agent.telegram_id} CODE`."
                )
            steps.append(StepVerdict("route", False, message, "no_route"))
            return done()
    steps.append(StepVerdict("route", True, f"route {route.code} ({route.name})"))
    verdict = app.plugins.parse_number(target, route)
    if not verdict.ok:
        steps.append(StepVerdict("number", False, verdict.message, verdict.reason))
        return done(route=route.code)
    e164 = verdict.e164
    own = own_number_refusal(e164, agent.phone, routes)  # type: ignore[arg-type]
    if own is not None:
        steps.append(StepVerdict("number", False, own.message, own.reason))
        return done(route=route.code)
    steps.append(StepVerdict("number", True, f"{e164} may be called on route {route.code}"))
    limits = app.config.limits
    recent = app.store.count_calls_since(agent.telegram_id, at - _dt.timedelta(minutes=1))
    live = sum(1 for c in app.store.unfinished_calls() if c.agent_id == agent.telegram_id)
    request = CallRequest(
        agent=agent, target=e164, route=route,  # type: ignore[arg-type]
        caller_id=effective_caller_id(agent, route),
        activity=AgentActivity(
            live_calls=live if agent_id is not None else 0,
            calls_last_minute=recent if agent_id is not None else 0,
            max_live_calls=limits.live_calls_per_agent,
            max_calls_per_minute=limits.calls_per_minute,
        ),
        at=at, dry_run=True,
    )  # fmt: skip
    for plugin, refusal in app.plugins.policy_verdicts(request):
        steps.append(_plugin_step(plugin, refusal))
    return done(e164, route.code)


def _agent_problem(agent: Agent | None, agent_id: int, reason: str) -> str:
    """Why the agent may not call, in the operator's words (the bot's "ask your admin" is
    for the agent: here the reader is the admin, at a shell)."""
    if agent is None:
        return (
            f"Agent {agent_id} is not on record: see `corecall agents list`, or add them with "
            f"`corecall agents add --telegram-id {agent_id} --phone NUMBER --authorize`."
        )
    who = f"Agent {agent_id}" + (f" ({agent.name})" if agent.name else "")
    if reason == "not_authorized":
        return (
            f"{who} is not authorized to place calls: `corecall agents authorize {agent_id}` "
            "allows them."
        )
    return (
        f"{who} has no valid phone of their own on record ({agent.phone or 'none'}), so "
        f"corecall could not ring them: `corecall agents set-phone {agent_id} NUMBER`."
    )


def _plugin_step(plugin: str, refusal: Refusal | None) -> StepVerdict:
    if refusal is None:
        return StepVerdict(plugin, True, "allowed")
    message = refusal.operator_message or refusal.message
    return StepVerdict(refusal.plugin or plugin, False, message, refusal.reason)
