"""Nothing dies silently: supervised background tasks, a call writer that survives any store
failure, one bad record that blocks no other, and one store thread for the application."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from corecall_store_sqlite import SqliteOptions, SqliteStore

from corecall import hookimpl
from corecall.app import App
from corecall.domain import CallState, EndReason
from corecall.supervision import Supervisor

AGENT = 501
TARGET = "+12125550123"
OTHER_TARGET = "+12125550124"


# --------------------------------------------------------------------------- the supervisor


async def test_a_crashing_task_is_logged_by_name_and_restarted(caplog):
    supervisor = Supervisor()
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError(f"boom {len(runs)}")
        await asyncio.sleep(3600)

    with caplog.at_level(logging.ERROR):
        supervisor.start("corecall-test-flaky", flaky)
        for _ in range(200):
            if len(runs) == 3:
                break
            await asyncio.sleep(0.01)
    assert len(runs) == 3 and supervisor.failure is None
    assert supervisor.running() == ["corecall-test-flaky"]
    crashes = [r for r in caplog.records if "corecall-test-flaky" in r.getMessage()]
    assert len(crashes) == 2 and "restarting" in crashes[0].getMessage()
    assert crashes[0].exc_info[1].args == ("boom 1",)
    await supervisor.stop()
    assert supervisor.running() == []


async def test_a_task_that_keeps_crashing_stops_the_process_with_its_name(caplog):
    supervisor = Supervisor()

    async def broken():
        raise ValueError("store schema is gone")

    supervisor.start("corecall-test-broken", broken, max_restarts=2, window=60)
    failure = await asyncio.wait_for(supervisor.wait_failed(), 5)
    assert failure.name == "corecall-test-broken" and failure.restarts == 2
    assert str(failure) == (
        "background task 'corecall-test-broken' crashed after 2 restart(s): "
        "ValueError: store schema is gone"
    )
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)


async def test_a_task_without_restart_fails_at_once_and_a_callback_is_named(caplog):
    supervisor = Supervisor()

    async def once():
        raise KeyError("x")

    supervisor.start("corecall-test-once", once, restart=False)
    assert (await asyncio.wait_for(supervisor.wait_failed(), 5)).restarts == 0

    def bad_callback(call_id):
        raise RuntimeError(f"watchdog for {call_id} broke")

    supervisor.call_later(0, "corecall-watchdog-abc", bad_callback, "abc")
    await asyncio.sleep(0.05)
    assert "background callback 'corecall-watchdog-abc' failed" in caplog.text


# --------------------------------------------------------------------------- the call writer


class FlakyStore(SqliteStore):
    """A store plugin's bug: save_progress raises RuntimeError (not StoreError), either the
    first ``fail_times`` times, or whenever a batch holds a call to ``poison_target``. The
    call writer writes on the event loop (save_progress_nowait) when the store can; with
    ``nowait = False`` this store never can (as PostgreSQL) and every write takes the store
    thread: the bug is the same on both paths."""

    fail_times = 0
    poison_target: str | None = None
    nowait = True

    def __init__(self, path):
        super().__init__(path)
        self.failures = 0
        self.threads: set[str] = set()

    def _bug(self, calls):
        if self.failures < self.fail_times:
            self.failures += 1
            raise RuntimeError("driver bug in save_progress")
        if self.poison_target and any(c.target == self.poison_target for c in calls):
            self.failures += 1
            raise RuntimeError(f"cannot encode a call to {self.poison_target}")

    def save_progress(self, calls):
        self.threads.add(threading.current_thread().name)
        self._bug(calls)
        return super().save_progress(calls)

    def save_progress_nowait(self, calls):
        if not self.nowait:
            return False
        self._bug(calls)
        return super().save_progress_nowait(calls)

    def get_agent(self, telegram_id):
        self.threads.add(threading.current_thread().name)
        return super().get_agent(telegram_id)


class FlakyStorePlugin:
    def __init__(self, **behaviour):
        self.behaviour = behaviour
        self.store: FlakyStore | None = None

    @hookimpl
    def corecall_register_stores(self, registry):
        def build(config, options):
            self.store = FlakyStore(options.sqlite_path or config.data_dir / "flaky.sqlite3")
            for key, value in self.behaviour.items():
                setattr(self.store, key, value)
            return self.store

        registry.register("flaky", build, options=SqliteOptions)


async def _place_and_watch(app: App, targets: list[str]):
    manager = app.call_manager()
    await manager.start()
    try:
        app.store.add_agent(AGENT, "+12125550177", authorized=True, actor="test")
        app.store.set_route(AGENT, "M", actor="test")
        seen: dict[str, list[CallState]] = {}
        records = []
        for target in targets:
            record = await manager.place(AGENT, target)
            records.append(record)

            async def watch(call_id=record.id):
                seen[call_id] = [r.state async for r in manager.watch(call_id)]

            watcher = asyncio.create_task(watch())
            await asyncio.wait_for(manager.wait_final(record.id), 30)
            await asyncio.wait_for(watcher, 5)
        return manager, records, seen
    finally:
        await manager.stop()


@pytest.mark.parametrize("nowait", [True, False], ids=["on-the-loop", "store-thread"])
async def test_a_store_that_raises_once_still_gets_every_call_to_its_final_state(
    make_config, caplog, nowait
):
    plugin = FlakyStorePlugin(fail_times=1, nowait=nowait)
    config = make_config(store={"backend": "flaky"})
    app = App(config, extra_plugins=[("flaky_store", plugin)])
    try:
        with caplog.at_level(logging.ERROR):
            _manager, [record], seen = await _place_and_watch(app, [TARGET])
        stored = app.store.get_call(record.id)
        assert (stored.state, stored.reason) == (CallState.ENDED, EndReason.COMPLETED)
        assert seen[record.id][-1] is CallState.ENDED  # the watcher saw the end
        assert plugin.store.failures == 1
        assert "RuntimeError: driver bug in save_progress" in caplog.text
    finally:
        app.close()


@pytest.mark.parametrize("nowait", [True, False], ids=["on-the-loop", "store-thread"])
async def test_one_bad_record_never_blocks_the_others(make_config, caplog, nowait):
    plugin = FlakyStorePlugin(poison_target=OTHER_TARGET, nowait=nowait)
    config = make_config(store={"backend": "flaky"}, limits={"live_calls_per_agent": 2})
    app = App(config, extra_plugins=[("flaky_store", plugin)])
    try:
        _manager, [good, bad, good_again], seen = await _place_and_watch(
            app, [TARGET, OTHER_TARGET, TARGET]
        )
        for record in (good, good_again):
            assert app.store.get_call(record.id).state is CallState.ENDED
        # The poisoned call's final state could not be stored: said loudly, by call id;
        # its watcher still saw it end, and the calls after it were stored.
        assert seen[bad.id][-1] is CallState.ENDED
        assert f"call {bad.id}" in caplog.text and "could not be written" in caplog.text
    finally:
        app.close()


async def test_one_store_thread_serves_the_whole_application(make_config):
    from corecall_testing.fakes import RecordingPort

    from corecall.agents import AgentAdmin
    from corecall.conversation import Conversation
    from corecall.conversation.ports import UserRef

    plugin = FlakyStorePlugin()
    app = App(make_config(store={"backend": "flaky"}), extra_plugins=[("flaky_store", plugin)])
    executor = app.store_executor
    try:
        admin = AgentAdmin(app)
        await app.run_in_store(admin.add, 9, "+12125550109", authorized=True, actor="test")
        manager, _records, _seen = await _place_and_watch(app, [TARGET])
        assert manager.store_executor is executor
        port = RecordingPort()
        conversation = Conversation(app, manager, port=port)
        await conversation.handle_text(UserRef(user_id=9, chat_id=9), "/history")
        assert port.log and port.log[-1][0] == "send"
        threads = plugin.store.threads
        assert len(threads) == 1 and next(iter(threads)).startswith("corecall-store")
    finally:
        app.close()
    assert executor._thread is not None and not executor._thread.is_alive()  # shut down
