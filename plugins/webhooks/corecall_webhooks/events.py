"""The JSON events the webhooks plugin sends: one per call state change, one per admin action.

A request's body is ``{"events": [event, ...]}``, oldest first (one event when they trickle
in; up to ``max_batch`` when a backlog is sent). Every event is an object::

    {"id": "call-<call id>-<n>",          # the idempotency id (also in Idempotency-Key)
     "type": "call.state_changed",         # or "admin.action"
     "occurred_at": "2026-11-29T21:00:00.123456+00:00",   # UTC, ISO 8601
     "sequence": 3,                        # per call: the state's stage number, 0 queued
                                           #   ... 8 ended (CallState.order; skipped stages
                                           #   leave gaps); per action: its audit id
     "data": {...}}

``data`` of ``call.state_changed``: ``call_id``, ``agent_id``, ``route``, ``trunk``,
``target`` and ``caller_id`` (E.164), ``state``, ``previous`` (or null), ``reason`` and
``detail`` (when ended), ``ring_seconds`` and ``talk_seconds`` (seconds, or null) and
``stages`` (state -> UTC time of every stage reached so far).

``data`` of ``admin.action``: the audit entry: ``audit_id``, ``actor``, ``action``,
``subject``, ``detail``.

Ids are derived from what they describe (a call and its state; an audit entry), so writing
the same event twice can never produce two deliveries.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
from typing import Any

from corecall.domain import STAGE_TIMESTAMP_FIELD, AuditEntry, CallRecord, CallState, utcnow

CALL_STATE_CHANGED = "call.state_changed"
ADMIN_ACTION = "admin.action"


def _iso(value: _dt.datetime | None) -> str | None:
    """ISO 8601 in UTC (``+00:00``). A call's stage times recur in each of its events (the
    ``stages`` map), so each is formatted once: ``isoformat()`` of an aware datetime costs
    microseconds, times 8 stages, times 8 events per call."""
    if value is None:
        return None
    if value.tzinfo is None:  # not from the store (always aware); shown as it is
        return value.isoformat()
    return _utc_iso(value)


@functools.lru_cache(maxsize=4096)  # ~ the stage times of 500 calls in flight
def _utc_iso(value: _dt.datetime) -> str:
    # Keyed by the instant (equal aware datetimes hash alike whatever their offset), so
    # the text is always the UTC one.
    return value.astimezone(_dt.UTC).isoformat()


#: (stage name, CallRecord field) of every stage with a time; (state -> its order, name).
#: Looked up once: an enum member's ``.value`` is a descriptor call, and a burst of calls
#: builds 8 events per call.
_STAGES = tuple((stage.value, field) for stage, field in STAGE_TIMESTAMP_FIELD.items())
_STATE = {state: (state.order, state.value) for state in CallState}


def call_event(call: CallRecord, previous: CallState | None) -> dict[str, Any]:
    state = CallState(call.state)
    order, name = _STATE[state]
    stages = {
        stage: _iso(stamp) for stage, field in _STAGES
        if (stamp := getattr(call, field)) is not None
    }  # fmt: skip
    occurred = getattr(call, STAGE_TIMESTAMP_FIELD.get(state, ""), None) or call.created_at
    return {
        "id": f"call-{call.id}-{order}",
        "type": CALL_STATE_CHANGED,
        "occurred_at": _iso(occurred or utcnow()),
        "sequence": order,
        "data": {
            "call_id": call.id,
            "agent_id": call.agent_id,
            "route": call.route_code,
            "trunk": call.trunk,
            "target": call.target,
            "caller_id": call.caller_id,
            "state": name,
            "previous": _STATE[previous][1] if previous is not None else None,
            "reason": call.reason.value if call.reason is not None else None,
            "detail": call.detail if state is CallState.ENDED else "",
            "ring_seconds": call.ring_seconds,
            "talk_seconds": call.talk_seconds,
            "created_at": _iso(call.created_at),
            "stages": stages,
        },
    }


def admin_event(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": f"audit-{entry.id}",
        "type": ADMIN_ACTION,
        "occurred_at": _iso(entry.at or utcnow()),
        "sequence": entry.id,
        "data": {
            "audit_id": entry.id,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "detail": entry.detail,
        },
    }


def batch_body(bodies: list[str]) -> str:
    """The request body for events already encoded with :func:`encode`, oldest first:
    ``{"events":[...]}``."""
    return '{"events":[' + ",".join(bodies) + "]}"


def batch_key(event_ids: list[str]) -> str:
    """The request's Idempotency-Key: the same for a retry of the same events. Receivers
    should still deduplicate on each event's ``id`` (a retry may carry more events)."""
    return hashlib.sha256("\n".join(event_ids).encode("utf-8")).hexdigest()[:32]


def encode(event: dict[str, Any]) -> str:
    """The exact body sent (and signed): compact JSON, UTF-8, keys in a stable order."""
    return _ENCODER.encode(event)


#: One encoder for every event (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


__all__ = [
    "ADMIN_ACTION",
    "CALL_STATE_CHANGED",
    "admin_event",
    "batch_body",
    "batch_key",
    "call_event",
    "encode",
]
