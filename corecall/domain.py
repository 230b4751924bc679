"""Domain types shared by the core, the plugins and the front ends.

Plain attrs classes: no I/O, no plugin manager, safe to import anywhere.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections.abc import Iterable
from typing import Any

import attrs

E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def utcnow() -> _dt.datetime:
    """Timezone-aware UTC now; every timestamp corecall stores is UTC."""
    return _dt.datetime.now(_dt.UTC)


def is_e164(value: object) -> bool:
    """True when ``value`` is a string made only of ``+`` and 7-15 digits (E.164 shape)."""
    return isinstance(value, str) and E164_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------- numbers


@attrs.frozen
class NumberVerdict:
    """What the number policy says about a piece of text.

    Accepted: ``ok`` is True and ``e164`` holds ``+`` and digits only.
    Refused: ``ok`` is False, ``reason`` is a stable code (``empty``, ``not_a_number``,
    ``invalid``, ``extension``, ``emergency``, ``short_code``, ``premium_rate``,
    ``shared_cost``, ``country_not_allowed``) and ``message`` says what was wrong and
    what works.
    """

    ok: bool
    e164: str | None = None
    reason: str | None = None
    message: str = ""
    region: str | None = None

    @classmethod
    def accept(cls, e164: str, region: str | None = None) -> NumberVerdict:
        if not is_e164(e164):  # defence in depth: nothing else may ever be "accepted"
            raise ValueError(f"not an E.164 number: {e164!r}")
        return cls(ok=True, e164=e164, region=region)

    @classmethod
    def refuse(cls, reason: str, message: str) -> NumberVerdict:
        return cls(ok=False, reason=reason, message=message)

    def as_json(self) -> dict:
        if self.ok:
            return {"ok": True, "e164": self.e164}
        return {"ok": False, "reason": self.reason, "message": self.message}


@attrs.frozen
class Refusal:
    """A policy plugin's refusal of a call: stable ``reason`` code plus a human message.

    ``message`` is for the agent who typed ``/call``; ``operator_message``, when the
    agent's wording would mislead an operator at a shell (``corecall policy check``: "you",
    "ask your admin"), says the same to the operator (None: ``message`` serves both)."""

    reason: str
    message: str
    plugin: str | None = None
    operator_message: str | None = None


# --------------------------------------------------------------------------- routes


@attrs.frozen
class RouteDefinition:
    """What a route plugin registers: the route's identity, not its wiring.

    ``code`` is what agents type (``/route M``) and what is stored; ``name`` is the word
    used in sentences ("Development"); ``button`` is the text of its selection button.
    """

    code: str
    name: str
    button: str
    description: str = ""


@attrs.frozen
class TrunkConfig:
    """One trunk from the configuration: which driver runs it and the driver's options."""

    name: str
    driver: str
    #: The driver's options for this trunk: an instance of the driver's ``OPTIONS`` class once
    #: the application validated the table, the raw keys (a dict) before that or when the
    #: driver declares no options class.
    options: Any = attrs.field(factory=dict, hash=False)


@attrs.frozen
class Route:
    """A usable route: a plugin's definition joined with its configuration."""

    code: str
    name: str
    button: str
    trunk: TrunkConfig
    caller_ids: tuple[str, ...]
    countries: tuple[str, ...] = ("US", "CA")
    plugin: str | None = None
    #: Accept well-formed US/Canadian numbers that phonenumbers' data does not list yet
    #: (new area codes); special, premium and other-country codes stay refused.
    allow_unlisted_nanp: bool = False
    confirm: str = "key"  # "key": the agent presses 1 before the target is dialed; "none"
    confirm_timeout: int = 10  # seconds
    agent_leg_caller_id: str = "route"  # caller ID on the agent's leg: "route" or "target"

    @property
    def tag(self) -> str:
        return f"[{self.code}]"


# --------------------------------------------------------------------------- agents


@attrs.frozen
class Agent:
    """An agent as stored. ``phone`` and ``caller_id`` are untrusted when read back:
    re-check them with :func:`is_e164` before they go anywhere near the PBX."""

    telegram_id: int
    phone: str
    name: str = ""
    authorized: bool = False
    route_code: str | None = None
    caller_id: str | None = None
    created_at: _dt.datetime | None = None


# --------------------------------------------------------------------------- calls


