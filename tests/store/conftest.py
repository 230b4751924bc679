"""Fixtures for the store contract suite: every test runs on SQLite and on a real PostgreSQL.

``pg_server`` (session, in tests/conftest.py) starts one throwaway PostgreSQL cluster (see
``corecall_testing.pg_server``); each PostgreSQL test gets a fresh, empty schema in it (its
DSN sets ``search_path``), which is as isolated as a fresh database for the store and much
faster to make. Without PostgreSQL installed the ``[postgres]`` tests are skipped loudly, or
fail when ``$CI`` is set.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corecall.store import Store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


class Target:
    """One empty database of one backend: builds stores on it and raw connections to it."""

    def __init__(self, backend: str, location: str, make: Callable[[], Store]):
        self.backend = backend
        self.location = location  # SQLite path or PostgreSQL DSN
        self._make = make
        self._stores: list[Store] = []

    def make_store(self) -> Store:
        """A new, unopened store on this database (closed at the end of the test)."""
        store = self._make()
        self._stores.append(store)
        return store

    def open_store(self) -> Store:
        store = self.make_store()
        store.open()
        return store

    def raw(self):
        """A DB-API connection in autocommit mode, bypassing corecall."""
        if self.backend == "sqlite":
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.location, isolation_level=None)
        import psycopg2

        conn = psycopg2.connect(self.location)
        conn.autocommit = True
        return conn

    def run_sql(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run statements (``?`` placeholders on both backends); return fetched rows."""
        if self.backend == "postgres":
            sql = sql.replace("?", "%s")
        conn = self.raw()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def close_all(self) -> None:
        for store in self._stores:
            store.close()


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path) -> Iterator[Target]:
    if request.param == "sqlite":
        from corecall_store_sqlite import SqliteStore

        path = tmp_path / "data" / "corecall.sqlite3"
        tgt = Target("sqlite", str(path), lambda: SqliteStore(path))
    else:
        from corecall_store_postgres import PostgresStore

        dsn = request.getfixturevalue("pg_server").create_schema()  # fresh schema per test
        tgt = Target("postgres", dsn, lambda: PostgresStore(dsn))
    try:
        yield tgt
    finally:
        tgt.close_all()


@pytest.fixture
def store(target) -> Store:
    """A fresh, opened store ([sqlite] or [postgres])."""
    return target.open_store()
