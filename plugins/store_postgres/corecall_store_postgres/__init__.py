"""corecall store plugin: the PostgreSQL agent store (``[store] backend = "postgres"``).

The DSN comes from ``CORECALL_POSTGRES_DSN`` (or, by the general rule,
``CORECALL_STORE_POSTGRES_DSN``) or ``[store] postgres_dsn``, e.g.
``postgresql://corecall@127.0.0.1:5432/corecall`` (libpq ``key=value`` strings work too).
Connections are pooled and checked before reuse (a round trip) when they have been idle
for over :data:`PING_AFTER_IDLE` seconds, so a restarted server is reconnected to on the
next call. Error messages name ``host:port`` and never contain the password.

The serving lock (:meth:`PostgresStore.claim_serving`, see :mod:`corecall.serving`) is a
session-level advisory lock on a dedicated connection, keyed on the database and schema.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import select
import threading
import time

import attrs
import psycopg2.extensions
from playhouse.pool import PooledPostgresqlDatabase

from corecall import option
from corecall.errors import ConfigError, StoreError
from corecall.hookspecs import hookimpl
from corecall.serving import ServingHeld
from corecall.store.peewee_store import PeeweeStore

EXAMPLE_DSN = "postgresql://corecall@127.0.0.1:5432/corecall"

#: Seconds a pooled connection may sit idle and still be handed out without a liveness
#: round trip. peewee's pool (4.5) sends ``SELECT 1`` on every check-out; corecall checks
#: out a connection for each store call, so under a burst of calls that round trip was a
#: third of all statements sent (720 of 2,279 for 200 calls; issue 11). A connection
#: returned less than this long ago was working then, and if the server has closed it since
#: (a terminated backend, a restart) its socket says so (checked without a round trip); one
#: idle longer is pinged as before. A backend killed in the very instant before its next
#: use fails that one store call (StoreError) and is replaced for the next.
PING_AFTER_IDLE = 1.0

#: The serving lock is the advisory lock (SERVING_LOCK_CLASS, a hash of "database.schema"):
#: every corecall on one schema contends for it, two schemas are two stores. 0x636F7265 is
#: "core" in ASCII.
SERVING_LOCK_CLASS = 0x636F7265
#: Seconds between two checks of the serving lock's connection (a ``SELECT 1``); a lost
#: connection (a server restart, a terminated backend) is logged and the lock taken again.
SERVING_CHECK_EVERY = 30.0

log = logging.getLogger(__name__)


def _has_input(conn) -> bool:
    """Whether the server sent anything to an idle connection: a backend that was
    terminated (``pg_terminate_backend``, a server shutdown or restart) says so and closes
    the socket, which this sees without a round trip."""
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.Error):
        return True
    return bool(readable)


class _PingWhenIdlePool(PooledPostgresqlDatabase):
    """peewee's pool, checking a connection's liveness with a round trip only when it has
    been idle for over :data:`PING_AFTER_IDLE` seconds (its transaction status, which costs
    nothing, is checked every time)."""

    def __init__(self, *args, **kwargs) -> None:
        self._returned_at: dict[int, float] = {}
        self._returned_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _is_closed(self, conn) -> bool:
        with self._returned_lock:
            returned = self._returned_at.pop(id(conn), None)
        if (
            returned is not None
            and time.monotonic() - returned < PING_AFTER_IDLE
            and not conn.closed
            and conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
            and not _has_input(conn)
        ):
            return False
        return super()._is_closed(conn)

    def _close(self, conn, close_conn: bool = False) -> None:
        super()._close(conn, close_conn)
        if not close_conn and not conn.closed:
            with self._returned_lock:
                self._returned_at[id(conn)] = time.monotonic()


def _parse_dsn(dsn: str) -> dict[str, str]:
    if not isinstance(dsn, str) or not dsn.strip():
        raise ConfigError(
            f"[store] postgres_dsn (or CORECALL_POSTGRES_DSN) is empty; expected e.g. {EXAMPLE_DSN}"
        )
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:  # the driver's message may quote the DSN: do not repeat it
        raise ConfigError(
            "[store] postgres_dsn (or CORECALL_POSTGRES_DSN) is not a valid PostgreSQL "
            f"connection string; expected e.g. {EXAMPLE_DSN}"
        ) from None


class PostgresStore(PeeweeStore):
    """The agent store in a PostgreSQL database named by ``dsn``."""

    def __init__(self, dsn: str, *, max_connections: int = 32):
        params = _parse_dsn(dsn)
        self._dsn = dsn
        self._password = params.get("password") or ""
        self.host = params.get("host") or params.get("hostaddr") or "localhost"
        self.port = params.get("port") or "5432"
        self.dbname = params.get("dbname") or params.get("user") or getpass.getuser()
        extra = {k: v for k, v in (("connect_timeout", 5), ("application_name", "corecall"))
                 if k not in params}  # fmt: skip
        database = _PingWhenIdlePool(
            self.dbname,
            dsn=dsn,
            max_connections=max_connections,
            timeout=10,  # seconds to wait for a free pooled connection
            stale_timeout=300,  # recycle connections older than 5 minutes
            **extra,
        )
        super().__init__(database)

    @property
    def location(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"

    def _connect_error(self, exc: BaseException) -> StoreError:
        reason = self._hide_password(" ".join(str(exc).split()) or type(exc).__name__)
        return StoreError(f"cannot connect to PostgreSQL at {self.host}:{self.port}: {reason}")

    def _hide_password(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def claim_serving(self, holder: str) -> AdvisoryServingLock:
        """The serving lock (see :class:`AdvisoryServingLock`); raises
        :class:`~corecall.serving.ServingHeld` naming the process that holds it."""
        lock = AdvisoryServingLock(self, holder)
        lock.take()
        lock.watch()
        return lock


# The process holding a serving lock: its pg_locks row (the two-int4 form has objsubid 2;
# classid and objid are the keys as unsigned 32-bit oids) and its session's name.
_HOLDER_SQL = """
SELECT a.application_name, a.backend_start, a.pid
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
LIMIT 1
"""


class AdvisoryServingLock:
    """The serving lock of a :class:`PostgresStore`: ``pg_try_advisory_lock`` on a
    connection of its own (not the pool's) whose ``application_name`` is the holder's name
    (``corecall run (pid N on HOST)``), which a refused process reads from ``pg_locks`` and
    ``pg_stat_activity``. PostgreSQL frees it when that connection ends: :meth:`release`,
    the end of the process, a crash (at once), a machine gone (when the server notices the
    connection is dead: its ``tcp_keepalives_*`` settings).

    A thread checks the connection every :data:`SERVING_CHECK_EVERY` seconds; when it was
    lost (a server restart) it logs an ERROR and takes the lock again, and if another
    process took it meanwhile logs a CRITICAL naming it, every check until it is taken again:
    the serving process goes on either way (its calls go on)."""

    def __init__(self, store: PostgresStore, holder: str) -> None:
        self.store = store
        self.holder = holder
        self.where = ""  # "database.schema", once taken
        self._conn = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _error(self, exc: BaseException) -> StoreError:
        reason = self.store._hide_password(" ".join(str(exc).split()) or type(exc).__name__)
        return StoreError(f"the serving lock of the {self.store.describe()}: {reason}")

    def take(self) -> None:
        """Take the lock on a new connection; raises :class:`ServingHeld` or StoreError."""
        try:
            conn = psycopg2.connect(self.store._dsn, application_name=self.holder,
                                    connect_timeout=5)  # fmt: skip
        except psycopg2.Error as exc:
            raise self.store._connect_error(exc) from None
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT current_database(), coalesce(current_schema(), '')")
                database, schema = cur.fetchone()
                where = f"{database}.{schema}"
                digest = hashlib.sha256(where.encode()).digest()
                key = (SERVING_LOCK_CLASS, int.from_bytes(digest[:4], "big", signed=True))
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
                if not cur.fetchone()[0]:
                    cur.execute(_HOLDER_SQL, tuple(k & 0xFFFFFFFF for k in key))
                    raise _held(cur.fetchone())
        except psycopg2.Error as exc:
            conn.close()
            raise self._error(exc) from None
        except BaseException:
            conn.close()
            raise
        self._conn, self.where = conn, where

    def watch(self) -> None:
        """Start the thread that checks the lock (see the class docstring)."""
        self._thread = threading.Thread(target=self._watch, name="corecall-serving-lock",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(SERVING_CHECK_EVERY):
            self.check()

    def check(self) -> bool:
        """Whether the lock is held, after taking it again if its connection was lost."""
        with self._lock:
            if self._stop.is_set():
                return False
            conn = self._conn
            if conn is not None:
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                    return True
                except psycopg2.Error as exc:
                    reason = self.store._hide_password(" ".join(str(exc).split()))
                    log.error(
                        "the serving lock of the %s was lost (its connection: %s); taking "
                        "it again", self.store.describe(), reason or type(exc).__name__,
                    )  # fmt: skip
                    conn.close()
                    self._conn = None
            try:
                self.take()
            except ServingHeld as held:
                log.critical(
                    "the serving lock of the %s, lost, is now held by %s: two processes may "
                    "be serving its calls; stop one", self.store.describe(), held.holder or
                    "another process",
                )  # fmt: skip
                return False
            except StoreError as exc:
                log.error("cannot take the serving lock again yet (retrying every %g s): %s",
                          SERVING_CHECK_EVERY, exc)  # fmt: skip
                return False
            log.warning("the serving lock of the %s is held again", self.store.describe())
            return True

    def release(self) -> None:
        """Free the lock (closing its connection frees it on the server); safe twice."""
        self._stop.set()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __repr__(self) -> str:
        return f"advisory lock on {self.store.location} ({self.where})"


def _held(row) -> ServingHeld:
    """ServingHeld naming the holder: ``corecall run (pid N on HOST, since ...)``."""
    if row is None:  # it ended between the two statements
        return ServingHeld("")
    name, started, backend = row
    name = name or f"a PostgreSQL session (backend pid {backend})"
    if started is not None and name.endswith(")"):
        since = started.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        name = f"{name[:-1]}, since {since})"
    return ServingHeld(
        name,
        "If its machine is gone, PostgreSQL frees the lock when it notices the connection "
        f"is dead; to free it now: SELECT pg_terminate_backend({backend});",
    )


@attrs.frozen
class PostgresOptions:
    """The keys of ``[store]`` when ``backend = "postgres"``."""

    postgres_dsn: str = option(
        "",
        doc=f"libpq connection string or URL, e.g. {EXAMPLE_DSN}",
        secret=True,
        env=("CORECALL_POSTGRES_DSN",),
    )
    max_connections: int = option(32, doc="Most pooled connections open at once.",
                                  validator=attrs.validators.ge(1))  # fmt: skip


@hookimpl
def corecall_register_stores(registry):
    registry.register(
        "postgres",
        lambda _config, options: PostgresStore(
            options.postgres_dsn, max_connections=options.max_connections
        ),
        options=PostgresOptions,
    )


__all__ = ["PostgresOptions", "PostgresStore", "corecall_register_stores"]
