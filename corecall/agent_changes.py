"""Agent changes that know when they change nothing, shared by the bot and the CLI.

:class:`~corecall.agents.AgentAdmin` writes and audits whatever it is asked to, so revoking a
revoked agent wrote a second ``agent.revoke`` entry and the bot said "is revoked" again
(tester5). These wrap it: a change to the value already stored writes nothing, audits
nothing, and says so (:attr:`Change.changed`), as ``/dnc`` of a listed number does. Each
function reads the agent and changes it in one go, so run it where AgentAdmin's own calls
run (the bot: inside :meth:`corecall.calls.CallManager.change_agent`, on the store thread).

Raises what AgentAdmin raises: :class:`~corecall.errors.NotFoundError` for an unknown agent,
:class:`~corecall.errors.RefusedError` for a phone, name or caller ID that is refused.
"""

from __future__ import annotations

import attrs

from corecall.agents import AgentAdmin
from corecall.domain import Agent
from corecall.errors import RefusedError
from corecall.fields import check_agent_name
from corecall.numbers import normalize_phone


class NameNotChanged(RefusedError):
    """An agent on record was given another name: nothing was changed (the store has no
    way to rename an agent; ``agent`` is as stored)."""

    def __init__(self, agent: Agent) -> None:
        named = f"is named {agent.name}" if agent.name else "has no name"
        super().__init__(
            "name_not_changed",
            f"Nothing was changed: agent {agent.telegram_id} {named}, and a name can only be "
            "given when an agent is added.",
        )
        self.agent = agent


@attrs.frozen
class Change:
    """What an agent change did: ``agent`` as stored now, ``before`` as it was (None when
    the agent was added), and the fields that changed (empty: nothing was written)."""

    agent: Agent
    before: Agent | None
    fields: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.fields)


def authorize(
    admin: AgentAdmin, telegram_id: int, *, actor: str, phone: str | None = None,
    name: str | None = None,
) -> Change:  # fmt: skip
    """Authorize an agent, adding them (with ``phone`` and ``name``) when new.

    For an agent on record, ``phone`` replaces theirs when it differs. A ``name`` other than
    theirs raises :class:`RefusedError` (``name_not_changed``) before anything is written:
    the store has no way to rename an agent, and a command must not half-apply what was
    typed (tester5: the phone was changed, the name silently dropped)."""
    before = admin.store.get_agent(telegram_id)
    if before is None:
        agent = admin.authorize(telegram_id, actor=actor, phone=phone, name=name or "")
        return Change(agent, None, ("added",))
    e164 = _agent_phone(admin, phone) if phone is not None else before.phone  # refused first
    if name is not None and check_agent_name(name) != before.name:
        raise NameNotChanged(before)
    agent, fields = before, []
    if e164 != before.phone:
        agent = admin.set_phone(telegram_id, e164, actor=actor)
        fields.append("phone")
    if not before.authorized:
        agent = admin.authorize(telegram_id, actor=actor)
        fields.append("authorized")
    return Change(agent, before, tuple(fields))


def revoke(admin: AgentAdmin, telegram_id: int, *, actor: str) -> Change:
    """Stop an agent from placing calls; nothing is written when they already can't."""
    before = admin.get(telegram_id)
    if not before.authorized:
        return Change(before, before)
    return Change(admin.revoke(telegram_id, actor=actor), before, ("authorized",))


def set_phone(admin: AgentAdmin, telegram_id: int, phone: str, *, actor: str) -> Change:
    """Set the phone an agent is rung on first; nothing is written when it is theirs."""
    before = admin.get(telegram_id)
    if _agent_phone(admin, phone) == before.phone:
        return Change(before, before)
    return Change(admin.set_phone(telegram_id, phone, actor=actor), before, ("phone",))


def set_route(admin: AgentAdmin, telegram_id: int, code: str, *, actor: str) -> Change:
    """Set an agent's route; nothing is written when they are on it already (the route
    the resolver gives them, as every screen shows it)."""
    before = admin.get(telegram_id)
    current = admin.route_of(before)
    if current is not None and current.code == code.strip().upper():
        return Change(before, before)
    agent = admin.set_route(telegram_id, code, actor=actor)
    fields = ("route",) if agent.caller_id == before.caller_id else ("route", "caller_id")
    return Change(agent, before, fields)


def set_caller_id(admin: AgentAdmin, telegram_id: int, number: str, *, actor: str) -> Change:
    """Assign one of the agent's route's caller IDs; nothing is written when it is theirs
    already and still one of the route's (else AgentAdmin checks and refuses it)."""
    before = admin.get(telegram_id)
    route = admin.route_of(before)
    verdict = normalize_phone(number, allow_unlisted_nanp=True)  # as AgentAdmin reads it
    if route is not None and verdict.ok and verdict.e164 == before.caller_id:
        if verdict.e164 in route.caller_ids:
            return Change(before, before)
    agent = admin.set_caller_id(telegram_id, number, actor=actor)
    return Change(agent, before, ("caller_id",))


def _agent_phone(admin: AgentAdmin, phone: str) -> str:
    """``phone`` as AgentAdmin would store it (E.164), or its RefusedError: AgentAdmin's
    own check, so that "the same phone" means what it stores."""
    return admin._phone(phone)