class CallState(enum.StrEnum):
    """Where a call is. Only ever moves forward; ``ENDED`` is final."""

    QUEUED = "queued"
    DIALING_AGENT = "dialing_agent"
    AGENT_RINGING = "agent_ringing"
    AGENT_ANSWERED = "agent_answered"
    #: The agent's phone answered and is being asked to press 1 (routes with
    #: ``confirm = "key"``); only a 1 moves the call on to DIALING_TARGET.
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    DIALING_TARGET = "dialing_target"
    TARGET_RINGING = "target_ringing"
    CONNECTED = "connected"
    ENDED = "ended"

    @property
    def order(self) -> int:
        return _STATE_ORDER[self]

    @property
    def is_final(self) -> bool:
        return self is CallState.ENDED


_STATE_ORDER = {s: i for i, s in enumerate(CallState)}


class EndReason(enum.StrEnum):
    """Why a call ended. Every started call ends with exactly one of these."""

    COMPLETED = "completed"
    AGENT_NO_ANSWER = "agent_no_answer"
    AGENT_BUSY = "agent_busy"
    AGENT_REJECTED = "agent_rejected"
    #: The agent's phone answered but nobody pressed 1 (no key within the confirmation
    #: timeout, a wrong key twice, or a hang-up during the prompt): most often the agent's
    #: voicemail. The target was never dialed.
    AGENT_NOT_CONFIRMED = "agent_not_confirmed"
    TARGET_NO_ANSWER = "target_no_answer"
    TARGET_BUSY = "target_busy"
    TARGET_UNREACHABLE = "target_unreachable"
    CANCELLED = "cancelled"  # the agent hung up before the target answered
    TIMED_OUT = "timed_out"  # corecall hung up: the call reached a time limit (call --timeout)
    TRUNK_UNAVAILABLE = "trunk_unavailable"
    UNKNOWN = "unknown"  # the PBX lost track of it; we say so rather than guess


@attrs.frozen
class AgentActivity:
    """How busy an agent is right now, and the configured limits (for policy plugins)."""

    live_calls: int = 0
    calls_last_minute: int = 0
    max_live_calls: int = 1
    max_calls_per_minute: int = 6


@attrs.frozen
class CallRequest:
    """A call about to be placed, after number parsing and route resolution,
    before the policy check. Policy plugins see this.

    ``at`` is the moment the call would be placed (timezone-aware UTC): now for a real
    call, the ``--at`` moment for ``corecall policy check``. Policies that depend on time
    (calling hours, repeat-call caps) must use it, never the wall clock. ``dry_run`` is True
    for ``corecall policy check``: nothing will be dialed, so a policy must not record or
    change anything.
    """

    agent: Agent
    target: str  # E.164
    route: Route
    caller_id: str  # E.164, one of route.caller_ids
    activity: AgentActivity = AgentActivity()
    at: _dt.datetime = attrs.field(factory=utcnow)
    dry_run: bool = False


@attrs.frozen
class CallRecord:
    """A call as stored: who, target, route, caller ID, each stage's time, final state."""

    id: str
    agent_id: int
    agent_phone: str
    target: str
    route_code: str
    trunk: str
    caller_id: str
    state: CallState = CallState.QUEUED
    reason: EndReason | None = None
    detail: str = ""
    created_at: _dt.datetime | None = None
    dialing_agent_at: _dt.datetime | None = None
    agent_ringing_at: _dt.datetime | None = None
    agent_answered_at: _dt.datetime | None = None
    dialing_target_at: _dt.datetime | None = None
    target_ringing_at: _dt.datetime | None = None
    connected_at: _dt.datetime | None = None
    ended_at: _dt.datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def ring_seconds(self) -> float | None:
        """Time the target rang before answering (or until the call ended unanswered)."""
        start = self.dialing_target_at or self.target_ringing_at
        end = self.connected_at or self.ended_at
        if start is None or end is None:
            return None
        return max(0.0, (end - start).total_seconds())

    @property
    def talk_seconds(self) -> float | None:
        """Time the two parties were connected."""
        if self.connected_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.connected_at).total_seconds())

    @property
    def may_have_dialed_target(self) -> bool:
        """False only when the record shows the call ended before its target was dialed:
        it ended for one of :data:`ENDED_BEFORE_TARGET` (the agent's phone did not answer,
        was busy or declined, nobody pressed 1, the trunk failed, the agent or corecall
        hung up first) and none of :data:`TARGET_STAGE_FIELDS` is set. A live call may
        dial its target any moment, and an end whose reason does not tell (``unknown``:
        the PBX lost track; none recorded) is counted as dialed: the repeat-call cap errs
        on the called party's side. Stores answer ``calls_to_target_since`` by this rule."""
        stamps = [getattr(self, name) for name in TARGET_STAGE_FIELDS]
        return may_have_dialed_target(self.state, self.reason, stamps)


