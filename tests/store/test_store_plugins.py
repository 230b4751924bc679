"""The store plugins: entry points, hook registration, factories built from a Config,
SQLite file safety and pragmas, PostgreSQL DSN and connection errors."""

from __future__ import annotations

import importlib.metadata
import socket
import sqlite3
import stat
import time

import pluggy
import pytest

import corecall.hookspecs
from corecall.config import parse_config
from corecall.errors import ConfigError, StoreError
from corecall.options import parse_options
from corecall.registries import StoreRegistry
from corecall.store import Store

import corecall_store_postgres  # isort: skip
import corecall_store_sqlite  # isort: skip
from corecall_store_postgres import PostgresStore  # isort: skip
from corecall_store_sqlite import SqliteStore  # isort: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("CORECALL_POSTGRES_DSN", "CORECALL_DATA_DIR", "CORECALL_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def register(module, name: str) -> StoreRegistry:
    """Call the plugin's hook through pluggy, as the core does (checks the hookimpl too)."""
    pm = pluggy.PluginManager(corecall.hookspecs.PROJECT)
    pm.add_hookspecs(corecall.hookspecs)
    pm.register(module, name=name)
    registry = StoreRegistry()
    registry.plugin = name
    pm.hook.corecall_register_stores(registry=registry)
    return registry


def build(registry: StoreRegistry, name: str, config):
    """Build a store as the application does: [store] validated against the backend's
    options class, then ``factory(config, options)``."""
    reg = registry.get(name)
    options = parse_options(reg.options, config.store.options, table_name="store", path=None,
                            reserved=("backend",)).value  # fmt: skip
    return reg.value(config, options)


def test_entry_points_are_installed():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="corecall")}
    assert eps.get("store_sqlite") == "corecall_store_sqlite"
    assert eps.get("store_postgres") == "corecall_store_postgres"
    assert importlib.metadata.version("corecall-store-sqlite") == "0.1.0"
    requires = importlib.metadata.requires("corecall-store-postgres") or []
    assert any(r.startswith("psycopg2-binary") for r in requires)


# --------------------------------------------------------------------------- sqlite


def test_sqlite_plugin_registers_a_working_factory(tmp_path):
    registry = register(corecall_store_sqlite, "store_sqlite")
    assert registry.names() == ["sqlite"]
    assert registry.get("sqlite").plugin == "store_sqlite"
    path = tmp_path / "new" / "dir" / "corecall.sqlite3"
    config = parse_config({"store": {"sqlite_path": str(path)}}, path=None)
    store = build(registry, "sqlite", config)
    assert isinstance(store, SqliteStore) and isinstance(store, Store)
    assert not path.exists()  # building the store touches nothing; open() does
    store.open()
    try:
        store.add_agent(7_000_000_001, "+12125550100", actor="cli:test")
        assert store.get_agent(7_000_000_001) is not None
    finally:
        store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for sidecar in path.parent.glob("corecall.sqlite3-*"):  # -wal / -shm follow the file
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_default_path_is_in_the_data_dir(tmp_path):
    config = parse_config({"data_dir": str(tmp_path / "data")}, path=None)
    store = build(register(corecall_store_sqlite, "store_sqlite"), "sqlite", config)
    store.open()
    store.close()
    assert (tmp_path / "data" / "corecall.sqlite3").is_file()


def test_sqlite_pragmas_are_on_every_connection(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    store.open()
    try:
        with store.database.connection_context():
            pragma = store.database.pragma
            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == 5000
            assert pragma("synchronous") == 1  # NORMAL
    finally:
        store.close()


def test_sqlite_existing_directory_keeps_its_mode(tmp_path):
    tmp_path.chmod(0o755)
    store = SqliteStore(tmp_path / "db.sqlite3")
    store.open()
    store.close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "db.sqlite3").stat().st_mode) == 0o600


def test_sqlite_bad_path_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create"):
        SqliteStore(blocker / "db.sqlite3").open()


def test_sqlite_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        SqliteStore(path).open()


# --------------------------------------------------------------------------- postgres


@pytest.mark.postgres
def test_postgres_plugin_registers_a_working_factory(pg_server):
    registry = register(corecall_store_postgres, "store_postgres")
    assert registry.names() == ["postgres"]
    dsn = pg_server.create_schema()
    config = parse_config({"store": {"backend": "postgres", "postgres_dsn": dsn}}, path=None)
    store = build(registry, "postgres", config)
    assert isinstance(store, PostgresStore)
    store.open()
    try:
        store.add_agent(2**53, "+12125550100", actor="cli:test")
        assert store.get_agent(2**53).telegram_id == 2**53
        assert store.schema_version() == Store.SCHEMA_VERSION
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_dsn_from_the_environment(pg_server, monkeypatch):
    dsn = pg_server.create_schema()
    monkeypatch.setenv("CORECALL_POSTGRES_DSN", dsn)
    config = parse_config({"store": {"backend": "postgres"}}, path=None)
    store = build(register(corecall_store_postgres, "store_postgres"), "postgres", config)
    store.open()
    store.close()


