"""The store contract: one suite, run against every backend ([sqlite] and [postgres])."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corecall.domain import STAGE_TIMESTAMP_FIELD, CallRecord, CallState, EndReason, utcnow
from corecall.errors import AlreadyExistsError, NotFoundError, StoreError
from corecall.store import Store, run_blocking

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
AGENT = 7_000_000_001  # > 2**32: Telegram ids no longer fit in 32 bits
PHONE = "+12125550100"
ADMIN = "cli:alice"
#: States with a stored stage time (awaiting_confirmation has none: see STAGE_TIMESTAMP_FIELD).
STAGES = [s for s in CallState if s in STAGE_TIMESTAMP_FIELD]


def make_call(agent_id: int = AGENT, *, created_at=None, call_id=None, **kw) -> CallRecord:
    return CallRecord(
        id=call_id or uuid.uuid4().hex, agent_id=agent_id, agent_phone=PHONE,
        target="+14155550123", route_code="M", trunk="main", caller_id="+12125550199",
        created_at=created_at, **kw,
    )  # fmt: skip


def assert_utc(value: dt.datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


# --------------------------------------------------------------------------- agents


def test_add_and_get_agent(store: Store):
    before = utcnow()
    agent = store.add_agent(AGENT, PHONE, "Alice", actor=ADMIN)
    assert (agent.telegram_id, agent.phone, agent.name) == (AGENT, PHONE, "Alice")
    assert agent.authorized is False and agent.route_code is None and agent.caller_id is None
    assert_utc(agent.created_at)
    assert before - dt.timedelta(seconds=1) <= agent.created_at <= utcnow()
    assert store.get_agent(AGENT) == agent
    assert store.get_agent(AGENT + 1) is None


def test_add_agent_authorized_and_defaults(store: Store):
    agent = store.add_agent(5, PHONE, authorized=True, actor=ADMIN)
    assert agent.name == "" and agent.authorized is True


def test_list_agents_ordered_by_telegram_id(store: Store):
    for tid in (300, 2**53, 1, 7_000_000_001):
        store.add_agent(tid, PHONE, f"agent {tid}", actor=ADMIN)
    assert [a.telegram_id for a in store.list_agents()] == [1, 300, 7_000_000_001, 2**53]


def test_list_agents_empty(store: Store):
    assert store.list_agents() == []


def test_duplicate_add_raises_and_writes_nothing(store: Store):
    store.add_agent(AGENT, PHONE, "Alice", actor=ADMIN)
    with pytest.raises(AlreadyExistsError, match=str(AGENT)):
        store.add_agent(AGENT, "+12125550111", "Mallory", actor="cli:mallory")
    assert store.get_agent(AGENT).name == "Alice"
    assert [e.action for e in store.audit_log()] == ["agent.add"]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.remove_agent(42, actor=ADMIN),
        lambda s: s.set_authorized(42, True, actor=ADMIN),
        lambda s: s.set_phone(42, PHONE, actor=ADMIN),
        lambda s: s.set_route(42, "M", actor=ADMIN),
        lambda s: s.set_caller_id(42, "+12125550199", actor=ADMIN),
    ],
    ids=["remove", "authorize", "set_phone", "set_route", "set_caller_id"],
)
def test_unknown_agent_raises_not_found(store: Store, call):
    with pytest.raises(NotFoundError, match="42"):
        call(store)
    assert store.audit_log() == []


def test_authorize_and_revoke(store: Store):
    store.add_agent(AGENT, PHONE, actor=ADMIN)
    assert store.set_authorized(AGENT, True, actor="telegram:1").authorized is True
    assert store.get_agent(AGENT).authorized is True
    assert store.set_authorized(AGENT, False, actor="telegram:1").authorized is False
    assert store.get_agent(AGENT).authorized is False
    actions = [(e.actor, e.action, e.subject) for e in store.audit_log()]
    assert actions[:2] == [
        ("telegram:1", "agent.revoke", str(AGENT)),
        ("telegram:1", "agent.authorize", str(AGENT)),
    ]


def test_set_phone_route_caller_id_and_none_clears(store: Store):
    store.add_agent(AGENT, PHONE, actor=ADMIN)
    assert store.set_phone(AGENT, "+12125550111", actor=ADMIN).phone == "+12125550111"
    assert store.set_route(AGENT, "D", actor=ADMIN).route_code == "D"
    assert store.set_caller_id(AGENT, "+12125550199", actor=ADMIN).caller_id == "+12125550199"
    agent = store.get_agent(AGENT)
    assert (agent.phone, agent.route_code, agent.caller_id) == (
        "+12125550111", "D", "+12125550199",
    )  # fmt: skip
    assert store.set_route(AGENT, None, actor=ADMIN).route_code is None
    assert store.set_caller_id(AGENT, None, actor=ADMIN).caller_id is None
    agent = store.get_agent(AGENT)
    assert agent.route_code is None and agent.caller_id is None
    assert agent.phone == "+12125550111"


def test_every_agent_change_writes_its_audit_entry(store: Store):
    store.add_agent(AGENT, PHONE, "Alice", actor="cli:root")
    store.set_authorized(AGENT, True, actor="telegram:11")
    store.set_phone(AGENT, "+12125550111", actor="telegram:12")
    store.set_route(AGENT, "M", actor="telegram:13")
    store.set_caller_id(AGENT, "+12125550199", actor="telegram:14")
    store.set_caller_id(AGENT, None, actor="telegram:15")
    store.set_authorized(AGENT, False, actor="telegram:16")
    store.remove_agent(AGENT, actor="cli:root")
    log = list(reversed(store.audit_log()))  # oldest first
    assert [(e.actor, e.action, e.subject) for e in log] == [
        ("cli:root", "agent.add", str(AGENT)),
        ("telegram:11", "agent.authorize", str(AGENT)),
        ("telegram:12", "agent.set_phone", str(AGENT)),
        ("telegram:13", "agent.set_route", str(AGENT)),
        ("telegram:14", "agent.set_caller_id", str(AGENT)),
        ("telegram:15", "agent.set_caller_id", str(AGENT)),
        ("telegram:16", "agent.revoke", str(AGENT)),
        ("cli:root", "agent.remove", str(AGENT)),
    ]
    details = [json.loads(e.detail) for e in log]  # structured: JSON objects, not reprs
    assert details[0] == {"phone": PHONE, "name": "Alice", "authorized": False}
    assert details[1] == {"field": "authorized", "old": False, "new": True}
    assert details[2] == {"field": "phone", "old": PHONE, "new": "+12125550111"}
    assert details[3] == {"field": "route_code", "old": None, "new": "M"}
    assert details[4] == {"field": "caller_id", "old": None, "new": "+12125550199"}
    assert details[5] == {"field": "caller_id", "old": "+12125550199", "new": None}
    assert details[6] == {"field": "authorized", "old": True, "new": False}
    assert details[7]["phone"] == "+12125550111"
    for entry in log:
        assert_utc(entry.at)
        assert isinstance(entry.id, int)
    assert [e.at for e in log] == sorted(e.at for e in log)


def test_audit_method_and_limit(store: Store):
    for i in range(5):
        store.audit("cli:bob", "plugins.disable", f"plugin{i}", "because")
    log = store.audit_log(limit=3)
    assert [e.subject for e in log] == ["plugin4", "plugin3", "plugin2"]
    assert (log[0].actor, log[0].action, log[0].detail) == ("cli:bob", "plugins.disable", "because")
    assert len(store.audit_log()) == 5
    assert store.audit_log(limit=0) == []


def test_removing_an_agent_keeps_their_calls(store: Store):
    store.add_agent(AGENT, PHONE, actor=ADMIN)
    call = store.create_call(make_call())
    store.record_transition(call.id, CallState.ENDED, T0, reason=EndReason.COMPLETED)
    store.remove_agent(AGENT, actor=ADMIN)
    assert store.get_agent(AGENT) is None
    assert store.get_call(call.id).agent_id == AGENT
    assert [c.id for c in store.recent_calls(AGENT)] == [call.id]
    store.add_agent(AGENT, PHONE, actor=ADMIN)  # the id can come back
    assert store.count_calls_since(AGENT, T0 - dt.timedelta(days=1)) == 1


# --------------------------------------------------------------------------- calls


def test_create_call_sets_created_at_and_queued(store: Store):
    before = utcnow()
    call = store.create_call(make_call())
    assert call.state is CallState.QUEUED and call.reason is None and call.detail == ""
    assert_utc(call.created_at)
    assert before - dt.timedelta(seconds=1) <= call.created_at <= utcnow()
    assert all(getattr(call, f) is None for f in STAGE_TIMESTAMP_FIELD.values())
    assert store.get_call(call.id) == call
    assert store.get_call(uuid.uuid4().hex) is None


def test_create_call_keeps_given_created_at(store: Store):
    call = store.create_call(make_call(created_at=T0))
    assert call.created_at == T0


def test_duplicate_call_id_raises(store: Store):
    call = store.create_call(make_call())
    with pytest.raises(AlreadyExistsError):
        store.create_call(make_call(call_id=call.id))


def test_transition_through_every_state(store: Store):
    call = store.create_call(make_call(created_at=T0))
    times = {}
    for i, state in enumerate(STAGES, start=1):
        at = T0 + dt.timedelta(seconds=i * 1.5, microseconds=i)
        times[state] = at
        reason = EndReason.COMPLETED if state is CallState.ENDED else None
        call = store.record_transition(call.id, state, at, reason=reason, detail="")
        assert call.state is state
        assert getattr(call, STAGE_TIMESTAMP_FIELD[state]) == at
    stored = store.get_call(call.id)
    assert stored == call
    assert stored.is_final and stored.reason is EndReason.COMPLETED
    for state, at in times.items():
        value = getattr(stored, STAGE_TIMESTAMP_FIELD[state])
        assert value == at
        assert_utc(value)
    # computed from the stored timestamps
    ring = times[CallState.CONNECTED] - times[CallState.DIALING_TARGET]
    talk = times[CallState.ENDED] - times[CallState.CONNECTED]
    assert stored.ring_seconds == pytest.approx(ring.total_seconds(), abs=1e-6)
    assert stored.talk_seconds == pytest.approx(talk.total_seconds(), abs=1e-6)


def test_awaiting_confirmation_is_stored_without_a_stage_time(store: Store):
    call = store.create_call(make_call(created_at=T0))
    store.record_transition(call.id, CallState.AGENT_ANSWERED, T0)
    later = T0 + dt.timedelta(seconds=2)
    waiting = store.record_transition(call.id, CallState.AWAITING_CONFIRMATION, later)
    assert waiting.state is CallState.AWAITING_CONFIRMATION
    assert waiting.agent_answered_at == T0  # untouched
    assert store.unfinished_calls()[0].state is CallState.AWAITING_CONFIRMATION
    ended = store.record_transition(
        call.id, CallState.ENDED, later, reason=EndReason.AGENT_NOT_CONFIRMED, detail="voicemail"
    )
    assert (ended.reason, ended.dialing_target_at) == (EndReason.AGENT_NOT_CONFIRMED, None)


def test_reason_and_detail_stored(store: Store):
    call = store.create_call(make_call())
    store.record_transition(call.id, CallState.DIALING_TARGET, T0)
    ended = store.record_transition(
        call.id, CallState.ENDED, T0 + dt.timedelta(seconds=45),
        reason=EndReason.TARGET_NO_ANSWER, detail="Dial: NOANSWER (cause 19)",
    )  # fmt: skip
    assert ended.reason is EndReason.TARGET_NO_ANSWER
    assert ended.detail == "Dial: NOANSWER (cause 19)"
    assert ended.ring_seconds == 45.0 and ended.talk_seconds is None
    assert store.get_call(call.id) == ended


def test_ended_without_reason_is_unknown(store: Store):
    call = store.create_call(make_call())
    assert store.record_transition(call.id, CallState.ENDED, T0).reason is EndReason.UNKNOWN


def test_first_timestamp_of_a_stage_wins(store: Store):
    call = store.create_call(make_call())
    store.record_transition(call.id, CallState.AGENT_RINGING, T0)
    again = store.record_transition(call.id, CallState.AGENT_RINGING, T0 + dt.timedelta(9))
    assert again.agent_ringing_at == T0
    assert again.state is CallState.AGENT_RINGING


def test_ended_is_final(store: Store):
    call = store.create_call(make_call())
    store.record_transition(call.id, CallState.CONNECTED, T0)
    end = T0 + dt.timedelta(seconds=30)
    ended = store.record_transition(call.id, CallState.ENDED, end, reason=EndReason.COMPLETED)
    for state in CallState:
        if state is not CallState.ENDED:
            with pytest.raises(StoreError, match="final"):
                store.record_transition(call.id, state, end + dt.timedelta(seconds=1))
    again = store.record_transition(
        call.id, CallState.ENDED, end + dt.timedelta(seconds=5), reason=EndReason.CANCELLED
    )
    assert again == ended  # ENDED twice changes nothing: first time and reason stay
    assert store.get_call(call.id) == ended


def test_late_earlier_stage_never_moves_state_back(store: Store):
    call = store.create_call(make_call())
    store.record_transition(call.id, CallState.CONNECTED, T0 + dt.timedelta(seconds=10))
    late = store.record_transition(call.id, CallState.TARGET_RINGING, T0)
    assert late.state is CallState.CONNECTED
    assert late.target_ringing_at == T0  # the stage's time is still recorded


def test_reason_only_goes_with_ended(store: Store):
    call = store.create_call(make_call())
    with pytest.raises(StoreError, match="reason"):
        store.record_transition(call.id, CallState.CONNECTED, T0, reason=EndReason.COMPLETED)
    assert store.get_call(call.id).state is CallState.QUEUED


def test_transition_of_unknown_call_raises(store: Store):
    with pytest.raises(NotFoundError):
        store.record_transition(uuid.uuid4().hex, CallState.DIALING_AGENT, T0)


def test_naive_datetimes_are_refused(store: Store):
    call = store.create_call(make_call())
    naive = dt.datetime(2024, 5, 1, 12, 0)
    with pytest.raises(StoreError, match="timezone-aware"):
        store.record_transition(call.id, CallState.DIALING_AGENT, naive)
    with pytest.raises(StoreError, match="timezone-aware"):
        store.create_call(make_call(created_at=naive))
    with pytest.raises(StoreError, match="timezone-aware"):
        store.count_calls_since(AGENT, naive)


def test_other_timezones_are_stored_as_utc(store: Store):
    plus_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))
    local = dt.datetime(2024, 5, 1, 17, 30, 0, 654321, tzinfo=plus_0530)
    call = store.create_call(make_call(created_at=local))
    assert call.created_at == local
    assert call.created_at.tzinfo is UTC or call.created_at.utcoffset() == dt.timedelta(0)
    assert call.created_at.hour == 12 and call.created_at.microsecond == 654321


def test_save_progress_writes_latest_state_of_many_calls(store: Store):
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=dt.UTC)
    a = store.create_call(make_call(created_at=t0))
    b = store.create_call(make_call(created_at=t0))
    a_live = attrs.evolve(
        a, state=CallState.CONNECTED, dialing_agent_at=t0, agent_answered_at=t0,
        connected_at=t0 + dt.timedelta(seconds=3),
    )  # fmt: skip
    b_done = attrs.evolve(
        b, state=CallState.ENDED, dialing_agent_at=t0, reason=EndReason.AGENT_BUSY,
        detail="agent phone busy", ended_at=t0 + dt.timedelta(seconds=1),
    )  # fmt: skip
    store.save_progress([a_live, b_done])
    got_a, got_b = store.get_call(a.id), store.get_call(b.id)
    assert got_a.state is CallState.CONNECTED and got_a.reason is None
    assert got_a.connected_at == t0 + dt.timedelta(seconds=3)
    assert (got_b.state, got_b.reason, got_b.detail) == (
        CallState.ENDED, EndReason.AGENT_BUSY, "agent phone busy",
    )  # fmt: skip
    assert [c.id for c in store.unfinished_calls()] == [a.id]


def test_save_progress_keeps_first_stage_time_and_final_state(store: Store):
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    call = store.create_call(make_call(created_at=t0))
    store.save_progress([attrs.evolve(call, state=CallState.DIALING_AGENT, dialing_agent_at=t0)])
    later = t0 + dt.timedelta(seconds=9)
    ended = attrs.evolve(
        call, state=CallState.ENDED, dialing_agent_at=later, ended_at=later,
        reason=EndReason.COMPLETED,
    )  # fmt: skip
    store.save_progress([ended])
    got = store.get_call(call.id)
    assert got.dialing_agent_at == t0  # the first time of a stage wins
    store.save_progress([attrs.evolve(ended, reason=EndReason.TARGET_BUSY, ended_at=t0)])
    again = store.get_call(call.id)
    assert (again.reason, again.ended_at) == (EndReason.COMPLETED, later)  # final is final


def test_save_progress_of_one_call_twice_in_a_batch_keeps_the_last(store: Store):
    # The call writer sends each call once, but the contract does not rely on it: row by
    # row, the last record of a call is what stays (PostgreSQL writes a batch as one
    # UPDATE ... FROM VALUES, which would otherwise pick one row of the two).
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    call = store.create_call(make_call(created_at=t0))
    ringing = attrs.evolve(call, state=CallState.AGENT_RINGING, agent_ringing_at=t0)
    connected = attrs.evolve(ringing, state=CallState.CONNECTED, connected_at=t0)
    store.save_progress([ringing, connected])
    got = store.get_call(call.id)
    assert (got.state, got.agent_ringing_at, got.connected_at) == (CallState.CONNECTED, t0, t0)
    store.save_progress([connected, ringing])  # the last wins, as row by row; stage times stay
    got = store.get_call(call.id)
    assert (got.state, got.connected_at) == (CallState.AGENT_RINGING, t0)
    # A stage time of an earlier record stays when a later one of the batch lacks it, and
    # nothing after an ENDED record changes the call (found by tester6: PostgreSQL's one
    # statement per batch had let the later record win).
    other = store.create_call(make_call(created_at=t0))
    later = t0 + dt.timedelta(seconds=5)
    answered = attrs.evolve(other, state=CallState.AGENT_ANSWERED, agent_answered_at=t0)
    bare = attrs.evolve(other, state=CallState.CONNECTED, connected_at=later)
    ended = attrs.evolve(
        bare, state=CallState.ENDED, ended_at=later, reason=EndReason.COMPLETED, detail="bye"
    )
    store.save_progress([answered, bare, ended, attrs.evolve(bare, connected_at=t0)])
    got = store.get_call(other.id)
    assert (got.state, got.reason, got.detail) == (CallState.ENDED, EndReason.COMPLETED, "bye")
    assert (got.agent_answered_at, got.connected_at, got.ended_at) == (t0, later, later)
    assert other.id not in {c.id for c in store.unfinished_calls()}


def test_an_end_time_before_the_end_is_refused_and_writes_nothing(store: Store):
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with pytest.raises(StoreError, match="has an end time but is connected"):
        store.create_call(make_call(created_at=t0, state=CallState.CONNECTED, ended_at=t0))
    assert store.recent_calls() == []
    call = store.create_call(make_call(created_at=t0))
    with pytest.raises(StoreError, match="has an end time but is connected"):
        store.save_progress([attrs.evolve(call, state=CallState.CONNECTED, ended_at=t0)])
    got = store.get_call(call.id)
    assert (got.state, got.ended_at) == (call.state, None)
    assert [c.id for c in store.unfinished_calls()] == [call.id]


def test_recent_calls_order_limit_and_agent_filter(store: Store):
    other = 2**53
    ids = []
    for i in range(6):
        agent = AGENT if i % 2 == 0 else other
        created = T0 + dt.timedelta(milliseconds=i)  # a millisecond apart must still sort
        ids.append((agent, store.create_call(make_call(agent, created_at=created)).id))
    newest_first = [cid for _, cid in reversed(ids)]
    assert [c.id for c in store.recent_calls()] == newest_first
    assert [c.id for c in store.recent_calls(limit=2)] == newest_first[:2]
    assert [c.id for c in store.recent_calls(AGENT)] == [
        cid for agent, cid in reversed(ids) if agent == AGENT
    ]
    assert [c.id for c in store.recent_calls(other, limit=1)] == [ids[5][1]]
    assert store.recent_calls(12345) == []
    assert store.recent_calls(limit=0) == []


def test_unfinished_calls(store: Store):
    done = store.create_call(make_call(created_at=T0))
    store.record_transition(done.id, CallState.ENDED, T0, reason=EndReason.CANCELLED)
    queued = store.create_call(make_call(created_at=T0 + dt.timedelta(seconds=1)))
    talking = store.create_call(make_call(created_at=T0 + dt.timedelta(seconds=2)))
    store.record_transition(talking.id, CallState.CONNECTED, T0 + dt.timedelta(seconds=3))
    unfinished = store.unfinished_calls()
    assert [c.id for c in unfinished] == [queued.id, talking.id]
    assert unfinished[1].state is CallState.CONNECTED


def test_unfinished_calls_are_read_through_an_index_not_the_whole_table(store: Store, target):
    # After a restart the service reconciles its unfinished calls; with years of calls on
    # record that read must not scan them all (schema v6: calls_unfinished).
    store.create_call(make_call(created_at=T0))
    where = "ended_at IS NULL AND state <> 'ended'"  # what Store.unfinished_calls asks
    if target.backend == "sqlite":
        plan = target.run_sql(f"EXPLAIN QUERY PLAN SELECT id FROM calls WHERE {where}")
        assert any("calls_unfinished" in str(row) for row in plan), plan
    else:
        plan = target.run_sql(
            f"SET enable_seqscan = off; EXPLAIN SELECT id FROM calls WHERE {where}"
        )
        assert any("calls_unfinished" in row[0] for row in plan), plan
    indexes = (
        target.run_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        if target.backend == "sqlite"
        else target.run_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'calls'")
    )
    assert "calls_state" not in {row[0] for row in indexes}  # no index names the state


def test_count_calls_since(store: Store):
    for minutes in (0, 1, 2, 3):
        store.create_call(make_call(created_at=T0 + dt.timedelta(minutes=minutes)))
    store.create_call(make_call(2**53, created_at=T0 + dt.timedelta(minutes=5)))
    assert store.count_calls_since(AGENT, T0) == 4
    assert store.count_calls_since(AGENT, T0 + dt.timedelta(minutes=2)) == 2  # inclusive
    assert store.count_calls_since(AGENT, T0 + dt.timedelta(minutes=2, microseconds=1)) == 1
    assert store.count_calls_since(AGENT, T0 + dt.timedelta(hours=1)) == 0
    assert store.count_calls_since(2**53, T0) == 1


def test_agent_and_recent_calls_in_one_read(store: Store):
    """What every /call reads: the agent as stored now (revocation shows at once) and the
    calls they placed since a moment."""
    assert store.agent_and_recent_calls(AGENT, T0) == (None, 0)
    store.add_agent(AGENT, PHONE, "Alice", authorized=True, actor=ADMIN)
    for minutes in (0, 1, 2):
        store.create_call(make_call(created_at=T0 + dt.timedelta(minutes=minutes)))
    store.create_call(make_call(AGENT + 1, created_at=T0 + dt.timedelta(minutes=2)))
    agent, recent = store.agent_and_recent_calls(AGENT, T0 + dt.timedelta(minutes=1))
    assert agent == store.get_agent(AGENT) and agent.authorized is True
    assert recent == 2  # inclusive, this agent's only
    store.set_authorized(AGENT, False, actor=ADMIN)
    assert store.agent_and_recent_calls(AGENT, T0)[0].authorized is False
    with pytest.raises(StoreError):
        store.agent_and_recent_calls(AGENT, dt.datetime(2024, 5, 1))  # naive


def test_create_calls_writes_a_burst_in_order(store: Store):
    calls = [make_call(created_at=T0 + dt.timedelta(microseconds=i)) for i in range(50)]
    written = store.create_calls(calls)
    assert [c.id for c in written] == [c.id for c in calls]
    for sent, got in zip(calls, written, strict=True):
        assert got == sent and store.get_call(sent.id) == sent
    assert store.count_calls_since(AGENT, T0) == 50
    assert store.create_calls([]) == []


def test_create_calls_fails_only_the_bad_record(store: Store):
    """One bad record (duplicate id, NUL) is refused alone; the others of the burst are
    written."""
    existing = store.create_call(make_call(created_at=T0))
    good1, good2 = make_call(created_at=T0), make_call(created_at=T0)
    burst = [good1, make_call(call_id=existing.id), make_call(call_id="a\x00b"), good2]
    outcomes = store.create_calls(burst)
    assert outcomes[0] == good1 and outcomes[3] == good2
    assert isinstance(outcomes[1], AlreadyExistsError)
    assert isinstance(outcomes[2], StoreError) and "NUL" in str(outcomes[2])
    assert store.get_call(good1.id) == good1 and store.get_call(good2.id) == good2
    assert store.count_calls_since(AGENT, T0) == 3


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("tid", [1, 2**31, 2**32 + 1, 7_000_000_001, 2**53, 2**63 - 1])
def test_big_telegram_ids(store: Store, tid: int):
    store.add_agent(tid, PHONE, actor=ADMIN)
    assert store.get_agent(tid).telegram_id == tid
    assert store.set_authorized(tid, True, actor=ADMIN).telegram_id == tid
    call = store.create_call(make_call(tid))
    assert store.get_call(call.id).agent_id == tid
    assert store.count_calls_since(tid, T0) == 1
    assert store.audit_log(1)[0].subject == str(tid)


@pytest.mark.parametrize("bad", [2**63, -(2**63) - 1, "123", 1.5, True, None])
def test_bad_telegram_ids_are_refused(store: Store, bad):
    with pytest.raises(StoreError, match="telegram id"):
        store.add_agent(bad, PHONE, actor=ADMIN)
    with pytest.raises(StoreError, match="telegram id"):
        store.get_agent(bad)


@pytest.mark.parametrize(
    "name",
    [
        "Zoë 😀👩‍💻",  # emoji incl. a ZWJ sequence
        "محمد الأحمد",  # RTL Arabic
        "שלום \u202eevil\u202c",  # RTL Hebrew and bidi override characters
        "e\u0301 ÅÅ 中文 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  # combining marks, CJK, astral plane
        "O'Brien \"the\" \\backslash\\ '; DROP TABLE agents; --",
        "%s %(x)s ? :1 $1",  # placeholder look-alikes
        "tab\tnew\nline\r",
        "",
    ],
)
def test_text_round_trips_exactly(store: Store, name: str):
    store.add_agent(AGENT, PHONE, name, actor=f"telegram:{name}")
    assert store.get_agent(AGENT).name == name
    store.audit("cli:x", "note", name, name)
    entry = store.audit_log(1)[0]
    assert entry.subject == name and entry.detail == name
    call = store.create_call(make_call())
    ended = store.record_transition(call.id, CallState.ENDED, T0, detail=name)
    assert store.get_call(call.id).detail == name == ended.detail


def test_nul_is_refused_everywhere_and_writes_nothing(store: Store):
    """NUL cannot be stored by PostgreSQL; both backends refuse it the same way."""
    nul = "Ali\x00ce"
    with pytest.raises(StoreError, match="NUL"):
        store.add_agent(AGENT, PHONE, nul, actor=ADMIN)
    with pytest.raises(StoreError, match="NUL"):
        store.add_agent(AGENT, "+1212\x00", actor=ADMIN)
    assert store.get_agent(AGENT) is None
    store.add_agent(AGENT, PHONE, actor=ADMIN)
    for change in (
        lambda: store.set_phone(AGENT, nul, actor=ADMIN),
        lambda: store.set_route(AGENT, nul, actor=ADMIN),
        lambda: store.set_caller_id(AGENT, nul, actor=ADMIN),
        lambda: store.set_authorized(AGENT, True, actor=nul),
        lambda: store.audit("cli:x", "note", "s", nul),
        lambda: store.create_call(make_call(call_id="a\x00b")),
    ):
        with pytest.raises(StoreError, match="NUL"):
            change()
    call = store.create_call(make_call())
    with pytest.raises(StoreError, match="NUL"):
        store.record_transition(call.id, CallState.ENDED, T0, detail=nul)
    assert store.get_agent(AGENT).phone == PHONE
    assert store.get_agent(AGENT).authorized is False
    assert store.get_call(call.id).state is CallState.QUEUED
    assert [e.action for e in store.audit_log()] == ["agent.add"]


@pytest.mark.parametrize("bad", ["\ud800", "ok\udfffok"])
def test_lone_surrogates_are_refused(store: Store, bad: str):
    with pytest.raises(StoreError, match="Unicode"):
        store.add_agent(AGENT, PHONE, bad, actor=ADMIN)
    assert store.get_agent(AGENT) is None


_ids = itertools.count(1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=60
    )
)
def test_any_text_round_trips(store: Store, text: str):
    tid = next(_ids)
    phone = text[:16]  # the phone field's limit
    store.add_agent(tid, phone, text, actor=ADMIN)
    agent = store.get_agent(tid)
    assert (agent.name, agent.phone) == (text, phone)


def test_each_text_field_has_one_limit_and_details_are_clipped(store: Store):
    """The same limits the CLI and the bot check first (corecall.fields): longer values are
    refused and write nothing; free-text details are clipped, never refused."""
    with pytest.raises(StoreError, match="name is 65 characters long; at most 64"):
        store.add_agent(AGENT, PHONE, "n" * 65, actor=ADMIN)
    with pytest.raises(StoreError, match="phone is 17 characters"):
        store.add_agent(AGENT, "+" + "1" * 16, actor=ADMIN)
    assert store.get_agent(AGENT) is None
    store.add_agent(AGENT, PHONE, "n" * 64, actor=ADMIN)
    with pytest.raises(StoreError, match="route code is 9 characters"):
        store.set_route(AGENT, "M" * 9, actor=ADMIN)
    call = store.create_call(make_call())
    store.record_transition(call.id, CallState.ENDED, T0, detail="d" * 5000)
    detail = store.get_call(call.id).detail
    assert len(detail) == 1000 and detail.endswith("…")
    store.audit("cli:x", "note", "s", "d" * 5000)
    assert len(store.audit_log(1)[0].detail) == 1000


# --------------------------------------------------------------------------- concurrency


def test_concurrent_threads(store: Store):
    store.add_agent(AGENT, PHONE, actor=ADMIN)
    start = utcnow() - dt.timedelta(seconds=1)
    barrier = threading.Barrier(4)

    def worker(n: int) -> int:
        barrier.wait()
        for _ in range(50):
            call = store.create_call(make_call())
            store.record_transition(call.id, CallState.DIALING_AGENT, utcnow())
            store.record_transition(call.id, CallState.ENDED, utcnow(), reason=EndReason.COMPLETED)
        store.set_route(AGENT, f"R{n}", actor=f"thread:{n}")
        return n

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(worker, range(4))) == [0, 1, 2, 3]
    assert store.count_calls_since(AGENT, start) == 200
    assert store.unfinished_calls() == []
    assert len(store.recent_calls(limit=500)) == 200
    assert len([e for e in store.audit_log(100) if e.action == "agent.set_route"]) == 4


def test_concurrent_transitions_of_one_call_stay_monotonic(store: Store):
    call = store.create_call(make_call())
    events = [(s, T0 + dt.timedelta(seconds=s.order)) for s in STAGES if s is not CallState.ENDED]

    def worker(seed: int) -> None:
        mine = events[:]
        random.Random(seed).shuffle(mine)
        for state, at in mine:
            store.record_transition(call.id, state, at)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, range(12)))
    result = store.get_call(call.id)
    assert result.state is CallState.CONNECTED
    for state, at in events:
        assert getattr(result, STAGE_TIMESTAMP_FIELD[state]) == at


async def test_run_blocking_from_asyncio(store: Store):
    await run_blocking(store.add_agent, AGENT, PHONE, actor=ADMIN)
    calls = await asyncio.gather(*(run_blocking(store.create_call, make_call()) for _ in range(40)))
    await asyncio.gather(
        *(run_blocking(store.record_transition, c.id, CallState.ENDED, utcnow()) for c in calls)
    )
    assert await run_blocking(store.unfinished_calls) == []
    assert (await run_blocking(store.get_agent, AGENT)).phone == PHONE


# --------------------------------------------------------------------------- lifecycle


def test_close_twice_is_fine_and_use_after_close_is_refused(store: Store):
    store.add_agent(AGENT, PHONE, actor=ADMIN)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="not open"):
        store.get_agent(AGENT)


def test_use_before_open_is_refused(target):
    with pytest.raises(StoreError, match="open"):
        target.make_store().list_agents()


def test_open_twice_is_fine(store: Store):
    store.open()
    assert store.schema_version() == Store.SCHEMA_VERSION


def test_reopen_keeps_data(target):
    first = target.open_store()
    first.add_agent(AGENT, PHONE, "Alice", actor=ADMIN)
    call = first.create_call(make_call(created_at=T0))
    first.record_transition(call.id, CallState.ENDED, T0, reason=EndReason.AGENT_BUSY)
    first.close()
    second = target.open_store()
    assert second.get_agent(AGENT).name == "Alice"
    assert second.get_call(call.id).reason is EndReason.AGENT_BUSY
    assert [e.action for e in second.audit_log()] == ["agent.add"]
    first.open()  # a closed store can be opened again
    assert first.get_agent(AGENT) is not None


def test_two_stores_on_one_database(target):
    a, b = target.open_store(), target.open_store()
    a.add_agent(AGENT, PHONE, actor=ADMIN)
    assert b.get_agent(AGENT) is not None
    with pytest.raises(AlreadyExistsError):
        b.add_agent(AGENT, PHONE, actor=ADMIN)


def test_fresh_schema_is_current(store: Store, target):
    assert store.schema_version() == Store.SCHEMA_VERSION
    assert target.run_sql("SELECT version FROM schema_version") == [(Store.SCHEMA_VERSION,)]


# --------------------------------------------------------------------------- migrations

V1_TYPES = {
    "sqlite": {"ts": "TEXT", "bool": "INTEGER", "false": "0"},
    "postgres": {"ts": "TIMESTAMPTZ", "bool": "BOOLEAN", "false": "FALSE"},
}


def build_v1(target, *, agents_extra: str = "") -> None:
    """A v1 database as v1 corecall wrote it, by hand: agents + calls + schema_version."""
    t = V1_TYPES[target.backend]
    stages = ", ".join(f"{f} {t['ts']}" for f in STAGE_TIMESTAMP_FIELD.values())
    statements = [
        f"CREATE TABLE agents (telegram_id BIGINT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', "
        f"phone TEXT NOT NULL, authorized {t['bool']} NOT NULL DEFAULT {t['false']}, "
        f"route_code TEXT, created_at {t['ts']} NOT NULL, updated_at {t['ts']} NOT NULL"
        f"{agents_extra})",
        f"CREATE TABLE calls (id TEXT PRIMARY KEY, agent_id BIGINT NOT NULL, "
        f"agent_phone TEXT NOT NULL, target TEXT NOT NULL, route_code TEXT NOT NULL, "
        f"trunk TEXT NOT NULL, caller_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, "
        f"detail TEXT NOT NULL DEFAULT '', created_at {t['ts']} NOT NULL, {stages})",
        "CREATE INDEX calls_agent_created ON calls (agent_id, created_at)",
        "CREATE INDEX calls_state ON calls (state)",
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version (version) VALUES (1)",
    ]
    for sql in statements:
        target.run_sql(sql)
    stamp = "2024-05-01 12:00:00.123456+00:00"
    target.run_sql(
        "INSERT INTO agents (telegram_id, name, phone, authorized, route_code, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (AGENT, "Zoë 😀", PHONE, True, "M", stamp, stamp),
    )
    target.run_sql(
        "INSERT INTO calls (id, agent_id, agent_phone, target, route_code, trunk, caller_id, "
        "state, reason, detail, created_at, connected_at, ended_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("c" * 32, AGENT, PHONE, "+14155550123", "M", "main", "+12125550199", "ended",
         "completed", "ok", stamp, stamp, "2024-05-01 12:01:00.123456+00:00"),
    )  # fmt: skip


def test_upgrade_from_v1_keeps_data(target):
    build_v1(target)
    store = target.open_store()
    latest = Store.SCHEMA_VERSION
    assert store.schema_version() == latest
    assert target.run_sql("SELECT version FROM schema_version") == [(latest,)]
    agent = store.get_agent(AGENT)
    assert (agent.name, agent.phone, agent.authorized, agent.route_code, agent.caller_id) == (
        "Zoë 😀", PHONE, True, "M", None,
    )  # fmt: skip
    assert agent.created_at == T0
    call = store.get_call("c" * 32)
    assert call.state is CallState.ENDED and call.reason is EndReason.COMPLETED
    assert (call.created_at, call.connected_at) == (T0, T0)
    assert call.talk_seconds == 60.0
    # v2 features work on the upgraded data
    assert store.set_caller_id(AGENT, "+12125550199", actor=ADMIN).caller_id == "+12125550199"
    log = store.audit_log()
    assert [(e.actor, e.action, e.detail) for e in log][-1] == (
        "corecall", "store.upgrade", f"v1 → v{latest}",
    )  # fmt: skip
    store.close()
    assert target.open_store().schema_version() == latest  # reopening does not upgrade again


def test_failed_upgrade_rolls_back_completely(target):
    # agents already has caller_id: the v2 step fails after creating audit_log
    build_v1(target, agents_extra=", caller_id TEXT")
    with pytest.raises(StoreError):
        target.open_store()
    assert target.run_sql("SELECT version FROM schema_version") == [(1,)]
    with pytest.raises(Exception):  # noqa: B017 - the table must not exist (rolled back)
        target.run_sql("SELECT count(*) FROM audit_log")
    assert target.run_sql("SELECT count(*) FROM agents") == [(1,)]


def test_newer_schema_is_refused(target):
    target.open_store().close()
    target.run_sql("UPDATE schema_version SET version = 99")
    store = target.make_store()
    with pytest.raises(StoreError) as info:
        store.open()
    assert str(info.value) == (
        f"database schema v99 is newer than this corecall (v{Store.SCHEMA_VERSION}); "
        "upgrade corecall"
    )
    assert target.run_sql("SELECT version FROM schema_version") == [(99,)]


def test_foreign_tables_without_schema_version_are_refused(target):
    target.run_sql("CREATE TABLE agents (x INTEGER)")
    with pytest.raises(StoreError, match="not created by corecall"):
        target.open_store()


def test_unrelated_tables_are_left_alone(target):
    target.run_sql("CREATE TABLE someone_elses (x INTEGER)")
    target.run_sql("INSERT INTO someone_elses VALUES (1)")
    assert target.open_store().schema_version() == Store.SCHEMA_VERSION
    assert target.run_sql("SELECT x FROM someone_elses") == [(1,)]


def test_nowait_read_is_the_same_read_or_none(store: Store, target):
    """The event-loop fast path answers exactly what the store thread would, fresh every
    time (a revocation by another connection shows at once), or None (PostgreSQL)."""
    store.add_agent(AGENT, PHONE, "Alice", authorized=True, actor=ADMIN)
    store.create_call(make_call(created_at=T0))
    got = store.agent_and_recent_calls_nowait(AGENT, T0)
    if target.backend == "postgres":
        assert got is None  # a network round trip: never on the event loop
        return
    assert got == store.agent_and_recent_calls(AGENT, T0) and got[1] == 1
    other = target.open_store()  # another process's connection, e.g. the CLI
    try:
        other.set_authorized(AGENT, False, actor=ADMIN)
    finally:
        other.close()
    assert store.agent_and_recent_calls_nowait(AGENT, T0)[0].authorized is False
    assert store.agent_and_recent_calls_nowait(AGENT + 5, T0) == (None, 0)
    with pytest.raises(StoreError):
        store.agent_and_recent_calls_nowait(AGENT, dt.datetime(2024, 5, 1))  # naive


def test_nowait_call_record_is_written_or_left_to_the_store_thread(store: Store, target):
    call = make_call(created_at=T0)
    written = store.create_call_nowait(call)
    if target.backend == "postgres":
        assert written is None and store.get_call(call.id) is None
        return
    assert written == call and store.get_call(call.id) == call
    with pytest.raises(AlreadyExistsError):
        store.create_call_nowait(call)
    with pytest.raises(StoreError, match="NUL"):
        store.create_call_nowait(make_call(call_id="a\x00b"))
    assert store.count_calls_since(AGENT, T0) == 1


def test_nowait_progress_is_written_as_save_progress_or_left_to_the_store_thread(
    store: Store, target
):
    """The call writer's fast path (the event loop): the same rows as save_progress, in one
    transaction, or False and nothing written (PostgreSQL: a network round trip away)."""
    a = store.create_call(make_call(created_at=T0))
    b = store.create_call(make_call(created_at=T0))
    later = T0 + dt.timedelta(seconds=3)
    a_live = attrs.evolve(
        a, state=CallState.CONNECTED, dialing_agent_at=T0, agent_answered_at=T0,
        connected_at=later,
    )  # fmt: skip
    b_done = attrs.evolve(
        b, state=CallState.ENDED, dialing_agent_at=T0, reason=EndReason.AGENT_BUSY,
        detail="agent phone busy", ended_at=later,
    )  # fmt: skip
    written = store.save_progress_nowait([a_live, b_done])
    if target.backend == "postgres":
        assert written is False
        assert (store.get_call(a.id), store.get_call(b.id)) == (a, b)  # nothing written
        return
    assert written is True
    assert (store.get_call(a.id), store.get_call(b.id)) == (a_live, b_done)
    assert [c.id for c in store.unfinished_calls()] == [a.id]
    # The same rules as save_progress: a stage's first time wins, the final state is final.
    moved = attrs.evolve(a_live, state=CallState.ENDED, connected_at=T0, ended_at=later,
                         reason=EndReason.COMPLETED)  # fmt: skip
    again = attrs.evolve(b_done, reason=EndReason.TARGET_BUSY, ended_at=T0)
    assert store.save_progress_nowait([moved, again]) is True
    got_a, got_b = store.get_call(a.id), store.get_call(b.id)
    assert (got_a.state, got_a.connected_at, got_a.reason) == (
        CallState.ENDED, later, EndReason.COMPLETED,
    )  # fmt: skip
    assert got_b == b_done
    with pytest.raises(StoreError, match="NUL"):
        store.save_progress_nowait([attrs.evolve(a_live, id="a\x00b")])
    assert store.save_progress_nowait([]) is True
