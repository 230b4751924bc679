"""Store.nowait_reads(): the read view the policy plugins get on the event loop. SQLite answers
its indexed reads at once, fresh (a change committed by another process shows on the next
read), and cannot write through it; PostgreSQL offers none (a network round trip away)."""

from __future__ import annotations

import datetime as dt
import uuid

import peewee
import pytest

from corecall.domain import CallRecord
from corecall.store import Store, StoreWouldBlock

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LISTED = "+12125550177"


def test_the_read_view_answers_like_the_store_and_sees_other_connections(store: Store, target):
    reads = store.nowait_reads()
    if target.backend == "postgres":
        assert reads is None
        return
    assert reads is not None
    store.add_agent(5, "+12125550100", authorized=True, actor="cli:a")
    assert reads.get_agent(5) == store.get_agent(5)
    assert reads.dnc_contains(LISTED) is False
    other = target.open_store()  # another process: the CLI
    other.dnc_add(LISTED, actor="cli:ops")
    other.set_authorized(5, False, actor="cli:a")
    assert reads.dnc_contains(LISTED) is True
    assert reads.get_agent(5).authorized is False
    assert reads.calls_to_target_since(LISTED, T0) == store.calls_to_target_since(LISTED, T0)
    for name in ("dnc_add", "audit", "set_authorized", "list_agents", "dnc_count"):
        with pytest.raises(StoreWouldBlock):
            getattr(reads, name)


def test_the_read_view_never_waits_and_never_writes(store: Store, target):
    if target.backend == "postgres":
        assert store.nowait_reads() is None  # every read is a round trip: none at once
        return
    db = store._reader.database
    with pytest.raises(peewee.OperationalError, match="readonly"):
        db.execute_sql("DELETE FROM do_not_call")  # query_only: the view cannot write
    # A lock in the way (recovery, a checkpoint restarting the WAL) is not waited for: the
    # read fails at once and the caller asks the store thread instead.
    assert db.execute_sql("PRAGMA busy_timeout").fetchone() == (0,)
    store.close()
    assert store.nowait_reads() is None


def test_the_dnc_lookup_after_a_call_record_on_the_loop_sees_other_processes(store: Store, target):
    """SQLite answers the DNC lookup of every call on the connection the event loop writes
    call records on (its page cache stays warm; issue 11): still fresh for changes another
    process commits in between, and a bad value goes to the store thread to be reported."""
    reads = store.nowait_reads()
    if reads is None:
        assert target.backend == "postgres"
        return
    store.add_agent(5, "+12125550100", authorized=True, actor="cli:a")
    other = target.open_store()  # the CLI
    for i in range(3):
        call = CallRecord(
            id=uuid.uuid4().hex, agent_id=5, agent_phone="+12125550100", target=LISTED,
            route_code="M", trunk="main", caller_id="+12125550199", created_at=T0,
        )  # fmt: skip
        assert store.create_call_nowait(call, check_agent=True) == call
        listed = i % 2 == 1
        if listed:
            other.dnc_add(LISTED, actor="cli:ops")
        else:
            other.dnc_remove(LISTED, actor="cli:ops")
        assert reads.dnc_contains(LISTED) is listed
        assert reads.dnc_contains(LISTED) is store.dnc_contains(LISTED)
    with pytest.raises(StoreWouldBlock):
        reads.dnc_contains("+1212\x00555")
