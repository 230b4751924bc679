"""corecall store plugin: the embedded SQLite agent store (``[store] backend = "sqlite"``).

One file, WAL journal, owner-only permissions: the parent directory is created ``0700`` and
the database file ``0600`` (SQLite gives its ``-wal``/``-shm`` files the same mode).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from playhouse.pool import PooledSqliteDatabase

from corecall import option
from corecall.errors import StoreError
from corecall.hookspecs import hookimpl
from corecall.store.peewee_store import PeeweeStore

#: Applied to every connection.
PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("busy_timeout", 5000),
    ("synchronous", "normal"),
)


class SqliteStore(PeeweeStore):
    """The agent store in one SQLite file at ``path``."""

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

    @property
    def location(self) -> str:
        return str(self.path)

    def open(self) -> None:
        if not self._is_open:
            self._prepare_file()
        super().open()

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
