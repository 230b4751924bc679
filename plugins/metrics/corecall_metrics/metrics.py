"""The Prometheus metrics corecall exposes, and how hook notifications update them.

Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): a
``corecall_`` prefix, base units (seconds), ``_total`` on counters. Labels hold only small,
fixed sets of values: route codes, end and refusal reason codes, trunk-driver and link names,
store operations. Never a phone number, a call id or an agent id.

Each :class:`CallMetrics` has its own ``CollectorRegistry`` (no process-global state), so
two corecall apps in one process, or tests, never mix their figures.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from corecall.domain import CallRecord, CallState

#: Call set-up times, seconds: a phone rings within a second or two; a person answers
#: within a minute (the default ring timeouts are 30 and 45 s).
SETUP_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
#: Store writes, seconds: sub-millisecond on SQLite, a few ms on PostgreSQL.
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def label(value: str) -> str:
    """A label value from a plugin-defined code: kept when it is a short token, else
    ``other`` (a plugin must not be able to explode the series count)."""
    return _token(value) if isinstance(value, str) else "other"


@functools.lru_cache(maxsize=1024)  # a handful of codes recur on every notification
def _token(value: str) -> str:
    return value if _LABEL_VALUE.match(value) else "other"


class _Children:
    """A labelled metric's children, each looked up once: ``labels()`` checks the values
    and takes a lock on every call (measured ~1-2 µs each, several per state change, in
    every process that places calls whether or not ``/metrics`` is served). Holds no more
    than the metric itself does (prometheus_client keeps every child it made)."""

    __slots__ = ("_made", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self._metric.labels(*values)
        return child


#: (metric name, help, from-stamp, to-stamp): the set-up histograms, observed once per call
#: as soon as both stage times are known.
SETUP_HISTOGRAMS = (
    ("corecall_call_agent_ringing_seconds",
     "Seconds from placing a call to the agent's phone ringing.",
     "created_at", "agent_ringing_at"),
    ("corecall_call_target_answer_seconds",
     "Seconds from the agent answering (and confirming) to the target answering.",
     "agent_answered_at", "connected_at"),
    ("corecall_call_connect_seconds",
     "Seconds from placing a call to both legs being connected.",
     "created_at", "connected_at"),
)  # fmt: skip


@attrs.define
class _LiveCall:
    route: str
    observed: set[str] = attrs.field(factory=set)


class CallMetrics:
    """Every metric corecall exposes, on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls_started = Counter(
            "corecall_calls_started", "Calls placed (recorded and handed to a trunk).",
            ["route"], registry=r,
        )  # fmt: skip
        self.calls_ended = Counter(
            "corecall_calls_ended", "Calls that reached their final state, by end reason.",
            ["route", "reason"], registry=r,
        )  # fmt: skip
        self.calls_live = Gauge(
            "corecall_calls_live", "Calls placed and not yet ended.", ["route"], registry=r
        )
        self.calls_refused = Counter(
            "corecall_calls_refused", "Calls refused before anything was dialed, by reason.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.setup = {
            name: (Histogram(name, doc, ["route"], buckets=SETUP_BUCKETS, registry=r), a, b)
            for name, doc, a, b in SETUP_HISTOGRAMS
        }
        self.link_up = Gauge(
            "corecall_link_up",
            "1 while a trunk driver's link (an Asterisk AMI connection) carries calls, else 0.",
            ["driver", "link"], registry=r,
        )  # fmt: skip
        self.link_reconnects = Counter(
            "corecall_link_reconnects", "Times a trunk driver's link came back after a loss.",
            ["driver", "link"], registry=r,
        )  # fmt: skip
        self.chat_edits = Counter(
            "corecall_chat_edits", "Messages edited in place (call status, live view).",
            registry=r,
        )  # fmt: skip
        self.flood_waits = Counter(
            "corecall_chat_flood_waits", "Requests the chat service refused (FloodWait).",
            registry=r,
        )  # fmt: skip
        self.flood_wait_seconds = Counter(
            "corecall_chat_flood_wait_seconds", "Seconds the chat service made corecall wait.",
            registry=r,
        )  # fmt: skip
        self.store_write_seconds = Histogram(
            "corecall_store_write_seconds", "Seconds a store write on the call path took.",
            ["operation"], buckets=STORE_BUCKETS, registry=r,
        )  # fmt: skip
        self._live: dict[str, _LiveCall] = {}
        self._links_seen_down: set[tuple[str, str]] = set()
        # The children the notifications update, looked up once per label values.
        self._started, self._live_by_route = (
            _Children(self.calls_started), _Children(self.calls_live)
        )  # fmt: skip
        self._ended, self._refused = _Children(self.calls_ended), _Children(self.calls_refused)
        self._setup = [
            (name, _Children(histogram), a, b) for name, (histogram, a, b) in self.setup.items()
        ]
        self._store_write = _Children(self.store_write_seconds)

    # ---- notifications
    def call_state_changed(self, call: CallRecord, previous: CallState | None) -> None:
        route = label(call.route_code)
        live = self._live.get(call.id)
        if previous is None and live is None:
            live = self._live[call.id] = _LiveCall(route)
            self._started(route).inc()
            self._live_by_route(route).inc()
        if live is not None:
            for name, histogram, start, end in self._setup:
                a, b = getattr(call, start), getattr(call, end)
                if name not in live.observed and a is not None and b is not None:
                    live.observed.add(name)
                    histogram(route).observe(max(0.0, (b - a).total_seconds()))
        if call.state is CallState.ENDED:
            reason = label(call.reason.value if call.reason else "unknown")
            self._ended(route, reason).inc()
            if self._live.pop(call.id, None) is not None:
                self._live_by_route(route).dec()

    def call_refused(self, reason: str) -> None:
        self._refused(label(reason)).inc()

    def link_state_changed(self, driver: str, link: str, up: bool) -> None:
        key = (label(driver), label(link))
        self.link_up.labels(*key).set(1 if up else 0)
        if not up:
            self._links_seen_down.add(key)
        elif key in self._links_seen_down:
            self._links_seen_down.discard(key)
            self.link_reconnects.labels(*key).inc()

    def chat_edit_sent(self) -> None:
        self.chat_edits.inc()

    def chat_rate_limited(self, seconds: float) -> None:
        self.flood_waits.inc()
        self.flood_wait_seconds.inc(max(0.0, seconds))

    def store_write(self, operation: str, seconds: float) -> None:
        self._store_write(label(operation)).observe(max(0.0, seconds))


__all__ = ["SETUP_HISTOGRAMS", "CallMetrics", "label"]