def test_postgres_empty_dsn_is_a_config_error():
    config = parse_config({"store": {"backend": "postgres"}}, path=None)
    registry = register(corecall_store_postgres, "store_postgres")
    with pytest.raises(ConfigError) as info:
        build(registry, "postgres", config)
    assert str(info.value) == (
        "[store] postgres_dsn (or CORECALL_POSTGRES_DSN) is empty; "
        "expected e.g. postgresql://corecall@127.0.0.1:5432/corecall"
    )


def test_postgres_invalid_dsn_is_a_config_error_without_the_secret():
    with pytest.raises(ConfigError) as info:
        PostgresStore("host=x password=hunter2 nonsense")
    assert "hunter2" not in str(info.value)
    assert "postgresql://corecall@127.0.0.1:5432/corecall" in str(info.value)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://corecall:S3cr3t-pw@127.0.0.1:{port}/corecall",
        "host=127.0.0.1 port={port} user=corecall password=S3cr3t-pw dbname=corecall",
    ],
    ids=["uri", "keywords"],
)
def test_postgres_connection_failure_names_host_port_not_password(template):
    port = _closed_port()
    store = PostgresStore(template.format(port=port))
    with pytest.raises(StoreError) as info:
        store.open()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "refused" in message.lower()  # the underlying reason
    assert "S3cr3t-pw" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    store.close()


def kill_corecall_connections(pg_server) -> None:
    """Terminate corecall's connections to the test database, waiting (up to 5 s) until
    each backend is gone."""
    pg_server.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE application_name = 'corecall' AND pid <> pg_backend_pid()",
        "corecall_test",
    )


@pytest.mark.postgres
def test_postgres_recovers_after_its_connections_are_killed(pg_server):
    dsn = pg_server.create_schema()
    store = PostgresStore(dsn)
    store.open()
    try:
        store.add_agent(1, "+12125550100", actor="cli:test")
        # as a kill some time before the next call would be; one killed in the very instant
        # before a call fails that call (the next test)
        kill_corecall_connections(pg_server)
        assert store.get_agent(1) is not None  # the dead pooled connection is replaced
    finally:
        store.close()


@pytest.mark.postgres
def test_a_connection_killed_in_the_instant_before_a_call_fails_that_call_only(
    pg_server, monkeypatch
):
    """A connection used less than PING_AFTER_IDLE ago is reused without a round trip when
    its socket shows nothing; a backend killed in the very instant before the next call
    (its goodbye not yet arrived: simulated here) fails that one call with a plain
    StoreError naming the server, and the dead connection is replaced for the next."""
    import corecall_store_postgres as plugin

    store = PostgresStore(pg_server.create_schema())
    store.open()
    try:
        store.add_agent(1, "+12125550100", actor="cli:test")
        kill_corecall_connections(pg_server)
        monkeypatch.setattr(plugin, "_has_input", lambda conn: False)
        with pytest.raises(StoreError) as failed:
            store.get_agent(1)
        message = str(failed.value)
        assert message.startswith(f"PostgreSQL store {store.location}: ")
        assert "\n" not in message
        assert store.get_agent(1) is not None  # the next call has a new connection
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_pings_only_a_connection_that_sat_idle(pg_server, monkeypatch):
    """peewee's pool sends SELECT 1 before every reuse; corecall checks out a connection
    per store call, so under a burst that was a third of all statements (issue 11). A
    connection used less than PING_AFTER_IDLE seconds ago is reused without it; one idle
    longer is pinged."""
    import corecall_store_postgres as plugin

    store = PostgresStore(pg_server.create_schema())
    store.open()
    pings = []
    adapter = store.database._adapter
    real = adapter.is_connection_closed
    monkeypatch.setattr(adapter, "is_connection_closed", lambda c: pings.append(1) or real(c))
    try:
        store.add_agent(1, "+12125550100", actor="cli:test")
        for _ in range(20):
            assert store.get_agent(1) is not None
        assert pings == []
        monkeypatch.setattr(plugin, "PING_AFTER_IDLE", 0.05)
        time.sleep(0.1)
        assert store.get_agent(1) is not None
        assert pings == [1]
    finally:
        store.close()