#: The stored time of each stage. AWAITING_CONFIRMATION has none: the prompt starts as the
#: agent answers (agent_answered_at), and how long the agent took to press 1 is
#: dialing_target_at - agent_answered_at, so the schema stays as it is.
STAGE_TIMESTAMP_FIELD = {
    CallState.DIALING_AGENT: "dialing_agent_at",
    CallState.AGENT_RINGING: "agent_ringing_at",
    CallState.AGENT_ANSWERED: "agent_answered_at",
    CallState.DIALING_TARGET: "dialing_target_at",
    CallState.TARGET_RINGING: "target_ringing_at",
    CallState.CONNECTED: "connected_at",
    CallState.ENDED: "ended_at",
}

#: The stage times of the target's leg: any one of them set means the target was dialed
#: (a driver may skip a stage, so all three are read).
TARGET_STAGE_FIELDS = ("dialing_target_at", "target_ringing_at", "connected_at")

#: The end reasons that mean the call ended before its target was dialed, when no
#: :data:`TARGET_STAGE_FIELDS` time is on record (with one, a ``cancelled`` or ``timed_out``
#: call had dialed it). The bot tells the agent "… was not dialed" for the first four.
ENDED_BEFORE_TARGET = frozenset({
    EndReason.AGENT_NO_ANSWER, EndReason.AGENT_BUSY, EndReason.AGENT_REJECTED,
    EndReason.AGENT_NOT_CONFIRMED, EndReason.TRUNK_UNAVAILABLE, EndReason.CANCELLED,
    EndReason.TIMED_OUT,
})  # fmt: skip


def may_have_dialed_target(
    state: str, reason: str | None, target_stamps: Iterable[object | None]
) -> bool:
    """The rule of :attr:`CallRecord.may_have_dialed_target` on a record's stored values
    (``state`` and ``reason`` as stored text or enums; ``target_stamps`` the values of
    :data:`TARGET_STAGE_FIELDS`, in any stored form), so that a store applies it to rows
    without building records."""
    if state != CallState.ENDED:
        return True
    if any(stamp is not None for stamp in target_stamps):
        return True
    return reason not in ENDED_BEFORE_TARGET


@attrs.frozen
class DncEntry:
    """One number on the operator's do-not-call (DNC) list.

    ``number`` is E.164; ``reason`` is the operator's free text (never shown to agents);
    ``added_by`` is the actor ("cli:alice", "telegram:123"); ``added_at`` is UTC.
    """

    number: str
    reason: str = ""
    added_by: str = ""
    added_at: _dt.datetime | None = None


@attrs.frozen
class AuditEntry:
    """One admin action: who did what to whom, when."""

    actor: str  # "cli:<user>" or "telegram:<id>"
    action: str  # e.g. "agent.authorize"
    subject: str = ""  # e.g. the agent's telegram id
    detail: str = ""
    at: _dt.datetime | None = None
    id: int | None = None


@attrs.frozen
class OutboxMessage:
    """One event waiting for (or done with) delivery to one destination, as the store's
    outbox keeps it (the webhooks plugin is its user).

    ``seq`` is the store's sequence number: delivery goes in ``seq`` order per destination.
    ``event_id`` is the idempotency id a receiver deduplicates on (unique per destination).
    ``body`` is the event as JSON text, written before any attempt to send it.
    ``next_attempt_at`` is when the next try is due (UTC); ``delivered_at`` is set once a
    receiver accepted it; ``attempts`` counts tries that failed; ``last_error`` says why the
    last one failed.
    """

    destination: str
    event_id: str
    topic: str
    body: str
    ordering_key: str = ""
    created_at: _dt.datetime | None = None
    seq: int | None = None
    attempts: int = 0
    next_attempt_at: _dt.datetime | None = None
    delivered_at: _dt.datetime | None = None
    last_error: str = ""
