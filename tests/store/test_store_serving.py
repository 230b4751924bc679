"""One process serves a store's calls at a time, on both backends (corecall.serving)."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from corecall_testing import config_dict

from corecall.app import App
from corecall.config import parse_config
from corecall.serving import StoreServedElsewhere, holder_name

_ADVICE = (
    "a second process would end its live calls as unknown and break the per-agent limits. "
    "Stop it first, or give this one its own data directory and store "
    "(e.g. CORECALL_DATA_DIR=/tmp/training)."
)


def _app(target_or_dsn, data_dir) -> App:
    raw = config_dict(data_dir)
    if isinstance(target_or_dsn, str):
        raw["store"] = {"backend": "postgres", "postgres_dsn": target_or_dsn}
    elif target_or_dsn.backend == "sqlite":
        raw["store"] = {"backend": "sqlite", "sqlite_path": target_or_dsn.location}
    else:
        raw["store"] = {"backend": "postgres", "postgres_dsn": target_or_dsn.location}
    return App(parse_config(raw, path=None))


def _pg_holder(app: App, role: str) -> tuple[str, int]:
    """How a refusal names ``app``'s serving lock on PostgreSQL, and its backend pid."""
    conn = app._serving._claim._conn
    with conn.cursor() as cur:
        cur.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        backend, started = cur.fetchone()
    since = started.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    host = socket.gethostname()
    return f"corecall {role} (pid {os.getpid()} on {host}, since {since})", backend


def _pg_refusal(holder: str, backend: int, store: App) -> str:
    return (
        f"{holder} already serves the calls of the postgres store {store.store.location}; "
        f"{_ADVICE} If its machine is gone, PostgreSQL frees the lock when it notices the "
        f"connection is dead; to free it now: SELECT pg_terminate_backend({backend});"
    )


def test_a_second_serving_process_on_the_same_store_is_refused(target, tmp_path):
    first, second = _app(target, tmp_path), _app(target, tmp_path)
    try:
        first.claim_serving("run")
        with pytest.raises(StoreServedElsewhere) as refused:
            second.claim_serving("console")
        if target.backend == "sqlite":
            assert re.fullmatch(
                rf"corecall run \(pid {os.getpid()}, since [^)]+\) already serves the calls of "
                rf"the sqlite store {re.escape(target.location)}; {re.escape(_ADVICE)}",
                str(refused.value),
            )
        else:
            assert str(refused.value) == _pg_refusal(*_pg_holder(first, "run"), second)
        first.close()  # the lock goes with the process (here: with the app)
        second.claim_serving("console")
    finally:
        first.close()
        second.close()


# ------------------------------------------------------------------ PostgreSQL: any machine


@pytest.mark.postgres
def test_postgres_refuses_a_process_on_another_machine(pg_server, tmp_path):
    """Two data directories stand for two machines: no lock file is shared, the advisory
    lock in the database refuses the second and names the first."""
    dsn = pg_server.create_schema()
    first, second = _app(dsn, tmp_path / "pbx1"), _app(dsn, tmp_path / "pbx2")
    try:
        first.claim_serving("run")
        with pytest.raises(StoreServedElsewhere) as refused:
            second.claim_serving("demo")
        assert str(refused.value) == _pg_refusal(*_pg_holder(first, "run"), second)
        assert not list((tmp_path / "pbx1").glob("serving-*"))  # no lock file on PostgreSQL
        first.close()
        second.claim_serving("demo")
        third = _app(dsn, tmp_path / "pbx3")
        with pytest.raises(StoreServedElsewhere) as refused:
            third.claim_serving("run")
        third.close()
        assert str(refused.value).startswith(f"corecall demo (pid {os.getpid()} on ")
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_postgres_two_schemas_of_one_database_are_two_stores(pg_server, tmp_path):
    one, other = pg_server.create_schema(), pg_server.create_schema()
    assert one.split("?")[0] == other.split("?")[0]  # one database
    first, second = _app(one, tmp_path), _app(other, tmp_path)  # and one data directory
    try:
        first.claim_serving("run")
        second.claim_serving("run")
        assert first._serving._claim.where != second._serving._claim.where
    finally:
        first.close()
        second.close()


_HOLD = """
import sys
from corecall_store_postgres import PostgresStore
store = PostgresStore(sys.argv[1])
store.open()
store.claim_serving("corecall run (pid %d on elsewhere)" % __import__("os").getpid())
print("held", flush=True)
sys.stdin.read()
"""