@pytest.mark.postgres
def test_sqlite_and_postgres_stores_side_by_side(tmp_path, pg_server):
    """Models are bound per store: two backends in one process do not interfere."""
    lite = SqliteStore(tmp_path / "db.sqlite3")
    pg = PostgresStore(pg_server.create_schema())
    lite.open()
    pg.open()
    try:
        lite.add_agent(1, "+12125550100", "lite", actor="cli:test")
        pg.add_agent(1, "+12125550100", "pg", actor="cli:test")
        pg.add_agent(2, "+12125550100", "pg2", actor="cli:test")
        assert [a.name for a in lite.list_agents()] == ["lite"]
        assert [a.name for a in pg.list_agents()] == ["pg", "pg2"]
    finally:
        lite.close()
        pg.close()


def test_sqlite_nowait_read_never_waits_for_a_lock(tmp_path):
    """The event-loop read and call record use a connection that never waits for a lock
    (busy_timeout 0) and never checkpoints; when SQLite says busy they give up at once
    (None: the caller goes through the store thread) instead of blocking the loop."""
    import datetime as dt
    import time
    import uuid

    from corecall.domain import CallRecord

    def make_record():
        return CallRecord(
            id=uuid.uuid4().hex, agent_id=5, agent_phone="+12125550100",
            target="+12125550123", route_code="M", trunk="main", caller_id="+12125550199",
            created_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        )  # fmt: skip

    store = SqliteStore(tmp_path / "s.sqlite3")
    store.open()
    try:
        store.add_agent(5, "+12125550100", authorized=True, actor="t")
        since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        assert store.agent_and_recent_calls_nowait(5, since)[0].telegram_id == 5
        conn = store._nowait.conn
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no fsync here

        # Another writer holds the lock (the call writer, the CLI): the record is not
        # written here and nothing waits; the caller goes through the store thread.
        writer = sqlite3.connect(tmp_path / "s.sqlite3", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        record = make_record()
        assert store.create_call_nowait(record) is None
        assert time.monotonic() - started < 0.5
        assert store.agent_and_recent_calls_nowait(5, since)[0].telegram_id == 5  # WAL read
        writer.execute("ROLLBACK")
        writer.close()
        assert store.create_call_nowait(record) == record
        assert store.get_call(record.id) == record

        class Busy:
            def execute(self, *_a):
                raise sqlite3.OperationalError("database is locked")

        store._nowait.conn = Busy()
        assert store.agent_and_recent_calls_nowait(5, since) is None
    finally:
        store.close()
    assert store.agent_and_recent_calls_nowait(5, since) is None  # closed: not answered


def test_sqlite_nowait_progress_gives_way_to_a_lock_and_checkpoints_keep_the_wal_bounded(
    tmp_path,
):
    """The call writer's progress on the event loop: written at once, or False at once when
    another writer holds the lock (nothing written, nothing waited for). That connection
    never checkpoints (an fsync): ``checkpoint()``, run on the store thread, lets the WAL
    start over, so it stops growing; without it, it grows with every write."""
    import datetime as dt
    import os
    import time
    import uuid

    import attrs

    from corecall.domain import CallRecord, CallState

    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.open()
    try:
        store.add_agent(5, "+12125550100", authorized=True, actor="t")
        calls = [
            store.create_call_nowait(CallRecord(
                id=uuid.uuid4().hex, agent_id=5, agent_phone="+12125550100",
                target="+12125550123", route_code="M", trunk="main",
                caller_id="+12125550199", created_at=t0,
            ))
            for _ in range(20)
        ]  # fmt: skip
        ringing = [attrs.evolve(c, state=CallState.AGENT_RINGING, agent_ringing_at=t0)
                   for c in calls]  # fmt: skip

        writer = sqlite3.connect(tmp_path / "s.sqlite3", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        assert store.save_progress_nowait(ringing) is False
        assert time.monotonic() - started < 0.5
        writer.execute("ROLLBACK")
        writer.close()
        assert all(store.get_call(c.id).state is CallState.QUEUED for c in calls)
        assert store.save_progress_nowait(ringing) is True
        assert all(store.get_call(c.id) == r for c, r in zip(calls, ringing, strict=True))

        wal = tmp_path / "s.sqlite3-wal"

        def write_rounds(n: int) -> int:
            for i in range(n):
                state = CallState.AGENT_RINGING if i % 2 else CallState.QUEUED
                assert store.save_progress_nowait([attrs.evolve(c, state=state) for c in calls])
            return os.path.getsize(wal)

        grown = write_rounds(50)
        grown_more = write_rounds(50)
        assert grown_more > grown  # the loop's connection never checkpoints
        for _ in range(4):  # as the call writer does, about once a second
            store.checkpoint()
            assert write_rounds(50) <= grown_more  # written over from the start
    finally:
        store.close()
