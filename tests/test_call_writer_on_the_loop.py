"""The call writer writes call progress on the event loop when the store can at once (issue 11).

SQLite has one writer at a time. With the call writer's batches on the store thread, a call
record written on the event loop (``create_call_nowait``) found the lock held by them for
2.3 % of calls and fell back to the store thread behind the whole batch (measured: p99
place → Originate 8.7 ms against 3.7 ms). Now both write on the loop through one connection:
they never contend; the store thread takes a batch only when another writer holds the lock,
in the same order, and checkpoints the WAL.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest
from corecall_testing import AGENT_ON_ROUTE_M

from corecall import hookimpl
from corecall.calls import NOWAIT_PROGRESS_ROWS
from corecall.domain import CallState, EndReason
from corecall.telephony.driver import TrunkDriver

AGENT = AGENT_ON_ROUTE_M
TARGET = "+12125550123"
STEPS = (
    CallState.AGENT_RINGING, CallState.AGENT_ANSWERED, CallState.DIALING_TARGET,
    CallState.TARGET_RINGING, CallState.CONNECTED,
)  # fmt: skip


class QuietDriver(TrunkDriver):
    """Originates nothing; the test reports the call's progress itself."""

    NAME = "quiet"

    async def originate(self, request, progress):
        pass

    async def hangup(self, call_id):
        return False


class Spy:
    """Where the store was asked to write progress, and what each write returned."""

    def __init__(self, store) -> None:
        self.events: list = []
        self.record_fallbacks = 0
        for name in ("save_progress", "save_progress_nowait", "checkpoint", "create_call_nowait"):
            self._wrap(store, name)

    def _wrap(self, store, name: str) -> None:
        real = getattr(store, name)

        def spied(*args, **kwargs):
            on_loop = threading.current_thread() is threading.main_thread()
            result = real(*args, **kwargs)
            if name == "create_call_nowait":
                self.record_fallbacks += result is None
            else:
                size = len(args[0]) if args else 0
                self.events.append((name, "loop" if on_loop else "store", size, result))
            return result

        setattr(store, name, spied)

    def of(self, name: str) -> list:
        return [e for e in self.events if e[0] == name]


@pytest.fixture
def build(started_calls):
    async def make(**sections):
        class Drivers:
            @hookimpl
            def corecall_register_trunk_drivers(self, registry):
                registry.register(QuietDriver)

        app, manager = await started_calls(
            extra_plugins=[("quiet_driver", Drivers())],
            trunks={"main": {"driver": "quiet"}, "dev": {"driver": "quiet"}},
            limits={"live_calls_per_agent": 1000, "calls_per_minute": 100000},
            **sections,
        )
        return app, manager, Spy(app.store)

    return make


async def test_progress_is_written_on_the_loop_and_the_store_thread_only_checkpoints(build):
    app, manager, spy = await build()
    records = [await manager.place(AGENT, TARGET) for _ in range(5)]
    for state in STEPS:
        for record in records:
            manager.progress(record.id, state)
        await asyncio.sleep(0)  # the writer runs between the steps, as with a real PBX
    for record in records:
        manager.progress(record.id, CallState.ENDED, EndReason.COMPLETED)
    for record in records:
        final = await asyncio.wait_for(manager.wait_final(record.id), 10)
        stored = app.store.get_call(record.id)
        assert stored == final and (stored.state, stored.reason) == (
            CallState.ENDED, EndReason.COMPLETED,
        )  # fmt: skip
        assert stored.agent_ringing_at and stored.connected_at and stored.ended_at
    assert spy.of("save_progress") == []  # never the store thread
    writes = spy.of("save_progress_nowait")
    assert writes and all(where == "loop" and ok for _, where, _, ok in writes)
    assert spy.record_fallbacks == 0  # a record never found the lock held by the writer
    await asyncio.sleep(0.1)
    assert [(n, where) for n, where, *_ in spy.of("checkpoint")] == [("checkpoint", "store")]


async def test_a_large_batch_is_written_in_chunks_with_the_loop_free_between_them(build):
    app, manager, spy = await build()
    records = [await manager.place(AGENT, TARGET) for _ in range(NOWAIT_PROGRESS_ROWS + 8)]
    spy.events.clear()
    for record in records:  # one batch for the writer: every call rings at once
        manager.progress(record.id, CallState.AGENT_RINGING)
    asyncio.get_running_loop().call_soon(spy.events.append, ("other work",))
    for record in records:
        manager.progress(record.id, CallState.ENDED, EndReason.AGENT_NO_ANSWER)
    await asyncio.wait_for(manager.wait_all_final(10), 10)
    sizes = [e[2] if e[0] == "save_progress_nowait" else e[0] for e in spy.events if
             e[0] != "checkpoint"]  # fmt: skip
    assert sizes[:3] == [NOWAIT_PROGRESS_ROWS, "other work", 8]
    assert all(size <= NOWAIT_PROGRESS_ROWS for size in sizes if isinstance(size, int))
    for record in records:
        assert app.store.get_call(record.id).reason is EndReason.AGENT_NO_ANSWER


