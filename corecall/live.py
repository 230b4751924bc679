"""The live view: every live call and today's totals, for admins.

One snapshot (:func:`take_snapshot`, read from the store, so it shows the calls of every
corecall process on this store) and two renderings of it: :func:`render_text` for a chat
message (``/live`` in Telegram and the console; well under Telegram's 4,096 characters) and
:func:`render_rows` for the terminal table of ``corecall calls live``.

"Today" is the current UTC day. Durations are whole seconds since the call was placed.
"""

from __future__ import annotations

import datetime as _dt

import attrs

from corecall.domain import Agent, CallRecord, utcnow
from corecall.store import Store

#: At most this many live calls are listed one per line; the rest are counted.
MAX_LISTED = 40

_STATE_WORDS = {
    "queued": "queued",
    "dialing_agent": "calling the agent",
    "agent_ringing": "agent's phone ringing",
    "agent_answered": "agent answered",
    "dialing_target": "dialing the target",
    "target_ringing": "target ringing",
    "connected": "connected",
}


@attrs.frozen
class LiveCall:
    call_id: str
    agent_id: int
    agent: str
    route: str
    state: str
    seconds: int


@attrs.frozen
class Snapshot:
    taken_at: _dt.datetime
    calls: tuple[LiveCall, ...]
    today: dict[str, int]  # end reason -> count, calls placed today that ended

    @property
    def total_today(self) -> int:
        return sum(self.today.values()) + len(self.calls)

    def as_json(self) -> dict:
        """``today``: calls placed today (UTC) that ended, by end reason; ``today_total``:
        every call placed today, the live ones included (the text view's "Today: N calls")."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "live": [attrs.asdict(c) for c in self.calls],
            "today": dict(self.today),
            "today_total": self.total_today,
        }


def _agent_name(agent: Agent | None, agent_id: int) -> str:
    if agent_id == 0:
        return "operator"
    if agent is None:
        return str(agent_id)
    return agent.name or str(agent_id)


def take_snapshot(store: Store, now: _dt.datetime | None = None) -> Snapshot:
    """Read the live calls and today's outcomes (blocking: run it off the event loop)."""
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    unfinished: list[CallRecord] = store.unfinished_calls()
    agents = {a.telegram_id: a for a in store.list_agents()} if unfinished else {}
    calls = tuple(
        LiveCall(
            call_id=c.id,
            agent_id=c.agent_id,
            agent=_agent_name(agents.get(c.agent_id), c.agent_id),
            route=c.route_code,
            state=c.state.value,
            seconds=max(0, int((now - (c.created_at or now)).total_seconds())),
        )
        for c in unfinished
    )
    return Snapshot(taken_at=now, calls=calls, today=store.outcomes_since(midnight))


def duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def state_words(state: str) -> str:
    return _STATE_WORDS.get(state, state.replace("_", " "))


def render_text(snapshot: Snapshot, *, footer: str = "") -> str:
    """The chat message: a heading, one line per live call, today's totals."""
    lines = [f"📡 Live calls at {snapshot.taken_at:%H:%M:%S} UTC: {len(snapshot.calls)}"]
    for call in snapshot.calls[:MAX_LISTED]:
        lines.append(
            f"• {call.agent} [{call.route}] {state_words(call.state)}, {duration(call.seconds)}"
        )
    if len(snapshot.calls) > MAX_LISTED:
        lines.append(f"… and {len(snapshot.calls) - MAX_LISTED} more")
    if not snapshot.calls:
        lines.append("No call is live.")
    lines.append("")
    lines.append(f"Today (UTC): {snapshot.total_today} calls")
    for reason, count in sorted(snapshot.today.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {reason.replace('_', ' ')}: {count}")
    if snapshot.calls:
        lines.append(f"  live: {len(snapshot.calls)}")
    if footer:
        lines.extend(["", footer])
    return "\n".join(lines)


def render_rows(snapshot: Snapshot) -> list[tuple[str, str, str, str, str]]:
    """Rows for a terminal table: agent, route, state, duration, call id."""
    return [
        (call.agent, call.route, state_words(call.state), duration(call.seconds), call.call_id)
        for call in snapshot.calls
    ]


__all__ = [
    "LiveCall",
    "Snapshot",
    "duration",
    "render_rows",
    "render_text",
    "take_snapshot",
]