@pytest.mark.postgres
def test_postgres_a_crashed_holder_frees_the_lock(pg_server, tmp_path):
    dsn = pg_server.create_schema()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, dsn], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    app = _app(dsn, tmp_path)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(StoreServedElsewhere) as refused:
            app.claim_serving("run")
        assert str(refused.value).startswith(f"corecall run (pid {holder.pid} on elsewhere, since ")
        holder.kill()  # SIGKILL: no release(), the connection just ends
        holder.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                app.claim_serving("run")
                break
            except StoreServedElsewhere:  # the server has not seen the socket close yet
                assert time.monotonic() < deadline, "the lock outlived its holder by 10 s"
                time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()
        app.close()


@pytest.mark.postgres
def test_postgres_a_lost_lock_connection_is_logged_and_the_lock_taken_again(
    pg_server, tmp_path, caplog
):
    from corecall_store_postgres import PostgresStore

    dsn = pg_server.create_schema()
    store, other = PostgresStore(dsn), PostgresStore(dsn)
    store.open()
    other.open()
    lock = store.claim_serving(holder_name("run"))
    try:
        assert lock.check() is True
        caplog.set_level(logging.WARNING, logger="corecall_store_postgres")

        def kill_lock_connection():
            pid = lock._conn.get_backend_pid()
            pg_server.execute(f"SELECT pg_terminate_backend({pid})", dbname="corecall_test")

        kill_lock_connection()  # as a server restart would
        assert lock.check() is True
        described = store.describe()
        lost = f"the serving lock of the {described} was lost (its connection: "
        again = ("WARNING", f"the serving lock of the {described} is held again")
        assert [(r.levelname, r.getMessage()[: len(lost)]) for r in caplog.records[:1]] == [
            ("ERROR", lost)
        ]
        assert caplog.records[0].getMessage().endswith("); taking it again")
        assert [(r.levelname, r.getMessage()) for r in caplog.records[1:]] == [again]
        caplog.clear()
        # Lost while another process takes it: said loudly at every check, never raised.
        kill_lock_connection()
        rival = other.claim_serving("corecall console (pid 4242 on pbx2)")
        assert lock.check() is False
        assert lock.check() is False
        messages = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert messages[0][0] == "ERROR"
        held = (
            "CRITICAL",
            f"the serving lock of the {described}, lost, is now held by corecall console "
            f"(pid 4242 on pbx2, since {_since(rival)}): two processes may be serving its "
            "calls; stop one",
        )
        assert messages[1:] == [held, held]
        caplog.clear()
        rival.release()
        assert lock.check() is True
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == [again]
    finally:
        lock.release()
        store.close()
        other.close()


def _since(lock) -> str:
    with lock._conn.cursor() as cur:
        cur.execute("SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        return cur.fetchone()[0].astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@pytest.mark.postgres
def test_postgres_serving_lock_messages_never_show_the_password(pg_server, tmp_path, caplog):
    from corecall_testing.pg_server import SUPERUSER

    password = "s3cret-Pw9"
    dsn = pg_server.create_schema().replace(f"//{SUPERUSER}@", f"//{SUPERUSER}:{password}@")
    first, second = _app(dsn, tmp_path / "a"), _app(dsn, tmp_path / "b")
    try:
        first.claim_serving("run")
        with pytest.raises(StoreServedElsewhere) as refused:
            second.claim_serving("run")
        assert password not in str(refused.value)
        lock = first._serving._claim
        with lock._conn.cursor() as cur:
            cur.execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
            )
            assert cur.fetchone()[0] == holder_name("run")
        caplog.set_level(logging.DEBUG)
        pg_server.execute(f"SELECT pg_terminate_backend({lock._conn.get_backend_pid()})",
                          dbname="corecall_test")  # fmt: skip
        lock.store._dsn = lock.store._dsn.replace(str(pg_server.port), "1")  # unreachable now
        assert lock.check() is False
        assert caplog.records and all(password not in r.getMessage() for r in caplog.records)
        assert (
            caplog.records[-1]
            .getMessage()
            .startswith(
                "cannot take the serving lock again yet (retrying every 30 s): cannot connect to "
                "PostgreSQL at 127.0.0.1:"
            )
        )
    finally:
        first.close()
        second.close()
