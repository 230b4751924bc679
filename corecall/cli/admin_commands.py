"""``corecall agents ...``, ``corecall calls list`` and ``corecall audit``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from corecall.cli.common import (
    actor,
    console,
    limit_option,
    print_json,
    state,
)
from corecall.cli.tables import print_table
from corecall.fields import TELEGRAM_ID_MAX

if TYPE_CHECKING:
    from corecall.agent_changes import Change
    from corecall.agents import AgentAdmin
    from corecall.domain import Agent, CallRecord

agents_app = typer.Typer(help="Manage agents (every change is audited).", no_args_is_help=True)
calls_app = typer.Typer(help="Read the call record.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(agents_app, name="agents")
    app.add_typer(calls_app, name="calls")
    app.command("audit")(audit)


def _admin() -> AgentAdmin:
    from corecall.agents import AgentAdmin  # the store, plugins and number policy: on use

    return AgentAdmin(state.app())


def _asdict(value) -> dict:
    import attrs

    return attrs.asdict(value)


def _agent_json(agent: Agent) -> dict:
    data = _asdict(agent)
    data["created_at"] = agent.created_at.isoformat() if agent.created_at else None
    return data


def _route_cell(admin, agent: Agent) -> str:
    """The agent's route code, saying so when it is no longer offered."""
    if agent.route_code is None:
        return "none"
    gone = admin.withdrawn_route(agent) is not None
    return f"{agent.route_code} (no longer offered)" if gone else agent.route_code


def _show(agent: Agent, verb: str) -> None:
    route = _route_cell(_admin(), agent)
    console.print(
        f"{verb} agent {agent.telegram_id} ({agent.name or 'no name'}): phone "
        f"{agent.phone}, route {route}, authorized {'yes' if agent.authorized else 'no'}"
    )


def _unchanged(agent: Agent, what: str) -> None:
    """A change to what was already true: nothing was written or audited (exit 0)."""
    label = f"{agent.telegram_id} ({agent.name})" if agent.name else str(agent.telegram_id)
    console.print(f"agent {label} {what}; nothing changed")


def _show_change(change: Change, verb: str, unchanged: str) -> None:
    if change.changed:
        _show(change.agent, verb)
    else:
        _unchanged(change.agent, unchanged)


TELEGRAM_ID = typer.Argument(
    ..., help="The agent's numeric Telegram user id.", min=1, max=TELEGRAM_ID_MAX
)


@agents_app.command("add")
def agents_add(
    telegram_id: int = typer.Option(
        ..., "--telegram-id", help="Numeric Telegram user id.", min=1, max=TELEGRAM_ID_MAX
    ),
    phone: str = typer.Option(..., "--phone", help="The agent's own phone, e.g. +12125550123."),
    name: str = typer.Option("", "--name", help="Display name."),
    authorize: bool = typer.Option(False, "--authorize", help="Authorize right away."),
):
    """Add an agent (not authorized unless --authorize)."""
    _show(_admin().add(telegram_id, phone, name, authorized=authorize, actor=actor()), "added")