async def test_while_another_writer_holds_the_lock_progress_takes_the_store_thread_in_order(
    build,
):
    """Another process (``corecall agents revoke``, a DNC import) holds SQLite's write lock:
    the loop never waits for it; the batch goes to the store thread, which waits its turn,
    and the later transitions are written after it, never before."""
    app, manager, spy = await build()
    record = await manager.place(AGENT, TARGET)
    await asyncio.sleep(0.05)  # dialing_agent is on record
    spy.events.clear()
    other = sqlite3.connect(app.store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        manager.progress(record.id, CallState.AGENT_RINGING)
        await asyncio.sleep(0.2)  # the writer tried the loop, then handed it over
        manager.progress(record.id, CallState.CONNECTED)
        manager.progress(record.id, CallState.ENDED, EndReason.COMPLETED)
        await asyncio.sleep(0.2)
        assert app.store.get_call(record.id).state is CallState.DIALING_AGENT  # nothing yet
        assert not manager._finished[record.id].done()  # not announced before it is stored
    finally:
        other.execute("ROLLBACK")
        other.close()
    final = await asyncio.wait_for(manager.wait_final(record.id), 10)
    stored = app.store.get_call(record.id)
    assert stored == final and stored.state is CallState.ENDED
    assert stored.agent_ringing_at and stored.connected_at and stored.ended_at
    ringing = [e for e in spy.events if e[0].startswith("save_progress")][:2]
    assert ringing == [
        ("save_progress_nowait", "loop", 1, False), ("save_progress", "store", 1, None),
    ]  # fmt: skip


def _size(path: str) -> int:
    return os.stat(path).st_size


async def test_the_wal_stays_bounded_while_calls_keep_coming(build, monkeypatch):
    """The loop's connection never checkpoints; the store thread does, about once a second
    (here every 0.1 s). SQLite starts the WAL over only when a write begins with all of it
    checkpointed, which a steady stream of writes never leaves room for: the checkpoint
    must make it happen once the WAL is large (here 0.5 MiB; with PASSIVE checkpoints alone
    the WAL grew ~4 MB/s at 50 calls/s).
    """
    import corecall.calls

    monkeypatch.setattr(corecall.calls, "CHECKPOINT_INTERVAL", 0.1)
    app, manager, spy = await build()
    monkeypatch.setattr(app.store, "WAL_RESTART_FRAMES", 128)  # 0.5 MiB, not 64
    wal = f"{app.store.path}-wal"
    loop = asyncio.get_running_loop()
    sizes: list[int] = []
    deadline = loop.time() + 3.0
    while loop.time() < deadline:
        record = await manager.place(AGENT, TARGET)
        for state in STEPS:
            manager.progress(record.id, state)
            await asyncio.sleep(0)
        manager.progress(record.id, CallState.ENDED, EndReason.COMPLETED)
        await asyncio.sleep(0.002)
        sizes.append(_size(wal))
    checkpoints = len(spy.of("checkpoint"))
    assert checkpoints >= 10
    # Measured: 1-2 MB here; with PASSIVE checkpoints alone 15 MB at half time and twice
    # that at the end.
    assert max(sizes) < 8_000_000, f"the WAL grew to {max(sizes)} bytes"
    # A RESTART holds writers back briefly: a call record that meets it takes the store
    # thread (at most about one per checkpoint; here up to 10 a second).
    assert spy.record_fallbacks <= checkpoints


@pytest.mark.postgres
async def test_through_the_store_thread_the_writer_gathers_a_burst_into_few_writes(
    build, pg_server
):
    """PostgreSQL has no write on the loop: every batch is a store-thread trip, and under a
    burst it held ~3 call states a statement, each statement's parse and plan costing more
    than its rows (issue 11). Once a batch has gone that way, the writer waits
    STORE_THREAD_WRITER_LINGER before taking the next, so states arriving meanwhile share
    one transaction and one statement; nothing is announced before it is stored."""
    from corecall.calls import STORE_THREAD_WRITER_LINGER

    dsn = pg_server.create_schema()
    app, manager, spy = await build(store={"backend": "postgres", "postgres_dsn": dsn})
    records = [await manager.place(AGENT, TARGET) for _ in range(20)]
    await asyncio.sleep(STORE_THREAD_WRITER_LINGER * 3)  # dialing_agent is on record
    spy.events.clear()
    for record in records:  # one state per loop step, as a PBX's events come
        manager.progress(record.id, CallState.AGENT_RINGING)
        await asyncio.sleep(0)  # the writer may run between them
    assert not manager._finished[records[-1].id].done()
    for record in records:
        manager.progress(record.id, CallState.ENDED, EndReason.AGENT_NO_ANSWER)
    await asyncio.wait_for(manager.wait_all_final(10), 10)
    writes = spy.of("save_progress")
    # The ringing and the end of each call, reported within one wait, are one write of each
    # call's last state (measured without the wait: [2, 20], the first states alone).
    assert [size for _, _, size, _ in writes] == [20]
    for record in records:
        stored = app.store.get_call(record.id)
        assert stored.agent_ringing_at is not None
        assert stored.reason is EndReason.AGENT_NO_ANSWER
