"""One process serves the calls of a store at a time.

The process that serves calls (``corecall run``, ``console``, ``demo``) owns the store's
unfinished calls: at start it reconciles those a previous run left open, and it enforces
the per-agent limits (``[limits] live_calls_per_agent``) from the calls it tracks. A second
such process on the same store would end the first one's live calls as "outcome unknown
after restart" while they go on, and let an agent's phone ring once per process. So the
serving process holds an exclusive lock for its lifetime and a second one is refused with
the holder named.

The lock is a file (``flock``, released by the kernel when the process ends, even on a
crash): beside the database for a store that is a file (SQLite), else in the data directory
under a name derived from the store's location (PostgreSQL: one machine; processes on
other machines sharing one PostgreSQL database are not detected).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import os
from pathlib import Path

from corecall.errors import CorecallError
from corecall.fields import show_path


class StoreServedElsewhere(CorecallError):
    """Another process already serves the calls of this store."""


def serving_lock_path(location: str, data_dir: Path) -> Path:
    """Where the lock for the store at ``location`` lives (see the module docstring)."""
    if location and Path(location).is_file():
        return Path(f"{location}.serving")
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return data_dir / f"serving-{digest}.lock"


class ServingLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path, store_description: str) -> None:
        self.path = path
        self.store_description = store_description
        self._fd: int | None = None

    def acquire(self, role: str) -> None:
        """Take the lock for ``role`` (``run``, ``console``, ``demo``).

        Raises :class:`StoreServedElsewhere` naming the process that holds it, and an
        :class:`OSError` when the lock file cannot be created."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            os.close(fd)
            raise StoreServedElsewhere(
                f"{holder or 'another corecall process'} already serves the calls of "
                f"{self.store_description}; a second process would end its live calls as "
                "unknown and break the per-agent limits. Stop it first, or give this one its "
                "own data directory and store (e.g. CORECALL_DATA_DIR=/tmp/training)."
            ) from None
        since = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        os.ftruncate(fd, 0)
        os.write(fd, f"corecall {role} (pid {os.getpid()}, since {since})\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the kernel releases the flock with the last descriptor
            self._fd = None

    def __repr__(self) -> str:
        return f"ServingLock({show_path(self.path)})"
