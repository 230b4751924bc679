"""corecall store plugin: the PostgreSQL agent store (``[store] backend = "postgres"``).

The DSN comes from ``CORECALL_POSTGRES_DSN`` (or, by the general rule,
``CORECALL_STORE_POSTGRES_DSN``) or ``[store] postgres_dsn``, e.g.
``postgresql://corecall@127.0.0.1:5432/corecall`` (libpq ``key=value`` strings work too).
Connections are pooled and checked before reuse (a round trip) when they have been idle
for over :data:`PING_AFTER_IDLE` seconds, so a restarted server is reconnected to on the
next call. Error messages name ``host:port`` and never contain the password.
"""

from __future__ import annotations

import getpass
import select
import threading
import time

import attrs
import psycopg2.extensions
from playhouse.pool import PooledPostgresqlDatabase

from corecall import option
from corecall.errors import ConfigError, StoreError
from corecall.hookspecs import hookimpl
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
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if self._password:
            reason = reason.replace(self._password, "***")
        return StoreError(f"cannot connect to PostgreSQL at {self.host}:{self.port}: {reason}")


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
