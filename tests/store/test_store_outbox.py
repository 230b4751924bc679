"""The store's outbox (schema v4; its retention indexes v5): part of the store contract, run
on [sqlite] and [postgres].

The webhooks plugin writes every event here before it sends it, so what is tested is what
delivery relies on: order (``seq``) per destination, idempotent adds, failures and retries
recorded, delivered messages leaving the pending list, redelivery, survival of a restart and
of a schema upgrade from every older version; retention (delivered messages deleted in
batches, never a pending one nor a follower's resume point) and the indexes that keep the
pruner, the resume and the counts from reading the whole table.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from corecall.domain import OutboxMessage
from corecall.errors import StoreError
from corecall.store import Store
from corecall.store.peewee_store import DIALECTS, MIGRATIONS

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def msg(event_id: str, destination: str = "crm", key: str = "call1", **kw) -> OutboxMessage:
    return OutboxMessage(
        destination=destination, event_id=event_id, topic="call.state_changed",
        body=f'{{"id": "{event_id}", "text": "Zoë 😀"}}', ordering_key=key, **kw,
    )  # fmt: skip


def ids(messages: list[OutboxMessage]) -> list[str]:
    return [m.event_id for m in messages]


def test_pending_in_order_per_destination(store: Store):
    assert store.outbox_add([msg("e1"), msg("e2"), msg("x1", "audit"), msg("e3")]) == 4
    assert ids(store.outbox_pending("crm")) == ["e1", "e2", "e3"]
    assert ids(store.outbox_pending("audit")) == ["x1"]
    assert ids(store.outbox_pending("crm", limit=2)) == ["e1", "e2"]
    first = store.outbox_pending("crm")[0]
    assert first.body == '{"id": "e1", "text": "Zoë 😀"}'
    assert (first.topic, first.ordering_key, first.attempts, first.last_error) == (
        "call.state_changed", "call1", 0, "",
    )  # fmt: skip
    assert first.created_at is not None and first.next_attempt_at == first.created_at
    assert first.delivered_at is None
    seqs = [m.seq for m in store.outbox_pending("crm")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_adding_an_event_twice_is_harmless(store: Store):
    assert store.outbox_add([msg("e1"), msg("e2")]) == 2
    assert store.outbox_add([msg("e2"), msg("e3"), msg("e1")]) == 1
    assert ids(store.outbox_pending("crm")) == ["e1", "e2", "e3"]
    # the same event id for another destination is a different message
    assert store.outbox_add([msg("e1", "audit")]) == 1


def test_a_burst_keeps_its_order_and_is_marked_delivered_in_one_call(store: Store):
    # A burst of calls: 8 events per call, several destinations interleaved, one add; the
    # deliverer marks more events at once than one statement's parameters may hold.
    burst = [msg(f"call{c}-{s}", dest, key=f"call{c}")
             for c in range(200) for s in range(8) for dest in ("crm", "audit")]  # fmt: skip
    assert store.outbox_add(burst + burst[:5]) == 3200  # a repeat inside the batch: skipped
    crm = store.outbox_pending("crm", limit=5000)
    assert ids(crm) == [m.event_id for m in burst if m.destination == "crm"]
    store.outbox_mark_delivered([m.seq for m in crm], T0)
    assert store.outbox_pending("crm") == []
    assert len(store.outbox_pending("audit", limit=5000)) == 1600
    assert store.outbox_counts() == {"audit": (1600, 0), "crm": (0, 1600)}


def test_failed_try_is_recorded_and_stays_pending(store: Store):
    store.outbox_add([msg("e1", created_at=T0), msg("e2", created_at=T0)])
    first, _second = store.outbox_pending("crm")
    later = T0 + dt.timedelta(seconds=30)
    store.outbox_mark_failed([first.seq], "HTTP 500 from http://127.0.0.1:1/hook", later)
    store.outbox_mark_failed([first.seq], "connection refused\x00\udcff", later)
    again = store.outbox_pending("crm")
    assert ids(again) == ["e1", "e2"]
    assert again[0].attempts == 2 and again[0].next_attempt_at == later
    assert again[0].last_error.startswith("connection refused")
    assert again[1].attempts == 0


def test_delivered_messages_leave_the_pending_list(store: Store):
    store.outbox_add([msg("e1"), msg("e2"), msg("e3")])
    e1, e2, _ = store.outbox_pending("crm")
    store.outbox_mark_failed([e1.seq], "timeout", T0)
    store.outbox_mark_delivered([e1.seq, e2.seq], T0)
    assert ids(store.outbox_pending("crm")) == ["e3"]
    delivered = {m.event_id: m for m in store.outbox_list("crm")}
    assert delivered["e1"].delivered_at == T0 and delivered["e1"].last_error == ""
    # a late failure report for a delivered message changes nothing
    store.outbox_mark_failed([e2.seq], "late", T0)
    assert {m.event_id: m for m in store.outbox_list("crm")}["e2"].attempts == 0
    assert store.outbox_counts() == {"crm": (1, 2)}


def test_list_newest_first_and_filters(store: Store):
    store.outbox_add([msg("e1"), msg("x1", "audit"), msg("e2")])
    store.outbox_mark_delivered([store.outbox_pending("crm")[0].seq], T0)
    assert ids(store.outbox_list()) == ["e2", "x1", "e1"]
    assert ids(store.outbox_list("crm")) == ["e2", "e1"]
    assert ids(store.outbox_list(pending_only=True)) == ["e2", "x1"]
    assert ids(store.outbox_list(limit=1)) == ["e2"]
    assert store.outbox_list(limit=0) == []
    with pytest.raises(StoreError, match="limit"):
        store.outbox_list(limit=-1)
    assert store.outbox_counts() == {"audit": (1, 0), "crm": (1, 1)}


def test_redeliver_makes_messages_pending_again_in_their_place(store: Store):
    store.outbox_add([msg("e1"), msg("e2"), msg("x1", "audit")])
    seqs = [m.seq for m in store.outbox_pending("crm")]
    store.outbox_mark_failed(seqs[:1], "500", T0)
    store.outbox_mark_delivered(seqs, T0)
    assert store.outbox_pending("crm") == []
    assert store.outbox_redeliver(["e1", "nope"]) == 1
    again = store.outbox_pending("crm")
    assert ids(again) == ["e1"] and again[0].attempts == 0 and again[0].seq == seqs[0]
    assert again[0].next_attempt_at > T0
    assert store.outbox_redeliver(["x1"], destination="crm") == 0
    assert store.outbox_redeliver([]) == 0


def test_bad_text_is_refused_and_nothing_is_written(store: Store):
    with pytest.raises(StoreError, match="NUL"):
        store.outbox_add([msg("e1"), msg("e2\x00")])
    assert store.outbox_pending("crm") == []
    with pytest.raises(StoreError, match="timezone-aware"):
        store.outbox_add([msg("e1", created_at=dt.datetime(2024, 1, 1))])


def test_pending_messages_survive_a_restart(target):
    store = target.open_store()
    store.outbox_add([msg(f"e{i}") for i in range(5)])
    store.outbox_mark_delivered([store.outbox_pending("crm")[0].seq], T0)
    store.close()
    reopened = target.open_store()
    assert ids(reopened.outbox_pending("crm")) == ["e1", "e2", "e3", "e4"]


def test_concurrent_writers_keep_each_writers_order(store: Store):
    def writer(name: str) -> None:
        for i in range(20):
            store.outbox_add([msg(f"{name}-{i}", key=name)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pending = ids(store.outbox_pending("crm", limit=1000))
    assert len(pending) == 60
    for name in ("a", "b", "c"):
        assert [e for e in pending if e.startswith(name)] == [f"{name}-{i}" for i in range(20)]


@pytest.mark.parametrize("version", range(0, Store.SCHEMA_VERSION))
def test_upgrade_from_every_older_version_gets_a_working_outbox(target, version):
    """A database left at any older version (built by the frozen migration steps, as that
    corecall wrote it) upgrades to the current one and the outbox works."""
    if version:
        for step in range(1, version + 1):
            MIGRATIONS[step](target.run_sql, DIALECTS[target.backend])
        target.run_sql(f"INSERT INTO schema_version (version) VALUES ({version})")
    store = target.open_store()
    assert store.schema_version() == Store.SCHEMA_VERSION
    store.outbox_add([msg("e1"), msg("e2")])
    assert ids(store.outbox_pending("crm")) == ["e1", "e2"]


def test_list_by_topic(store: Store):
    store.outbox_add([msg("e1"), OutboxMessage("crm", "audit-4", "admin.action", "{}"), msg("e2")])
    assert ids(store.outbox_list("crm", topic="admin.action")) == ["audit-4"]
    assert ids(store.outbox_list(topic="call.state_changed")) == ["e2", "e1"]


def test_audit_after_follows_the_log_oldest_first(store: Store):
    for n in range(5):
        store.audit("cli:alice", "plugin.disable", f"p{n}")
    entries = store.audit_log()
    oldest = min(e.id for e in entries)
    after = store.audit_after(oldest, limit=3)
    assert [e.subject for e in after] == ["p1", "p2", "p3"]
    assert store.audit_after(max(e.id for e in entries)) == []


def test_outcomes_since_counts_ended_calls_by_reason(store: Store):
    import uuid

    from corecall.domain import CallRecord, CallState, EndReason

    def call(created_at, reason=None):
        record = CallRecord(
            id=uuid.uuid4().hex, agent_id=7, agent_phone="+12125550100", target="+14155550123",
            route_code="M", trunk="main", caller_id="+12125550199", created_at=created_at,
        )  # fmt: skip
        store.create_call(record)
        if reason is not None:
            store.record_transition(record.id, CallState.ENDED, created_at, reason=reason)

    yesterday = T0 - dt.timedelta(days=1)
    call(yesterday, EndReason.COMPLETED)
    call(T0, EndReason.COMPLETED)
    call(T0, EndReason.COMPLETED)
    call(T0 + dt.timedelta(hours=1), EndReason.TARGET_BUSY)
    call(T0)  # still live: not an outcome yet
    assert store.outcomes_since(T0) == {"completed": 2, "target_busy": 1}
    assert store.outcomes_since(T0 + dt.timedelta(days=1)) == {}


# ---- retention (schema v5): delivered messages are deleted after a keep time, in batches


def deliver(store: Store, event_ids: list[str], at: dt.datetime, destination: str = "crm"):
    seqs = [m.seq for m in store.outbox_pending(destination, 1000) if m.event_id in event_ids]
    assert len(seqs) == len(event_ids)
    store.outbox_mark_delivered(seqs, at)  # type: ignore[arg-type]


def test_prune_deletes_only_messages_delivered_before_the_cutoff(store: Store):
    old, recent = T0 - dt.timedelta(days=8), T0 - dt.timedelta(hours=1)
    long_ago = T0 - dt.timedelta(days=30)
    # e0 has been failing for a month: old, but never delivered
    store.outbox_add([msg("e0", created_at=long_ago)] + [msg(f"e{i}") for i in range(1, 7)])
    store.outbox_mark_failed([store.outbox_pending("crm")[0].seq], "HTTP 500", T0)
    deliver(store, ["e1", "e2", "e3"], old)
    deliver(store, ["e4", "e5"], recent)
    cutoff = T0 - dt.timedelta(days=7)
    assert store.outbox_prune(cutoff) == 3
    assert store.outbox_prune(cutoff) == 0
    assert sorted(ids(store.outbox_list(limit=100))) == ["e0", "e4", "e5", "e6"]
    assert ids(store.outbox_pending("crm")) == ["e0", "e6"]  # nothing pending was touched
    assert store.outbox_counts() == {"crm": (2, 2)}


def test_prune_works_in_batches_oldest_delivery_first(store: Store):
    store.outbox_add([msg(f"e{i}") for i in range(11)])
    for i in range(10):  # e9 delivered first, e0 last; e10 still pending
        deliver(store, [f"e{i}"], T0 - dt.timedelta(minutes=i))
    later = T0 + dt.timedelta(days=1)
    assert store.outbox_prune(later, limit=4) == 4
    assert ids(store.outbox_list(limit=100)) == ["e10", "e5", "e4", "e3", "e2", "e1", "e0"]
    assert store.outbox_prune(later, limit=4) == 4
    assert store.outbox_prune(later, limit=4) == 2
    assert store.outbox_prune(later, limit=4) == 0
    assert ids(store.outbox_list(limit=100)) == ["e10"]


def test_prune_keeps_the_newest_message_of_each_topic(store: Store):
    """The webhooks' audit follower resumes after the newest admin.action in the outbox, or
    at its internal start mark: pruning must never make it start over (and resend)."""
    start = OutboxMessage("corecall:internal", "webhooks.audit_start", "webhooks.audit_start",
                          '{"audit_id": 3}')  # fmt: skip
    admin = [OutboxMessage(dest, f"audit-{n}", "admin.action", "{}")
             for n in (4, 5, 6) for dest in ("crm", "audit")]  # fmt: skip
    store.outbox_add([start, *admin, msg("e1"), msg("e2")])
    deliver(store, ["webhooks.audit_start"], T0 - dt.timedelta(days=90), "corecall:internal")
    deliver(store, ["audit-4", "audit-5", "audit-6", "e1", "e2"], T0 - dt.timedelta(days=9))
    deliver(store, ["audit-4", "audit-5", "audit-6"], T0 - dt.timedelta(days=9), "audit")
    while store.outbox_prune(T0 - dt.timedelta(days=7), limit=2):
        pass
    left = {(m.destination, m.event_id) for m in store.outbox_list(limit=100)}
    assert left == {
        ("corecall:internal", "webhooks.audit_start"),
        ("audit", "audit-6"),  # the newest admin.action (added last), whichever URL
        ("crm", "e2"),
    }
    assert ids(store.outbox_list(topic="admin.action", limit=1)) == ["audit-6"]


def test_a_redelivered_message_is_pending_again_and_not_pruned(store: Store):
    store.outbox_add([msg("e1"), msg("e2"), msg("e3")])
    deliver(store, ["e1", "e2", "e3"], T0 - dt.timedelta(days=9))
    assert store.outbox_redeliver(["e1"]) == 1
    assert store.outbox_prune(T0) == 1  # e2 (e3 is its topic's newest)
    assert ids(store.outbox_pending("crm")) == ["e1"]
    assert sorted(ids(store.outbox_list(limit=100))) == ["e1", "e3"]


def test_prune_refuses_bad_arguments_and_changes_nothing(store: Store):
    store.outbox_add([msg("e1"), msg("e2")])
    deliver(store, ["e1", "e2"], T0 - dt.timedelta(days=9))
    with pytest.raises(StoreError, match="timezone-aware"):
        store.outbox_prune(dt.datetime(2030, 1, 1))
    for bad in (0, -1, True, 2.5):
        with pytest.raises(StoreError, match="limit must be a whole number >= 1"):
            store.outbox_prune(T0, limit=bad)  # type: ignore[arg-type]
    assert store.outbox_counts() == {"crm": (0, 2)}


def test_counts_list_every_destination_with_its_kept_and_pending_messages(store: Store):
    assert store.outbox_counts() == {}
    store.outbox_add([msg("e1", d) for d in ("https://b.example/h", "https://a.example/h", "x")])
    store.outbox_add([msg("e2", "x"), msg("e3", "x")])
    deliver(store, ["e1", "e2"], T0, "x")
    assert store.outbox_counts() == {
        "https://a.example/h": (1, 0), "https://b.example/h": (1, 0), "x": (1, 2),
    }  # fmt: skip


def _plan(target, sql: str, params: tuple) -> str:
    """The database's plan for ``sql`` as one text (PostgreSQL: with sequential scans
    priced out, so the plan shows whether an index can answer it at all)."""
    if target.backend == "sqlite":
        rows = target.run_sql("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(r[-1]) for r in rows)
    conn = target.raw()
    try:
        cur = conn.cursor()
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()


def test_resume_counts_and_prune_read_indexes_not_the_whole_outbox(target):
    """After months of calls the outbox holds millions of rows: the questions asked at every
    start (where the audit follower resumes), by `webhooks list` (counts) and by the pruner
    are answered from indexes, never by reading every row."""
    store = target.open_store()
    param = "?" if target.backend == "sqlite" else "%s"
    sql = store._sql  # type: ignore[attr-defined]
    ts = "2024-05-01 00:00:00.000000+00:00"
    questions = {
        "resume": (f"SELECT seq FROM outbox WHERE topic = {param} ORDER BY seq DESC LIMIT 1",
                   ("admin.action",)),
        "counts": (sql.outbox_counts, ()),
        "prune": (sql.outbox_prune.replace("DELETE FROM", "SELECT seq FROM", 1), (ts, ts, 500)),
    }  # fmt: skip
    for name, (query, params) in questions.items():
        plan = _plan(target, query, params)
        whole = "SCAN outbox" in plan if target.backend == "sqlite" else "Seq Scan" in plan
        assert not whole, f"{name} reads the whole outbox:\n{plan}"


def test_a_v4_outbox_full_of_old_deliveries_upgrades_and_is_pruned(target):
    """A database that a v4 corecall filled (no retention: every delivered event kept)
    upgrades to v5, keeps what is pending and its resume points, and gives up the rest."""
    for step in range(1, 5):
        MIGRATIONS[step](target.run_sql, DIALECTS[target.backend])
    target.run_sql("INSERT INTO schema_version (version) VALUES (4)")
    old, new = "2024-03-01 10:00:00.000000+00:00", "2024-04-30 10:00:00.000000+00:00"
    rows = [(f"call-{n}", "call.state_changed", old) for n in range(50)]
    rows += [("audit-7", "admin.action", old), ("call-50", "call.state_changed", new)]
    rows += [("call-51", "call.state_changed", None)]
    for event_id, topic, delivered in rows:
        target.run_sql(
            "INSERT INTO outbox (destination, event_id, topic, ordering_key, body, created_at,"
            " next_attempt_at, delivered_at) VALUES ('crm', ?, ?, '', '{}', ?, ?, ?)",
            (event_id, topic, old, old, delivered),
        )
    store = target.open_store()
    assert store.schema_version() == Store.SCHEMA_VERSION
    assert store.outbox_counts() == {"crm": (1, 52)}
    cutoff = T0 - dt.timedelta(days=7)
    while store.outbox_prune(cutoff, limit=20):
        pass
    assert ids(store.outbox_list(limit=100)) == ["call-51", "call-50", "audit-7"]
    assert ids(store.outbox_pending("crm")) == ["call-51"]