@agents_app.command("list")
def agents_list(json_: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """All agents."""
    admin = _admin()
    agents = admin.store.list_agents()
    if json_:
        print_json([_agent_json(a) for a in agents])
        return
    rows = [
        (a.telegram_id, a.name, a.phone, "yes" if a.authorized else "no", _route_cell(admin, a),
         admin.caller_id_line(a).removeprefix("Caller ID: "))
        for a in agents
    ]  # fmt: skip
    print_table(
        ("telegram id", "name", "phone", "authorized", "route", "caller id"), rows,
        empty="no agents yet; add one with `corecall agents add`",
    )  # fmt: skip


@agents_app.command("remove")
def agents_remove(telegram_id: int = TELEGRAM_ID):
    """Remove an agent (their call records stay)."""
    _admin().remove(telegram_id, actor=actor())
    console.print(f"removed agent {telegram_id}")


@agents_app.command("authorize")
def agents_authorize(telegram_id: int = TELEGRAM_ID):
    """Allow an agent to place calls."""
    from corecall import agent_changes

    change = agent_changes.authorize(_admin(), telegram_id, actor=actor())
    _show_change(change, "authorized", "was already authorized")


@agents_app.command("revoke")
def agents_revoke(telegram_id: int = TELEGRAM_ID):
    """Stop an agent from placing calls."""
    from corecall import agent_changes

    change = agent_changes.revoke(_admin(), telegram_id, actor=actor())
    _show_change(change, "revoked", "was already revoked")


@agents_app.command("set-phone")
def agents_set_phone(telegram_id: int = TELEGRAM_ID, phone: str = typer.Argument(...)):
    """Set the phone Asterisk rings first."""
    from corecall import agent_changes

    change = agent_changes.set_phone(_admin(), telegram_id, phone, actor=actor())
    _show_change(change, "updated", f"is already rung on {change.agent.phone}")


@agents_app.command("set-route")
def agents_set_route(telegram_id: int = TELEGRAM_ID, code: str = typer.Argument(...)):
    """Set the agent's route (M, D, ...)."""
    from corecall import agent_changes

    change = agent_changes.set_route(_admin(), telegram_id, code, actor=actor())
    _show_change(change, "updated", f"is already on route {code.strip().upper()}")


@agents_app.command("set-caller-id")
def agents_set_caller_id(telegram_id: int = TELEGRAM_ID, number: str = typer.Argument(...)):
    """Assign one of the agent's route's operator-owned caller IDs."""
    from corecall import agent_changes

    admin = _admin()
    change = agent_changes.set_caller_id(admin, telegram_id, number, actor=actor())
    line = admin.caller_id_line(change.agent)
    if change.changed:
        console.print(f"agent {telegram_id}: {line}")
    else:
        _unchanged(change.agent, f"already calls with {line}")


def _call_json(call: CallRecord) -> dict:
    data = _asdict(call)
    for key, value in list(data.items()):
        if hasattr(value, "isoformat"):
            data[key] = value.isoformat()
    data["state"] = call.state.value
    data["reason"] = call.reason.value if call.reason else None
    data["ring_seconds"] = call.ring_seconds
    data["talk_seconds"] = call.talk_seconds
    return data


@calls_app.command("list")
def calls_list(
    agent: int = typer.Option(
        None,
        "--agent",
        help="Only this agent's calls (0: operators' test calls).",
        min=0,
        max=TELEGRAM_ID_MAX,
    ),
    limit: int = limit_option(20),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
):
    """Recent calls, newest first."""
    calls = state.app().store.recent_calls(agent, limit)
    if json_:
        print_json([_call_json(c) for c in calls])
        return
    from corecall.calls import OPERATOR_AGENT_ID

    rows = []
    for c in calls:
        talk = f"{c.talk_seconds:.0f}s" if c.talk_seconds is not None else "-"
        started = c.created_at.strftime("%Y-%m-%d %H:%M:%S") if c.created_at else "-"
        agent_id = "operator" if c.agent_id == OPERATOR_AGENT_ID else c.agent_id
        reason = c.reason.value if c.reason else "-"
        if c.detail:
            reason += f" ({c.detail})"
        rows.append((started, agent_id, c.agent_phone, c.target, c.route_code, c.caller_id,
                     c.state.value, talk, reason))  # fmt: skip
    headers = ("started", "agent", "agent phone", "target", "route", "caller id", "state",
               "talk", "reason")  # fmt: skip
    print_table(headers, rows, wrap=("reason",), empty="no calls yet")


def audit(
    limit: int = limit_option(50),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
):
    """The audit log of admin actions, newest first."""
    entries = state.app().store.audit_log(limit)
    if json_:
        print_json([_audit_json(e) for e in entries])
        return
    rows = []
    for e in entries:
        when = e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "-"
        rows.append((when, e.actor, e.action, e.subject, _detail_text(e.detail)))
    print_table(("when", "actor", "action", "subject", "detail"), rows, wrap=("detail",),
                empty="no admin actions yet")  # fmt: skip


def _detail(detail: str):
    """The stored detail as data: a JSON object when it is one, else the text."""
    try:
        value = json.loads(detail)
    except (TypeError, ValueError):
        return detail or None
    return value if isinstance(value, dict) else detail


def _audit_json(entry) -> dict:
    data = _asdict(entry)
    data["at"] = entry.at.isoformat() if entry.at else None  # ISO 8601, like calls --json
    data["detail"] = _detail(entry.detail)
    return data


def _detail_text(detail: str) -> str:
    """``phone: +1… → +1…`` for a change, ``key=value`` pairs for other objects."""
    value = _detail(detail)
    if not isinstance(value, dict):
        return value or ""
    if set(value) == {"field", "old", "new"}:
        return f"{value['field']}: {_word(value['old'])} → {_word(value['new'])}"
    return " ".join(f"{k}={_word(v)}" for k, v in value.items())


def _word(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value != "" else '""'
