"""corecall store plugin: the embedded SQLite agent store (``[store] backend = "sqlite"``).

One file, WAL journal, owner-only permissions: the parent directory is created ``0700`` and
the database file ``0600`` (SQLite gives its ``-wal``/``-shm`` files the same mode).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sqlite3
import threading
from pathlib import Path

import attrs
import peewee
from playhouse.pool import PooledSqliteDatabase

from corecall import option
from corecall.domain import Agent, CallRecord
from corecall.errors import AlreadyExistsError, StoreError
from corecall.hookspecs import hookimpl
from corecall.store import NowaitReads, StoreWouldBlock
from corecall.store.peewee_store import PeeweeStore, _text

#: Applied to every connection.
PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("busy_timeout", 5000),
    ("synchronous", "normal"),
)


class SqliteStore(PeeweeStore):
    """The agent store in one SQLite file at ``path``."""

    #: WAL frames (pages, 4 KiB) after which :meth:`checkpoint` starts the WAL over (~64 MiB).
    WAL_RESTART_FRAMES = 16384

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        database = PooledSqliteDatabase(
            str(self.path),
            pragmas=PRAGMAS,
            timeout=5,  # seconds to wait for a lock, same as busy_timeout
            max_connections=None,  # one per concurrently active thread
            check_same_thread=False,  # the pool hands a connection to one thread at a time
        )
        super().__init__(database)
        # The *_nowait methods' connections, one per calling thread (the event loop's): the
        # per-call read, the DNC lookup, call records and the writer's progress.
        self._nowait = threading.local()
        self._nowait_conns: list[sqlite3.Connection] = []
        self._nowait_lock = threading.Lock()
        # nowait_reads(): the same store code on a connection whose reads never wait
        # (busy_timeout 0) and that cannot write (query_only), for the event loop.
        reader_db = peewee.SqliteDatabase(
            str(self.path), pragmas=(("busy_timeout", 0), ("query_only", 1)), timeout=0,
            check_same_thread=False, thread_safe=False,
        )  # fmt: skip
        self._reader = PeeweeStore(reader_db)
        self._reads = _SqliteNowaitReads(self._reader, self)

    @property
    def location(self) -> str:
        return str(self.path)

    def agent_and_recent_calls_nowait(
        self, telegram_id: int, since: _dt.datetime
    ) -> tuple[Agent | None, int] | None:
        """The per-call read, answered on the calling thread (the event loop) when SQLite
        can answer it at once: a WAL reader never waits for writers, the statement is one
        indexed lookup (~50 µs), and this connection's ``busy_timeout`` is 0, so in the rare
        case a lock is in the way (a checkpoint restarting the WAL, recovery) it returns
        None at once and the caller takes the store thread instead. The agent is read fresh
        every time: a revocation committed by any process shows on the next request."""
        if not self._is_open:
            return None
        params = self._hot_read_params(telegram_id, since)  # validates; raises StoreError
        try:
            row = self._nowait_conn().execute(self._sql.agent_and_count, params).fetchone()
        except sqlite3.Error:
            return None
        return self._agent_and_count_from(row)

    def nowait_reads(self) -> NowaitReads | None:
        """This store's indexed reads on the event loop: a WAL reader never waits for
        writers, and in the rare case a lock is in the way (a checkpoint restarting the WAL,
        recovery) the read raises StoreWouldBlock at once and the caller asks the store
        thread. Each read sees every change committed before it, by any process."""
        return self._reads if self._is_open else None

    def dnc_contains_nowait(self, number: str) -> bool | None:
        """:meth:`dnc_contains` on the event loop's connection (the one call records are
        written on), or None when SQLite cannot answer at once. The DNC check reads it on
        every call: on this connection SQLite's page cache is still valid after the call
        records written on it, where the read view's own connection had it dropped by each
        of them (measured: 14 µs against 53 µs a lookup; issue 11). Raises StoreError for a
        bad number."""
        if not self._is_open:
            return None
        params = (_text(number, "number"),)
        try:
            row = self._nowait_conn().execute(self._sql.dnc_contains, params).fetchone()
        except sqlite3.Error:
            return None
        return row is not None

    def create_call_nowait(
        self, call: CallRecord, *, check_agent: bool = False
    ) -> CallRecord | None:
        """The call record, written on the calling thread (the event loop) when SQLite can
        take it at once: one INSERT and a commit to the WAL (no fsync: ``synchronous =
        normal``; this connection never checkpoints, ``wal_autocheckpoint = 0``, the store
        thread's connections do). If another writer holds the lock (the call writer, or a
        ``corecall agents revoke`` in another process), it returns None at once
        (``busy_timeout`` 0) and the caller takes the store thread. With ``check_agent`` the
        INSERT re-checks the agent inside this write transaction, which sees every change
        committed before it (see ``Store.create_call``). Raises StoreError for a bad value,
        AlreadyExistsError for a duplicate id, AgentChangedError for an agent that changed."""
        if not self._is_open:
            return None
        written, values = self._insert_values(call)
        if check_agent:
            sql, params = self._sql.insert_agent_call, self._agent_call_params(call, values)
        else:
            sql, params = self._sql.insert_call, values
        conn = self._nowait_conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            return None
        try:
            inserted = conn.execute(sql, params).rowcount
            if inserted != 1:
                row = conn.execute(self._sql.agent, (values[1],)).fetchone()
                conn.execute("ROLLBACK")
                raise self._agent_changed(call, self._agent_from(row) if row else None)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            raise AlreadyExistsError(f"call {call.id!r} exists already") from None
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return None
        return written

    def save_progress_nowait(self, calls: list[CallRecord]) -> bool:
        """The call writer's progress, written on the calling thread (the event loop) when
        SQLite can take it at once, on the same connection as :meth:`create_call_nowait`:
        one UPDATE per call (~30 µs each, measured) and a commit to the WAL (no fsync; this
        connection never checkpoints: :meth:`checkpoint` does, on the store thread). If
        another writer holds the lock (the store thread, ``corecall`` in another process),
        nothing is written and it returns False at once; the caller takes the store
        thread. Raises StoreError for a bad value."""
        if not self._is_open:
            return False
        rows = self._progress_rows(calls)  # validates; raises StoreError
        if not rows:
            return True
        conn = self._nowait_conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            return False
        try:
            conn.executemany(self._sql.save_progress, rows)
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return False
        return True

    def checkpoint(self) -> None:
        """Fold the WAL into the database file, on the calling thread (the store thread): a
        PASSIVE checkpoint (copies the WAL and fsyncs, ~15 ms here, never blocking anyone);
        and once the WAL holds :attr:`WAL_RESTART_FRAMES` frames, a RESTART one, which
        copies what was written meanwhile and makes the next write start the WAL over.

        PASSIVE alone does not bound the WAL: SQLite starts it over only when a write begins
        with every frame checkpointed, which a steady stream of writes never leaves room for
        (measured: +4 MB/s at 50 calls/s, without end). RESTART holds writers back while it
        runs, and a call record written on the event loop that meets it goes through the
        store thread behind it (measured on the lab with a RESTART every second: 1-11 of 300
        records): so it runs only every ~16 s at that rate, when the WAL is large."""
        with self._session():
            _busy, frames, _done = self._db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= self.WAL_RESTART_FRAMES:
                self._db.execute_sql("PRAGMA wal_checkpoint(RESTART)")

    def _nowait_conn(self) -> sqlite3.Connection:
        """This thread's connection for the *_nowait methods (made on first use)."""
        conn = getattr(self._nowait, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=0
            )
            for pragma in ("busy_timeout = 0", "synchronous = normal",
                           "wal_autocheckpoint = 0", "foreign_keys = 1"):  # fmt: skip
                conn.execute(f"PRAGMA {pragma}")
            self._nowait.conn = conn
            with self._nowait_lock:
                self._nowait_conns.append(conn)
        return conn

    def close(self) -> None:
        self._reader.close()
        with self._nowait_lock:
            conns, self._nowait_conns = self._nowait_conns, []
        self._nowait = threading.local()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        super().close()

    def open(self) -> None:
        if not self._is_open:
            self._prepare_file()
        super().open()
        # One connection, kept open (a read must not pay for connecting); the schema is this
        # store's (made or upgraded above), the reader only reads it.
        try:
            self._reader.database.connect(reuse_if_open=True)
        except peewee.PeeweeException as exc:
            self.close()
            raise self._connect_error(exc) from None
        self._reader._is_open = True

    def _prepare_file(self) -> None:
        """Create the parent directory (0700) and an empty database file (0600) if missing."""
        try:
            try:
                self.path.parent.mkdir(mode=0o700, parents=True)
            except FileExistsError:
                pass
            else:
                os.chmod(self.path.parent, 0o700)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                return
            os.close(fd)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create the SQLite store {self.path}: {exc.strerror}"
            ) from None


class _SqliteNowaitReads(NowaitReads):
    """The read view, with the DNC lookup of every call on the event loop's own connection
    (:meth:`SqliteStore.dnc_contains_nowait`); the other reads through the view's read-only
    connection."""

    def __init__(self, reader: PeeweeStore, store: SqliteStore) -> None:
        super().__init__(reader)
        self._store = store

    def dnc_contains(self, number: str) -> bool:
        try:
            found = self._store.dnc_contains_nowait(number)
        except StoreError as exc:
            raise StoreWouldBlock("dnc_contains") from exc
        if found is None:
            raise StoreWouldBlock("dnc_contains")
        return found


@attrs.frozen
class SqliteOptions:
    """The keys of ``[store]`` when ``backend = "sqlite"``."""

    sqlite_path: Path | None = option(
        None, doc="The database file (default: corecall.sqlite3 in the data directory)."
    )


def _build(config, options: SqliteOptions) -> SqliteStore:
    return SqliteStore(options.sqlite_path or config.data_dir / "corecall.sqlite3")


@hookimpl
def corecall_register_stores(registry):
    registry.register("sqlite", _build, options=SqliteOptions)


__all__ = ["PRAGMAS", "SqliteOptions", "SqliteStore", "corecall_register_stores"]
