"""One process serves the calls of a store at a time.

The process that serves calls (``corecall run``, ``console``, ``demo``) owns the store's
unfinished calls: at start it reconciles those a previous run left open, and it enforces
the per-agent limits (``[limits] live_calls_per_agent``) from the calls it tracks. A second
such process on the same store would end the first one's live calls as "outcome unknown
after restart" while they go on, and let an agent's phone ring once per process. So the
serving process holds an exclusive lock for its lifetime and a second one is refused with
the holder named.

Which lock depends on the store:

* a store whose data every machine reaches over the network provides its own lock through
  :meth:`Store.claim_serving <corecall.store.Store.claim_serving>` (PostgreSQL: a
  session-level advisory lock keyed on the database and schema, held on a dedicated
  connection, so processes on other machines are refused too and two schemas of one
  database are two stores). A lost lock connection (a server restart) is logged and the
  lock re-taken by the store; it never stops the serving process. No lock file is taken
  then: the store's lock covers this machine as well, and serving needs the store anyway.
* otherwise (SQLite, or a store without :meth:`~corecall.store.Store.claim_serving`) a
  file (``flock``, released by the kernel when the process ends, even on a crash): beside
  the database for a store that is a file, else in the data directory under a name
  derived from the store's location (then only processes on this machine are detected).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from corecall.errors import CorecallError
from corecall.fields import show_path

if TYPE_CHECKING:
    from corecall.store import Store

#: The longest holder name a store must keep (PostgreSQL's ``application_name``: 63 bytes).
HOLDER_MAX = 63


class StoreServedElsewhere(CorecallError):
    """Another process already serves the calls of this store."""


class ServingHeld(CorecallError):
    """Raised by :meth:`Store.claim_serving <corecall.store.Store.claim_serving>` when
    another process holds the store's serving lock: ``holder`` names it as well as the
    store can (e.g. ``corecall run (pid 812 on pbx1, since 2026-11-30 09:12:00 UTC)``, or
    "" when unknown), ``hint`` is an optional sentence on how to free a lock whose holder
    is gone."""

    def __init__(self, holder: str, hint: str = "") -> None:
        super().__init__(holder or "another corecall process")
        self.holder = holder
        self.hint = hint


class ServingClaim(Protocol):
    """What :meth:`Store.claim_serving <corecall.store.Store.claim_serving>` returns: held
    until :meth:`release` (safe twice) or the end of the process."""

    def release(self) -> None: ...


def holder_name(role: str, *, pid: int | None = None, host: str | None = None) -> str:
    """``corecall ROLE (pid N on HOST)``, the host shortened (ending in ``~``) so that the
    whole fits in :data:`HOLDER_MAX` characters."""
    pid = os.getpid() if pid is None else pid
    host = socket.gethostname() if host is None else host
    head, tail = f"corecall {role} (pid {pid} on ", ")"
    room = max(HOLDER_MAX - len(head) - len(tail), 1)
    if len(host) > room:  # ASCII only: PostgreSQL shows other characters as "?"
        host = host[: room - 1] + "~"
    return f"{head}{host}{tail}"


def serving_lock_path(location: str, data_dir: Path) -> Path:
    """Where the lock file for the store at ``location`` lives (see the module docstring)."""
    if location and Path(location).is_file():
        return Path(f"{location}.serving")
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return data_dir / f"serving-{digest}.lock"


def _refusal(holder: str, store_description: str, hint: str = "") -> StoreServedElsewhere:
    return StoreServedElsewhere(
        f"{holder or 'another corecall process'} already serves the calls of "
        f"{store_description}; a second process would end its live calls as "
        "unknown and break the per-agent limits. Stop it first, or give this one its "
        "own data directory and store (e.g. CORECALL_DATA_DIR=/tmp/training)."
        + (f" {hint}" if hint else "")
    )


class ServingLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends): the store's
    own lock when ``store`` provides one, else the file at ``path``."""

    def __init__(self, path: Path, store_description: str, store: Store | None = None) -> None:
        self.path = path
        self.store_description = store_description
        self.store = store
        self._fd: int | None = None
        self._claim: ServingClaim | None = None

    def acquire(self, role: str) -> None:
        """Take the lock for ``role`` (``run``, ``console``, ``demo``).

        Raises :class:`StoreServedElsewhere` naming the process that holds it, an
        :class:`OSError` when the lock file cannot be created, and what the store raises
        when it cannot be reached."""
        claim_serving = getattr(self.store, "claim_serving", None)  # optional in a store
        if claim_serving is not None:
            try:
                claim = claim_serving(holder_name(role))
            except ServingHeld as held:
                raise _refusal(held.holder, self.store_description, held.hint) from None
            if claim is not None:
                self._claim = claim
                return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            os.close(fd)
            raise _refusal(holder, self.store_description) from None
        since = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        os.ftruncate(fd, 0)
        os.write(fd, f"corecall {role} (pid {os.getpid()}, since {since})\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._claim is not None:
            claim, self._claim = self._claim, None
            claim.release()
        if self._fd is not None:
            os.close(self._fd)  # the kernel releases the flock with the last descriptor
            self._fd = None

    def __repr__(self) -> str:
        if self._claim is not None:
            return f"ServingLock({self._claim!r})"
        return f"ServingLock({show_path(self.path)})"
