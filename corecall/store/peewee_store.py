"""The agent store on peewee: one implementation for SQLite and PostgreSQL.

:class:`PeeweeStore` works on any peewee ``SqliteDatabase`` or ``PostgresqlDatabase`` handed
to it (the store plugins pass pooled ones). Design notes:

* **Per-instance models.** :func:`make_models` builds fresh model classes bound to one
  database, so a SQLite and a PostgreSQL store can be open in the same process; nothing is
  bound at module level.
* **Threads.** Every method checks a connection out for the duration of the call and gives
  it back afterwards (peewee keeps connection state per thread; the pooled databases reuse
  the connections). Methods are therefore safe from ``asyncio.to_thread`` workers; SQLite
  connections are created with ``check_same_thread=False`` so the pool may hand them to
  any thread (one thread at a time). Writes run in one transaction, ``BEGIN IMMEDIATE`` on
  SQLite (no lock-upgrade deadlocks between writers), ``SELECT ... FOR UPDATE`` on the row
  being changed on PostgreSQL.
* **Time.** Every datetime is stored and returned as timezone-aware UTC, to the
  microsecond: ``TIMESTAMPTZ`` on PostgreSQL, fixed-width ISO text
  (``2024-05-01 12:00:00.000000+00:00``, which sorts correctly) on SQLite. Naive datetimes
  are refused.
* **Text.** Text values containing NUL (``\\x00``) or lone surrogates (not UTF-8 encodable)
  are refused with :class:`StoreError` on every backend: PostgreSQL cannot store NUL, neither
  backend can encode a lone surrogate, and silently altering a phone number or a name would
  be worse.
* **Schema.** Versioned; :data:`MIGRATIONS` maps each version to the function that builds it
  from the one before. ``open()`` runs the missing steps in one transaction (an empty
  database goes 0 → 1 → 2, an old one from its version), and refuses a database newer than
  this code.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any, overload

import attrs
import peewee
from playhouse.pool import MaxConnectionsExceeded

from corecall import fields as field_limits
from corecall.domain import (
    STAGE_TIMESTAMP_FIELD,
    TARGET_STAGE_FIELDS,
    Agent,
    AuditEntry,
    CallRecord,
    CallState,
    DncEntry,
    EndReason,
    OutboxMessage,
    is_e164,
    may_have_dialed_target,
    utcnow,
)
from corecall.errors import (
    AgentChangedError,
    AlreadyExistsError,
    CorecallError,
    NotFoundError,
    StoreError,
)
from corecall.store import Store

UTC = _dt.UTC
_BIGINT = (-(2**63), 2**63 - 1)
_SCHEMA_LOCK_KEY = 0x636F7265  # pg_advisory_xact_lock key serialising schema upgrades

# --------------------------------------------------------------------------- values


def _as_utc(value: Any, what: str = "timestamp") -> _dt.datetime:
    if not isinstance(value, _dt.datetime) or value.utcoffset() is None:
        raise StoreError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")
    return value.astimezone(UTC)


#: The longest text each stored field takes (characters): one limit per field, from
#: corecall.fields, the same the CLI and the bot check first. Longer values are refused
#: (details are clipped instead: a call's end or an audit entry must never be lost).
_MAX_CHARS = {
    "name": field_limits.NAME_MAX_CHARS,
    "phone": field_limits.E164_MAX_CHARS,
    "agent_phone": field_limits.E164_MAX_CHARS,
    "target": field_limits.E164_MAX_CHARS,
    "caller_id": field_limits.E164_MAX_CHARS,
    "caller ID": field_limits.E164_MAX_CHARS,
    "route_code": field_limits.ROUTE_CODE_MAX_CHARS,
    "route code": field_limits.ROUTE_CODE_MAX_CHARS,
    "actor": field_limits.ACTOR_MAX_CHARS,
    "reason": field_limits.REASON_MAX_CHARS,
    "action": field_limits.ACTOR_MAX_CHARS,
    "subject": field_limits.ACTOR_MAX_CHARS,
    "trunk": field_limits.ACTOR_MAX_CHARS,
    "id": field_limits.ACTOR_MAX_CHARS,
    "call id": field_limits.ACTOR_MAX_CHARS,
}


def _detail(value: Any) -> str:
    return field_limits.clip(_text(value, "detail"), field_limits.DETAIL_MAX_CHARS)


@overload
def _text(value: Any, what: str) -> str: ...
@overload
def _text(value: Any, what: str, *, null: bool) -> str | None: ...
def _text(value: Any, what: str, *, null: bool = False) -> str | None:
    if value is None and null:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{what} must be text, got {type(value).__name__}")
    limit = _MAX_CHARS.get(what)
    if limit is not None and len(value) > limit:
        raise StoreError(f"{what} is {len(value)} characters long; at most {limit} are stored")
    if "\x00" in value:
        raise StoreError(f"{what} contains a NUL character (\\x00); it cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(
            f"{what} is not valid Unicode (lone surrogate); it cannot be stored"
        ) from None
    return value


def _one_line(value: Any, what: str) -> str:
    """Text for a one-line field (a do-not-call reason): also no control, line-break or
    bidi-override character, which would forge rows in listings and exports."""
    text = _text(value, what)
    bad = field_limits.bad_character(text)
    if bad is not None:
        raise StoreError(
            f"{what} contains the control character U+{ord(bad):04X}; it must be one line"
        )
    return text


def _tid(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StoreError(f"telegram id must be an integer, got {value!r}")
    if not _BIGINT[0] <= value <= _BIGINT[1]:
        raise StoreError(f"telegram id {value} does not fit in 64 bits")
    return value


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class UTCDateTimeField(peewee.Field):
    """Timezone-aware UTC datetimes, microsecond precision, on SQLite and PostgreSQL."""

    field_type = "TIMESTAMPTZ"

    def db_value(self, value):
        if value is None:
            return None
        value = _as_utc(value, self.name)
        if isinstance(self.model._meta.database, peewee.SqliteDatabase):
            return value.isoformat(sep=" ", timespec="microseconds")
        return value

    def python_value(self, value):
        return _read_ts(value)


def _read_ts(value: Any) -> _dt.datetime | None:
    """A stored timestamp (ISO text on SQLite, datetime on PostgreSQL) as aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- models


def make_models(db: peewee.Database) -> SimpleNamespace:
    """Model classes for the current schema, bound to ``db`` only."""

    class _Base(peewee.Model):
        class Meta:
            database = db

    class AgentRow(_Base):
        telegram_id = peewee.BigIntegerField(primary_key=True)
        name = peewee.TextField(default="")
        phone = peewee.TextField()
        authorized = peewee.BooleanField(default=False)
        route_code = peewee.TextField(null=True)
        caller_id = peewee.TextField(null=True)
        created_at = UTCDateTimeField()
        updated_at = UTCDateTimeField()

        class Meta:
            table_name = "agents"

    class CallRow(_Base):
        id = peewee.TextField(primary_key=True)
        agent_id = peewee.BigIntegerField()
        agent_phone = peewee.TextField()
        target = peewee.TextField()
        route_code = peewee.TextField()
        trunk = peewee.TextField()
        caller_id = peewee.TextField()
        state = peewee.TextField()
        reason = peewee.TextField(null=True)
        detail = peewee.TextField(default="")
        created_at = UTCDateTimeField()
        dialing_agent_at = UTCDateTimeField(null=True)
        agent_ringing_at = UTCDateTimeField(null=True)
        agent_answered_at = UTCDateTimeField(null=True)
        dialing_target_at = UTCDateTimeField(null=True)
        target_ringing_at = UTCDateTimeField(null=True)
        connected_at = UTCDateTimeField(null=True)
        ended_at = UTCDateTimeField(null=True)

        class Meta:
            table_name = "calls"

    class AuditRow(_Base):
        id = peewee.BigAutoField()
        at = UTCDateTimeField()
        actor = peewee.TextField()
        action = peewee.TextField()
        subject = peewee.TextField(default="")
        detail = peewee.TextField(default="")

        class Meta:
            table_name = "audit_log"

    class DncRow(_Base):
        number = peewee.TextField(primary_key=True)
        reason = peewee.TextField(default="")
        added_at = UTCDateTimeField()
        added_by = peewee.TextField()

        class Meta:
            table_name = "do_not_call"

    class OutboxRow(_Base):
        seq = peewee.BigAutoField()
        destination = peewee.TextField()
        event_id = peewee.TextField()
        topic = peewee.TextField()
        ordering_key = peewee.TextField(default="")
        body = peewee.TextField()
        created_at = UTCDateTimeField()
        attempts = peewee.IntegerField(default=0)
        next_attempt_at = UTCDateTimeField()
        delivered_at = UTCDateTimeField(null=True)
        last_error = peewee.TextField(default="")

        class Meta:
            table_name = "outbox"

    return SimpleNamespace(
        Agent=AgentRow, Call=CallRow, Audit=AuditRow, Dnc=DncRow, Outbox=OutboxRow
    )


# --------------------------------------------------------------------------- migrations

#: Column types per dialect, used by the (frozen) migration DDL below.
DIALECTS: dict[str, dict[str, str]] = {
    "sqlite": {
        "ts": "TEXT", "bool": "INTEGER", "false": "0",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "fillfactor": "",
    },
    "postgres": {
        "ts": "TIMESTAMPTZ", "bool": "BOOLEAN", "false": "FALSE",
        "serial_pk": "BIGSERIAL PRIMARY KEY", "fillfactor": "80",
    },
}  # fmt: skip

Execute = Callable[[str], Any]


def _migrate_v1(execute: Execute, t: dict[str, str]) -> None:
    """v1: agents, calls and schema_version."""
    execute(
        "CREATE TABLE agents ("
        " telegram_id BIGINT PRIMARY KEY,"
        " name TEXT NOT NULL DEFAULT '',"
        " phone TEXT NOT NULL,"
        f" authorized {t['bool']} NOT NULL DEFAULT {t['false']},"
        " route_code TEXT,"
        f" created_at {t['ts']} NOT NULL,"
        f" updated_at {t['ts']} NOT NULL)"
    )
    stages = ", ".join(
        f"{name} {t['ts']}"
        for name in (
            "dialing_agent_at", "agent_ringing_at", "agent_answered_at", "dialing_target_at",
            "target_ringing_at", "connected_at", "ended_at",
        )
    )  # fmt: skip
    execute(
        "CREATE TABLE calls ("
        " id TEXT PRIMARY KEY,"
        " agent_id BIGINT NOT NULL,"
        " agent_phone TEXT NOT NULL,"
        " target TEXT NOT NULL,"
        " route_code TEXT NOT NULL,"
        " trunk TEXT NOT NULL,"
        " caller_id TEXT NOT NULL,"
        " state TEXT NOT NULL,"
        " reason TEXT,"
        " detail TEXT NOT NULL DEFAULT '',"
        f" created_at {t['ts']} NOT NULL, {stages})"
    )
    execute("CREATE INDEX calls_agent_created ON calls (agent_id, created_at)")
    execute("CREATE INDEX calls_state ON calls (state)")
    execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")


def _migrate_v2(execute: Execute, t: dict[str, str]) -> None:
    """v2: the audit log, and a per-agent caller ID."""
    execute(
        "CREATE TABLE audit_log ("
        f" id {t['serial_pk']},"
        f" at {t['ts']} NOT NULL,"
        " actor TEXT NOT NULL,"
        " action TEXT NOT NULL,"
        " subject TEXT NOT NULL DEFAULT '',"
        " detail TEXT NOT NULL DEFAULT '')"
    )
    execute("ALTER TABLE agents ADD COLUMN caller_id TEXT")


def _migrate_v3(execute: Execute, t: dict[str, str]) -> None:
    """v3: the do-not-call list, and an index for counting calls to one number."""
    execute(
        "CREATE TABLE do_not_call ("
        " number TEXT PRIMARY KEY,"
        " reason TEXT NOT NULL DEFAULT '',"
        f" added_at {t['ts']} NOT NULL,"
        " added_by TEXT NOT NULL)"
    )
    execute("CREATE INDEX calls_target_created ON calls (target, created_at)")


def _migrate_v4(execute: Execute, t: dict[str, str]) -> None:
    """v4: the outbox (events written before they are sent, e.g. by the webhooks plugin)."""
    execute(
        "CREATE TABLE outbox ("
        f" seq {t['serial_pk']},"
        " destination TEXT NOT NULL,"
        " event_id TEXT NOT NULL,"
        " topic TEXT NOT NULL,"
        " ordering_key TEXT NOT NULL DEFAULT '',"
        " body TEXT NOT NULL,"
        f" created_at {t['ts']} NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        f" next_attempt_at {t['ts']} NOT NULL,"
        f" delivered_at {t['ts']},"
        " last_error TEXT NOT NULL DEFAULT '',"
        " UNIQUE (destination, event_id))"
    )
    # The delivery loop's question: the oldest undelivered messages of one destination.
    execute("CREATE INDEX outbox_pending ON outbox (destination, delivered_at, seq)")


def _migrate_v5(execute: Execute, t: dict[str, str]) -> None:
    """v5: the outbox's retention and resume without reading the whole table: delivered
    messages by delivery time (what Store.outbox_prune deletes, oldest first; pending ones
    are not in this index), and messages by topic (the newest admin action, where the
    webhooks' audit follower resumes)."""
    execute("CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL")
    execute("CREATE INDEX outbox_topic ON outbox (topic, seq)")


def _migrate_v6(execute: Execute, t: dict[str, str]) -> None:
    """v6: the index of unfinished calls no longer names the state. ``calls_state`` (v1) was
    never used by a query (``state <> 'ended'`` cannot use it) and made every state change
    write an index entry; PostgreSQL could not update a call's row in place (a HOT update)
    while any index covered ``state``. The calls still to reconcile are found by
    ``calls_unfinished``, a partial index of the rows without an end time (only the final
    UPDATE of a call leaves it). PostgreSQL's calls table keeps a fifth of each page free
    (``fillfactor = 80``) for those in-place updates. Measured under a burst of 200 calls
    (issue 11): an UPDATE of a call took 115 µs on PostgreSQL before."""
    execute("DROP INDEX calls_state")
    # No corecall wrote an end time on a call that is not ENDED; a row that has one anyway
    # (edited by hand) would hide from the reconcile after a restart: its end time goes,
    # so the call is found and ended properly.
    execute("UPDATE calls SET ended_at = NULL WHERE state <> 'ended' AND ended_at IS NOT NULL")
    execute("CREATE INDEX calls_unfinished ON calls (created_at) WHERE ended_at IS NULL")
    if t.get("fillfactor"):
        execute(f"ALTER TABLE calls SET (fillfactor = {t['fillfactor']})")


#: version -> the step that builds it from version - 1. Never edit a released step: add one.
MIGRATIONS: dict[int, Callable[[Execute, dict[str, str]], None]] = {
    1: _migrate_v1,
    2: _migrate_v2,
    3: _migrate_v3,
    4: _migrate_v4,
    5: _migrate_v5,
    6: _migrate_v6,
}
assert sorted(MIGRATIONS) == list(range(1, Store.SCHEMA_VERSION + 1)), "migration missing"

_OWN_TABLES = ("agents", "calls", "audit_log", "do_not_call", "outbox", "schema_version")

#: Rows per INSERT statement in dnc_add_many (4 parameters a row; SQLite allows 32766).
_DNC_ROWS_PER_STATEMENT = 500

# --------------------------------------------------------------------------- the hot path

_AGENT_COLUMNS = (
    "telegram_id", "name", "phone", "authorized", "route_code", "caller_id", "created_at",
)  # fmt: skip
_CALL_COLUMNS = (
    "id", "agent_id", "agent_phone", "target", "route_code", "trunk", "caller_id", "state",
    "reason", "detail", "created_at", *STAGE_TIMESTAMP_FIELD.values(),
)  # fmt: skip
#: What outbox_add writes, and what the outbox reads return (in this order).
_OUTBOX_INSERT_COLUMNS = (
    "destination", "event_id", "topic", "ordering_key", "body", "created_at", "next_attempt_at",
)  # fmt: skip
_OUTBOX_COLUMNS = (
    "seq", *_OUTBOX_INSERT_COLUMNS, "attempts", "delivered_at", "last_error",
)  # fmt: skip


def _as_row_by_row(rows: list[list[Any]]) -> list[list[Any]]:
    """:attr:`_HotSQL.save_progress` rows (state, stage times..., reason, detail, id, 'ended')
    merged to one per call, the values a call would end with if each row were applied in
    order by that statement: each stage time keeps its first value, state/reason/detail
    come from the last row, and nothing after an ENDED row changes the call. Returned as
    :attr:`_HotSQL.save_progress_values` rows (without the trailing 'ended')."""
    ended = CallState.ENDED.value
    stages = len(STAGE_TIMESTAMP_FIELD)
    merged: dict[str, list[Any]] = {}
    for row in rows:
        call_id = row[-2]
        before = merged.get(call_id)
        if before is None:
            merged[call_id] = row[:-1]
        elif before[0] != ended:
            stamps = [
                old if old is not None else new
                for old, new in zip(before[1 : 1 + stages], row[1 : 1 + stages], strict=True)
            ]
            merged[call_id] = [row[0], *stamps, *row[1 + stages : -1]]
    return list(merged.values())


def _check_end_time(call: CallRecord, state: CallState) -> None:
    """A call has an end time only once ENDED: the index of unfinished calls
    (``calls_unfinished``) holds the rows without one. Raises StoreError."""
    if call.ended_at is not None and state is not CallState.ENDED:
        raise StoreError(
            f"call {call.id!r} has an end time but is {state.value}; only an ended call has one"
        )


class _HotSQL:
    """The statements on the path of every call, written once per store and then executed
    with new parameters. Building a query with peewee costs 0.3-1 ms of Python each time
    (profiled under a burst of 200 calls: ~60 % of the store thread went to SQL generation);
    executing the same SQL directly costs ~50 µs. Column names come from the models."""

    def __init__(self, m: SimpleNamespace, param: str, dialect: str) -> None:
        def cols(model, names):
            return ", ".join(model._meta.fields[n].column_name for n in names)

        agent, call = m.Agent._meta.table_name, m.Call._meta.table_name
        self.agent = (
            f"SELECT {cols(m.Agent, _AGENT_COLUMNS)} FROM {agent} WHERE telegram_id = {param}"
        )
        count = f"SELECT COUNT(*) FROM {call} WHERE agent_id = {param} AND created_at >= {param}"
        self.count = count
        self.agent_and_count = (
            f"SELECT {cols(m.Agent, _AGENT_COLUMNS)}, ({count}) FROM {agent} "
            f"WHERE telegram_id = {param}"
        )
        self.call = f"SELECT {cols(m.Call, _CALL_COLUMNS)} FROM {call} WHERE id = {param}"
        self.dnc_contains = f"SELECT 1 FROM do_not_call WHERE number = {param} LIMIT 1"
        # The repeat-call cap's read, on index calls_target_created: the columns its rule
        # reads (corecall.domain.may_have_dialed_target), applied to the rows in Python.
        self.calls_to_target = (
            f"SELECT {cols(m.Call, ('created_at', 'state', 'reason', *TARGET_STAGE_FIELDS))} "
            f"FROM {call} WHERE target = {param} AND created_at >= {param} ORDER BY created_at"
        )
        self.insert_call = (
            f"INSERT INTO {call} ({cols(m.Call, _CALL_COLUMNS)}) "
            f"VALUES ({', '.join([param] * len(_CALL_COLUMNS))})"
        )
        # The same INSERT, written only if the agent is still authorized with the same phone,
        # checked in the statement itself (one statement, one PK lookup): see
        # Store.create_call(check_agent=True). PostgreSQL share-locks the agent row, so a
        # revoke in flight (it takes FOR UPDATE) waits for this record's commit or this
        # statement waits for the revoke's and re-reads the row; SQLite has one writer at a
        # time. Its parameters: insert_call's, then the agent's id and phone. A select list
        # has no column types in PostgreSQL, so NULL stage times are cast.
        ts = "::timestamptz" if dialect == "postgres" else ""
        typed = ", ".join(
            param + (ts if isinstance(m.Call._meta.fields[n], UTCDateTimeField) else "")
            for n in _CALL_COLUMNS
        )
        share = " FOR SHARE" if dialect == "postgres" else ""
        self.insert_agent_call = (
            f"INSERT INTO {call} ({cols(m.Call, _CALL_COLUMNS)}) SELECT {typed} WHERE EXISTS "
            f"(SELECT 1 FROM {agent} WHERE telegram_id = {param} AND authorized "
            f"AND phone = {param}{share})"
        )
        # Stage times keep the first value written; reason/detail are NULL (kept) until the
        # call ends; an ENDED row is never touched again.
        stamps = "".join(f", {n} = COALESCE({n}, {param})" for n in STAGE_TIMESTAMP_FIELD.values())
        self.save_progress = (
            f"UPDATE {call} SET state = {param}{stamps}, reason = COALESCE({param}, reason), "
            f"detail = COALESCE({param}, detail) WHERE id = {param} AND state <> {param}"
        )
        # PostgreSQL: the same UPDATE for a whole batch in one statement (one parse and plan
        # instead of one per call: the writer's batches are 3-4 rows under a burst and each
        # statement cost more than its row). Rows come as VALUES (state, stage times...,
        # reason, detail, id), one per call (save_progress merges a call's records first).
        names = ["state", *STAGE_TIMESTAMP_FIELD.values(), "reason", "detail", "id"]
        stamps_from = "".join(
            f", {n} = COALESCE({call}.{n}, v.{n})" for n in STAGE_TIMESTAMP_FIELD.values()
        )
        self.save_progress_values = (
            f"UPDATE {call} SET state = v.state{stamps_from}, "
            f"reason = COALESCE(v.reason, {call}.reason), "
            f"detail = COALESCE(v.detail, {call}.detail) "
            f"FROM (VALUES %s) AS v ({', '.join(names)}) "
            f"WHERE {call}.id = v.id AND {call}.state <> 'ended'"
        )
        self.save_progress_template = (
            "(%s" + ", %s::timestamptz" * len(STAGE_TIMESTAMP_FIELD) + ", %s, %s, %s)"
        )
        # The outbox under a burst: every call state change is a row (8 per call), written
        # in batches and read back by the deliverer. A duplicate (destination, event_id) is
        # skipped, so a repeated add is harmless.
        outbox = m.Outbox._meta.table_name
        self.outbox_insert = (
            f"INSERT INTO {outbox} ({cols(m.Outbox, _OUTBOX_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join([param] * len(_OUTBOX_INSERT_COLUMNS))}) "
            "ON CONFLICT (destination, event_id) DO NOTHING"
        )
        self.outbox_pending = (
            f"SELECT {cols(m.Outbox, _OUTBOX_COLUMNS)} FROM {outbox} WHERE destination = "
            f"{param} AND delivered_at IS NULL ORDER BY seq LIMIT {param}"
        )
        # Retention: the oldest deliveries first (index outbox_delivered), each candidate
        # checked against the newest seq of its topic (index outbox_topic, one lookup), so a
        # follower's resume point is never deleted. The outer conditions are checked again on
        # the rows themselves (PostgreSQL re-reads a row a concurrent redeliver changed).
        self.outbox_prune = (
            f"DELETE FROM {outbox} WHERE delivered_at IS NOT NULL AND delivered_at < {param} "
            f"AND seq IN (SELECT o.seq FROM {outbox} o WHERE o.delivered_at IS NOT NULL "
            f"AND o.delivered_at < {param} AND o.seq < (SELECT MAX(n.seq) FROM {outbox} n "
            f"WHERE n.topic = o.topic) ORDER BY o.delivered_at LIMIT {param})"
        )
        # Per destination (found by skipping from one to the next in index outbox_pending,
        # not by reading every row), its pending and delivered counts: ranges of that index.
        self.outbox_counts = (
            f"WITH RECURSIVE d (destination) AS (SELECT MIN(destination) FROM {outbox} "
            f"UNION ALL SELECT (SELECT MIN(x.destination) FROM {outbox} x WHERE x.destination "
            "> d.destination) FROM d WHERE d.destination IS NOT NULL) "
            f"SELECT d.destination, (SELECT COUNT(*) FROM {outbox} p WHERE p.destination = "
            "d.destination AND p.delivered_at IS NULL), (SELECT COUNT(*) FROM "
            f"{outbox} q WHERE q.destination = d.destination AND q.delivered_at IS NOT NULL) "
            "FROM d WHERE d.destination IS NOT NULL ORDER BY d.destination"
        )


# --------------------------------------------------------------------------- the store


class PeeweeStore(Store):
    """:class:`~corecall.store.Store` on a peewee SQLite or PostgreSQL database."""

    def __init__(self, database: peewee.Database):
        if isinstance(database, peewee.SqliteDatabase):
            self.dialect, self.backend = "sqlite", "SQLite"
        elif isinstance(database, peewee.PostgresqlDatabase):
            self.dialect, self.backend = "postgres", "PostgreSQL"
        else:
            raise StoreError(f"unsupported peewee database {type(database).__name__}")
        self._db = database
        self._m = make_models(database)
        self._is_open = False
        # SQLite: take the write lock at BEGIN so two writers never deadlock on upgrade.
        self._txn = {"lock_type": "IMMEDIATE"} if self.dialect == "sqlite" else {}
        self._sql = _HotSQL(self._m, database.param, self.dialect)

    # ---- plumbing
    @property
    def database(self) -> peewee.Database:
        """The peewee database (for diagnostics and tests; use the methods for data)."""
        return self._db

    @property
    def location(self) -> str:
        """Where the data is, for messages (never includes a password)."""
        return str(self._db.database)

    def describe(self) -> str:
        return f"{self.backend} store {self.location}"

    def _connect_error(self, exc: BaseException) -> StoreError:
        return StoreError(f"cannot open the {self.describe()}: {_first_line(exc)}")

    @contextlib.contextmanager
    def _session(self, write: bool = False) -> Iterator[None]:
        """A connection for this thread for the call (reused when nested); a transaction
        when ``write``. Database errors become StoreError."""
        if not self._is_open:
            raise StoreError(f"the {self.describe()} is not open; call open() first")
        db, opened = self._db, False
        if db.is_closed():
            try:
                db.connect()
            except (peewee.PeeweeException, MaxConnectionsExceeded) as exc:
                raise self._connect_error(exc) from None
            opened = True
        try:
            if write:
                with db.atomic(**self._txn):
                    yield
            else:
                yield
        except peewee.PeeweeException as exc:
            raise StoreError(f"{self.describe()}: {_first_line(exc)}") from exc
        finally:
            if opened:
                db.close()

    def _locked(self, query: peewee.Select) -> peewee.Select:
        return query.for_update() if self._db.for_update else query

    # ---- lifecycle
    def open(self) -> None:
        if self._is_open:
            return
        self._is_open = True
        try:
            with self._session(write=True):
                self._upgrade()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._is_open = False
        try:
            if hasattr(self._db, "close_all"):
                self._db.close_all()
            elif not self._db.is_closed():
                self._db.close()
        except peewee.PeeweeException as exc:
            raise StoreError(f"closing the {self.describe()}: {_first_line(exc)}") from exc

    def schema_version(self) -> int:
        with self._session():
            return self._stored_version()

    def _stored_version(self) -> int:
        if not self._db.table_exists("schema_version"):
            found = sorted(set(_OWN_TABLES) & set(self._db.get_tables()))
            if found:
                raise StoreError(
                    f"the {self.describe()} has tables {', '.join(found)} but no "
                    "schema_version table; it was not created by corecall"
                )
            return 0
        rows = self._db.execute_sql("SELECT version FROM schema_version").fetchall()
        if len(rows) != 1:
            raise StoreError(
                f"the {self.describe()} schema_version table holds {len(rows)} rows, expected 1"
            )
        return int(rows[0][0])

    def _upgrade(self) -> None:
        if self.dialect == "postgres":
            self._db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        current, target = self._stored_version(), self.SCHEMA_VERSION
        if current > target:
            raise StoreError(
                f"database schema v{current} is newer than this corecall (v{target}); "
                "upgrade corecall"
            )
        if current == target:
            return
        for version in range(current + 1, target + 1):
            MIGRATIONS[version](self._db.execute_sql, DIALECTS[self.dialect])
        self._db.execute_sql("DELETE FROM schema_version")
        self._db.execute_sql(f"INSERT INTO schema_version (version) VALUES ({int(target)})")
        if current:
            self._audit("corecall", "store.upgrade", "schema", f"v{current} → v{target}")

    # ---- agents
    @staticmethod
    def _agent(row) -> Agent:
        return Agent(
            telegram_id=row.telegram_id, phone=row.phone, name=row.name,
            authorized=bool(row.authorized), route_code=row.route_code,
            caller_id=row.caller_id, created_at=row.created_at,
        )  # fmt: skip

    def _agent_row(self, telegram_id: int, *, lock: bool = False):
        query = self._m.Agent.select().where(self._m.Agent.telegram_id == _tid(telegram_id))
        row = (self._locked(query) if lock else query).first()
        if row is None:
            raise NotFoundError(f"no agent with telegram id {telegram_id}")
        return row

    @staticmethod
    def _agent_from(r: tuple) -> Agent:
        """An Agent from a row of :data:`_AGENT_COLUMNS`."""
        return Agent(
            telegram_id=r[0], name=r[1], phone=r[2], authorized=bool(r[3]), route_code=r[4],
            caller_id=r[5], created_at=_read_ts(r[6]),
        )  # fmt: skip

    def _db_ts(self, value: Any, what: str) -> Any:
        value = _as_utc(value, what)
        if self.dialect == "sqlite":
            return value.isoformat(sep=" ", timespec="microseconds")
        return value

    def get_agent(self, telegram_id: int) -> Agent | None:
        with self._session():
            row = self._db.execute_sql(self._sql.agent, (_tid(telegram_id),)).fetchone()
            return self._agent_from(row) if row else None

    def agent_and_recent_calls(
        self, telegram_id: int, since: _dt.datetime
    ) -> tuple[Agent | None, int]:
        """One statement: the agent and how many calls they placed since ``since``."""
        params = self._hot_read_params(telegram_id, since)
        with self._session():
            row = self._db.execute_sql(self._sql.agent_and_count, params).fetchone()
        return self._agent_and_count_from(row)

    def _hot_read_params(self, telegram_id: int, since: _dt.datetime) -> tuple:
        tid = _tid(telegram_id)
        return (tid, self._db_ts(since, "since"), tid)

    def _agent_and_count_from(self, row: tuple | None) -> tuple[Agent | None, int]:
        if row is None:
            return None, 0
        return self._agent_from(row), int(row[len(_AGENT_COLUMNS)])

    def list_agents(self) -> list[Agent]:
        with self._session():
            query = self._m.Agent.select().order_by(self._m.Agent.telegram_id)
            return [self._agent(row) for row in query]

    def add_agent(
        self, telegram_id: int, phone: str, name: str = "", *, authorized: bool = False,
        actor: str,
    ) -> Agent:  # fmt: skip
        values = {
            "telegram_id": _tid(telegram_id), "phone": _text(phone, "phone"),
            "name": _text(name, "name"), "authorized": bool(authorized),
        }  # fmt: skip
        _text(actor, "actor")
        with self._session(write=True):
            now = utcnow()
            try:
                self._m.Agent.insert(**values, created_at=now, updated_at=now).execute()
            except peewee.IntegrityError:
                raise AlreadyExistsError(f"agent {telegram_id} exists already") from None
            detail = _json({"phone": phone, "name": name, "authorized": bool(authorized)})
            self._audit(actor, "agent.add", str(telegram_id), detail)
            return self._agent(self._agent_row(telegram_id))

    def remove_agent(self, telegram_id: int, *, actor: str) -> None:
        _text(actor, "actor")
        with self._session(write=True):
            row = self._agent_row(telegram_id, lock=True)
            self._m.Agent.delete().where(self._m.Agent.telegram_id == telegram_id).execute()
            detail = _json(
                {"phone": row.phone, "name": row.name, "authorized": bool(row.authorized)}
            )
            self._audit(actor, "agent.remove", str(telegram_id), detail)

    def _change_agent(self, telegram_id: int, column: str, value, action: str, actor: str):
        _text(actor, "actor")
        with self._session(write=True):
            old = getattr(self._agent_row(telegram_id, lock=True), column)
            if column == "authorized":
                old = bool(old)
            query = self._m.Agent.update({column: value, "updated_at": utcnow()})
            query.where(self._m.Agent.telegram_id == telegram_id).execute()
            detail = _json({"field": column, "old": old, "new": value})
            self._audit(actor, action, str(telegram_id), detail)
            return self._agent(self._agent_row(telegram_id))

    def set_authorized(self, telegram_id: int, authorized: bool, *, actor: str) -> Agent:
        action = "agent.authorize" if authorized else "agent.revoke"
        return self._change_agent(telegram_id, "authorized", bool(authorized), action, actor)

    def set_phone(self, telegram_id: int, phone: str, *, actor: str) -> Agent:
        phone = _text(phone, "phone")
        return self._change_agent(telegram_id, "phone", phone, "agent.set_phone", actor)

    def set_route(self, telegram_id: int, route_code: str | None, *, actor: str) -> Agent:
        code = _text(route_code, "route code", null=True)
        return self._change_agent(telegram_id, "route_code", code, "agent.set_route", actor)

    def set_caller_id(self, telegram_id: int, caller_id: str | None, *, actor: str) -> Agent:
        cid = _text(caller_id, "caller ID", null=True)
        return self._change_agent(telegram_id, "caller_id", cid, "agent.set_caller_id", actor)

    # ---- calls
    @staticmethod
    def _call(row) -> CallRecord:
        stamps = {name: getattr(row, name) for name in STAGE_TIMESTAMP_FIELD.values()}
        return CallRecord(
            id=row.id, agent_id=row.agent_id, agent_phone=row.agent_phone, target=row.target,
            route_code=row.route_code, trunk=row.trunk, caller_id=row.caller_id,
            state=CallState(row.state), reason=EndReason(row.reason) if row.reason else None,
            detail=row.detail, created_at=row.created_at, **stamps,
        )  # fmt: skip

    def _call_row(self, call_id: str, *, lock: bool = False):
        query = self._m.Call.select().where(self._m.Call.id == _text(call_id, "call id"))
        row = (self._locked(query) if lock else query).first()
        if row is None:
            raise NotFoundError(f"no call with id {call_id!r}")
        return row

    @staticmethod
    def _call_from(r: tuple) -> CallRecord:
        """A CallRecord from a row of :data:`_CALL_COLUMNS`."""
        stamps = {name: _read_ts(v) for name, v in zip(_CALL_COLUMNS[11:], r[11:], strict=True)}
        return CallRecord(
            id=r[0], agent_id=r[1], agent_phone=r[2], target=r[3], route_code=r[4], trunk=r[5],
            caller_id=r[6], state=CallState(r[7]), reason=EndReason(r[8]) if r[8] else None,
            detail=r[9], created_at=_read_ts(r[10]), **stamps,
        )  # fmt: skip

    def create_call(self, call: CallRecord, *, check_agent: bool = False) -> CallRecord:
        written, values = self._insert_values(call)
        with self._session(write=True):
            try:
                if not check_agent:
                    self._db.execute_sql(self._sql.insert_call, values)
                    return written
                params = self._agent_call_params(call, values)
                cursor = self._db.execute_sql(self._sql.insert_agent_call, params)
            except peewee.IntegrityError:
                raise AlreadyExistsError(f"call {call.id!r} exists already") from None
            if cursor.rowcount != 1:
                raise self._agent_changed(call, self.get_agent(call.agent_id))
        return written

    def create_calls(
        self, calls: list[CallRecord], *, check_agent: bool = False
    ) -> list[CallRecord | CorecallError]:
        """All in one transaction (one commit); if that fails, one by one, so a bad record
        fails alone. With ``check_agent`` each record is its own conditional INSERT (one
        statement each, still one transaction) and a record whose agent changed is refused
        alone."""
        outcomes: list[CallRecord | CorecallError] = []
        try:
            prepared = [self._insert_values(call) for call in calls]
            with self._session(write=True), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
                cursor = self._db.cursor()
                if check_agent:
                    sql = self._sql.insert_agent_call
                    for call, (written, values) in zip(calls, prepared, strict=True):
                        cursor.execute(sql, self._agent_call_params(call, values))
                        if cursor.rowcount == 1:
                            outcomes.append(written)
                        else:
                            agent = self.get_agent(call.agent_id)
                            outcomes.append(self._agent_changed(call, agent))
                elif self.dialect == "postgres":
                    from psycopg2.extras import execute_batch

                    execute_batch(cursor, self._sql.insert_call, [v for _, v in prepared])
                else:
                    cursor.executemany(self._sql.insert_call, [v for _, v in prepared])
        except (StoreError, AlreadyExistsError, peewee.PeeweeException):
            if len(calls) == 1:
                try:
                    return [self.create_call(calls[0], check_agent=check_agent)]
                except (StoreError, AlreadyExistsError, AgentChangedError) as exc:
                    return [exc]
            return super().create_calls(calls, check_agent=check_agent)
        return outcomes if check_agent else [written for written, _ in prepared]

    @staticmethod
    def _agent_call_params(call: CallRecord, values: list[Any]) -> list[Any]:
        """The parameters of :attr:`_HotSQL.insert_agent_call` (``values`` are insert_call's)."""
        return [*values, values[1], values[2]]  # the record's agent id and agent phone

    @staticmethod
    def _agent_changed(call: CallRecord, agent: Agent | None) -> AgentChangedError:
        if agent is None:
            what = "was removed"
        elif not agent.authorized:
            what = "was revoked"
        else:
            what = "has another phone now"
        return AgentChangedError(
            f"agent {call.agent_id} {what} while call {call.id} was being placed; "
            "the call was not recorded or dialed",
            agent,
        )

    def _insert_values(self, call: CallRecord) -> tuple[CallRecord, list[Any]]:
        """The record as it will be written (no read-back: place() waits for this) and the
        parameters of :attr:`_HotSQL.insert_call`. Raises StoreError for a bad value."""
        created_at = _as_utc(call.created_at or utcnow(), "created_at")
        _check_end_time(call, CallState(call.state))
        values = [
            _text(call.id, "id"), _tid(call.agent_id), _text(call.agent_phone, "agent_phone"),
            _text(call.target, "target"), _text(call.route_code, "route_code"),
            _text(call.trunk, "trunk"), _text(call.caller_id, "caller_id"),
            CallState(call.state).value, EndReason(call.reason).value if call.reason else None,
            _detail(call.detail), self._db_ts(created_at, "created_at"),
        ]  # fmt: skip
        for name in STAGE_TIMESTAMP_FIELD.values():
            stamp = getattr(call, name)
            values.append(None if stamp is None else self._db_ts(stamp, name))
        return attrs.evolve(call, created_at=created_at), values

    def record_transition(
        self, call_id: str, state: CallState, at: _dt.datetime, *,
        reason: EndReason | None = None, detail: str = "",
    ) -> CallRecord:  # fmt: skip
        """State only moves forward: a late event for an earlier stage records that
        stage's time (if still empty) but leaves the state alone. A stage's first time
        wins. ENDED is final: moving an ended call elsewhere raises StoreError; ENDED
        again changes nothing. ENDED without a reason stores ``unknown``; ``detail`` is
        kept for ENDED only."""
        state, at = CallState(state), _as_utc(at, "at")
        reason = EndReason(reason) if reason is not None else None
        if reason is not None and state is not CallState.ENDED:
            raise StoreError(f"an end reason only goes with state ended, not {state.value}")
        detail = _detail(detail)
        with self._session(write=True):
            row = self._call_row(call_id, lock=True)
            changes = self._transition_changes(row, state, at, reason, detail)
            if changes:
                self._m.Call.update(changes).where(self._m.Call.id == call_id).execute()
            return self._call(self._call_row(call_id))

    def save_progress(self, calls: list[CallRecord]) -> None:
        """One UPDATE per call, all in one transaction and one round trip: no read-back.
        Stage times keep the first value written (COALESCE); an ENDED row is never touched
        again."""
        rows = self._progress_rows(calls)
        if not rows:
            return
        with self._session(write=True), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            cursor = self._db.cursor()
            if self.dialect == "postgres":
                from psycopg2.extras import execute_values  # one statement per 100 rows

                # UPDATE ... FROM updates a row once per statement: a call's records are
                # merged first as the statements would apply them row by row.
                execute_values(
                    cursor, self._sql.save_progress_values, _as_row_by_row(rows),
                    template=self._sql.save_progress_template, page_size=100,
                )  # fmt: skip
            else:
                cursor.executemany(self._sql.save_progress, rows)

    def _progress_rows(self, calls: list[CallRecord]) -> list[list[Any]]:
        """The parameters of :attr:`_HotSQL.save_progress`, one row per call. Raises
        StoreError for a bad value."""
        ended = CallState.ENDED.value
        rows = []
        for call in calls:
            state = CallState(call.state)
            _check_end_time(call, state)
            row: list[Any] = [state.value]
            for name in STAGE_TIMESTAMP_FIELD.values():
                stamp = getattr(call, name)
                row.append(None if stamp is None else self._db_ts(stamp, name))
            if state is CallState.ENDED:
                row += [EndReason(call.reason or EndReason.UNKNOWN).value,
                        _detail(call.detail)]  # fmt: skip
            else:
                row += [None, None]
            row += [_text(call.id, "call id"), ended]
            rows.append(row)
        return rows

    @staticmethod
    def _transition_changes(row, state, at, reason, detail) -> dict[str, Any]:
        current = CallState(row.state)
        if current is CallState.ENDED:
            if state is not CallState.ENDED:
                raise StoreError(
                    f"call {row.id} has ended ({row.reason}); it cannot move to "
                    f"{state.value}: the final state is final"
                )
            return {}
        changes: dict[str, Any] = {}
        if state.order > current.order:
            changes["state"] = state.value
        stamp = STAGE_TIMESTAMP_FIELD.get(state)
        if stamp and getattr(row, stamp) is None:
            changes[stamp] = at
        if state is CallState.ENDED:
            changes["reason"] = (reason or EndReason.UNKNOWN).value
            changes["detail"] = detail
        return changes

    def get_call(self, call_id: str) -> CallRecord | None:
        with self._session():
            row = self._db.execute_sql(self._sql.call, (_text(call_id, "call id"),)).fetchone()
            return self._call_from(row) if row else None

    def recent_calls(self, telegram_id: int | None = None, limit: int = 10) -> list[CallRecord]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise StoreError(f"limit must be a whole number >= 0, got {limit!r}")
        Call = self._m.Call
        query = Call.select().order_by(Call.created_at.desc(), Call.id.desc()).limit(limit)
        if telegram_id is not None:
            query = query.where(Call.agent_id == _tid(telegram_id))
        with self._session():
            return [self._call(row) for row in query] if limit else []

    def unfinished_calls(self) -> list[CallRecord]:
        # Served by the partial index calls_unfinished (v6): its predicate is written out,
        # not bound, so that both planners see that this query implies it.
        Call = self._m.Call
        query = Call.select().where(
            peewee.SQL("ended_at IS NULL") & (Call.state != CallState.ENDED.value)
        )
        with self._session():
            return [self._call(row) for row in query.order_by(Call.created_at, Call.id)]

    def count_calls_since(self, telegram_id: int, since: _dt.datetime) -> int:
        params = (_tid(telegram_id), self._db_ts(since, "since"))
        with self._session():
            return int(self._db.execute_sql(self._sql.count, params).fetchone()[0])

    def outcomes_since(self, since: _dt.datetime) -> dict[str, int]:
        Call = self._m.Call
        query = (
            Call.select(Call.reason, peewee.fn.COUNT(Call.id).alias("n"))
            .where((Call.created_at >= _as_utc(since, "since"))
                   & (Call.state == CallState.ENDED.value))
            .group_by(Call.reason)
        )  # fmt: skip
        with self._session():
            return {(r.reason or EndReason.UNKNOWN.value): int(r.n) for r in query}

    def calls_to_target_since(self, target: str, since: _dt.datetime) -> list[_dt.datetime]:
        params = (_text(target, "target"), self._db_ts(since, "since"))
        with self._session():
            rows = self._db.execute_sql(self._sql.calls_to_target, params).fetchall()
        # The rule is applied here, not in SQL: one rule (corecall.domain), and the query
        # stays as cheap to plan as before (an OR of six conditions doubled PostgreSQL's
        # planning time). The rows are one number's calls in the window: a handful.
        return [
            _read_ts(created_at)  # type: ignore[misc]  # created_at is NOT NULL
            for created_at, state, reason, *stamps in rows
            if may_have_dialed_target(state, reason, stamps)
        ]

    # ---- do-not-call list
    @staticmethod
    def _dnc_number(number: Any) -> str:
        if not is_e164(number):
            raise StoreError(f"a do-not-call number must be E.164 (+ and digits), got {number!r}")
        return number

    def dnc_add(self, number: str, *, reason: str = "", actor: str) -> bool:
        row = (self._dnc_number(number), _one_line(reason, "reason"))
        _text(actor, "actor")
        statements = self._dnc_insert_statements([row], actor)
        with self._session(write=True):
            added = self._run_counting(statements)
            if added:
                self._audit(actor, "dnc.add", row[0], row[1])
            return bool(added)

    def dnc_add_many(self, entries: Sequence[tuple[str, str]], *, actor: str) -> int:
        rows = [(self._dnc_number(n), _one_line(r, "reason")) for n, r in entries]
        _text(actor, "actor")
        if not rows:
            return 0
        # Built before the transaction: the write lock (SQLite has one writer, and live
        # calls write their call records) is held only while the statements run.
        statements = self._dnc_insert_statements(rows, actor)
        with self._session(write=True):
            added = self._run_counting(statements)
            detail = f"{added} added, {len(rows) - added} already listed"
            self._audit(actor, "dnc.import", f"{len(rows)} numbers", detail)
        return added

    def _dnc_insert_statements(self, rows: list[tuple[str, str]], actor: str) -> list:
        """Multi-row INSERT ... ON CONFLICT DO NOTHING statements (SQLite >= 3.24 and
        PostgreSQL), :data:`_DNC_ROWS_PER_STATEMENT` rows each."""
        now = utcnow()
        stamp = now.isoformat(sep=" ", timespec="microseconds") if self.dialect == "sqlite" else now
        param = self._db.param
        statements = []
        for start in range(0, len(rows), _DNC_ROWS_PER_STATEMENT):
            chunk = rows[start : start + _DNC_ROWS_PER_STATEMENT]
            values = ", ".join([f"({param}, {param}, {param}, {param})"] * len(chunk))
            params = [v for number, reason in chunk for v in (number, reason, stamp, actor)]
            sql = (
                "INSERT INTO do_not_call (number, reason, added_at, added_by) "
                f"VALUES {values} ON CONFLICT (number) DO NOTHING"
            )
            statements.append((sql, params))
        return statements

    def _run_counting(self, statements: list) -> int:
        """Run the statements; the rows they changed (the cursor's rowcount)."""
        return sum(max(self._db.execute_sql(sql, params).rowcount, 0) for sql, params in statements)

    def dnc_remove(self, number: str, *, actor: str) -> bool:
        number = self._dnc_number(number)
        _text(actor, "actor")
        Dnc = self._m.Dnc
        with self._session(write=True):
            removed = Dnc.delete().where(Dnc.number == number).execute()
            if removed:
                self._audit(actor, "dnc.remove", number, "")
            return bool(removed)

    def dnc_contains(self, number: str) -> bool:
        # On the path of every call: one primary-key probe, without building a query.
        with self._session():
            row = self._db.execute_sql(self._sql.dnc_contains, (_text(number, "number"),))
            return row.fetchone() is not None

    def dnc_get(self, number: str) -> DncEntry | None:
        Dnc = self._m.Dnc
        with self._session():
            row = Dnc.get_or_none(Dnc.number == _text(number, "number"))
            return self._dnc_entry(row) if row else None

    def dnc_entries(self, *, after: str | None = None, limit: int = 1000) -> list[DncEntry]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise StoreError(f"limit must be a whole number >= 0, got {limit!r}")
        Dnc = self._m.Dnc
        query = Dnc.select().order_by(Dnc.number).limit(limit)
        if after is not None:
            query = query.where(Dnc.number > _text(after, "after"))
        with self._session():
            return [self._dnc_entry(row) for row in query] if limit else []

    def dnc_count(self) -> int:
        with self._session():
            return self._m.Dnc.select().count()

    @staticmethod
    def _dnc_entry(row) -> DncEntry:
        return DncEntry(
            number=row.number, reason=row.reason, added_by=row.added_by, added_at=row.added_at
        )

    # ---- audit
    def _audit(self, actor: str, action: str, subject: str, detail: str) -> None:
        self._m.Audit.insert(
            at=utcnow(), actor=_text(actor, "actor"), action=_text(action, "action"),
            subject=_text(subject, "subject"), detail=_detail(detail),
        ).execute()  # fmt: skip

    def audit(self, actor: str, action: str, subject: str = "", detail: str = "") -> None:
        with self._session(write=True):
            self._audit(actor, action, subject, detail)

    def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise StoreError(f"limit must be a whole number >= 0, got {limit!r}")
        Audit = self._m.Audit
        with self._session():
            rows = Audit.select().order_by(Audit.id.desc()).limit(limit) if limit else []
            return [self._entry(r) for r in rows]

    def audit_after(self, after_id: int, limit: int = 100) -> list[AuditEntry]:
        Audit = self._m.Audit
        query = Audit.select().where(Audit.id > int(after_id)).order_by(Audit.id).limit(limit)
        with self._session():
            return [self._entry(r) for r in query]

    @staticmethod
    def _entry(r) -> AuditEntry:
        return AuditEntry(
            actor=r.actor, action=r.action, subject=r.subject, detail=r.detail, at=r.at, id=r.id
        )

    # ---- outbox
    @staticmethod
    def _message(r) -> OutboxMessage:
        return OutboxMessage(
            destination=r.destination, event_id=r.event_id, topic=r.topic, body=r.body,
            ordering_key=r.ordering_key, created_at=r.created_at, seq=r.seq,
            attempts=r.attempts, next_attempt_at=r.next_attempt_at,
            delivered_at=r.delivered_at, last_error=r.last_error,
        )  # fmt: skip

    @staticmethod
    def _message_from(r: tuple) -> OutboxMessage:
        """An OutboxMessage from a row of :data:`_OUTBOX_COLUMNS`."""
        return OutboxMessage(
            seq=r[0], destination=r[1], event_id=r[2], topic=r[3], ordering_key=r[4],
            body=r[5], created_at=_read_ts(r[6]), next_attempt_at=_read_ts(r[7]),
            attempts=r[8], delivered_at=_read_ts(r[9]), last_error=r[10],
        )  # fmt: skip

    def outbox_add(self, messages: list[OutboxMessage]) -> int:
        """One statement for every row, prepared once (no query building per row: a burst
        of calls adds 8 rows per call); one transaction. Rows get their ``seq`` in list
        order on both backends."""
        now = self._db_ts(utcnow(), "now")  # the usual case: no times given, due now
        rows = []
        for m in messages:
            created = now if m.created_at is None else self._db_ts(m.created_at, "created_at")
            due = (
                created if m.next_attempt_at is None
                else self._db_ts(m.next_attempt_at, "next_attempt_at")
            )  # fmt: skip
            rows.append((
                _text(m.destination, "destination"), _text(m.event_id, "event id"),
                _text(m.topic, "topic"), _text(m.ordering_key, "ordering key"),
                _text(m.body, "body"), created, due,
            ))  # fmt: skip
        if not rows:
            return 0
        with self._session(write=True), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            cursor = self._db.cursor()
            if self.dialect == "postgres":
                # One INSERT per row (in the one transaction): a multi-row INSERT does not
                # promise seq in list order, and executemany's rowcount is not the sum.
                inserted = 0
                for row in rows:
                    cursor.execute(self._sql.outbox_insert, row)
                    inserted += cursor.rowcount
                return inserted
            cursor.executemany(self._sql.outbox_insert, rows)
            return cursor.rowcount

    def outbox_pending(self, destination: str, limit: int = 100) -> list[OutboxMessage]:
        params = (_text(destination, "destination"), max(0, int(limit)))
        with self._session(), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            rows = self._db.execute_sql(self._sql.outbox_pending, params).fetchall()
        return [self._message_from(r) for r in rows]

    def outbox_mark_delivered(self, seqs: list[int], at: _dt.datetime) -> None:
        if not seqs:
            return
        # Prepared text, not a peewee query: a 200-event batch would build 200 parameters
        # through peewee's SQL generator on the shared store thread.
        param, stamp = self._db.param, self._db_ts(at, "at")
        numbers = [int(s) for s in seqs]
        with self._session(write=True), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            for start in range(0, len(numbers), 500):  # well under any parameter limit
                chunk = numbers[start : start + 500]
                self._db.execute_sql(
                    f"UPDATE {self._m.Outbox._meta.table_name} SET delivered_at = {param}, "
                    f"last_error = '' WHERE seq IN ({', '.join([param] * len(chunk))})",
                    [stamp, *chunk],
                )

    def outbox_mark_failed(
        self, seqs: list[int], error: str, next_attempt_at: _dt.datetime
    ) -> None:
        if not seqs:
            return
        Outbox = self._m.Outbox
        # Keep the error readable and storable whatever the receiver said.
        error = error.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:500]
        with self._session(write=True):
            Outbox.update(
                attempts=Outbox.attempts + 1, last_error=error,
                next_attempt_at=_as_utc(next_attempt_at, "next_attempt_at"),
            ).where(Outbox.seq.in_([int(s) for s in seqs]) & Outbox.delivered_at.is_null()
            ).execute()  # fmt: skip

    def outbox_list(
        self, destination: str | None = None, *, pending_only: bool = False,
        topic: str | None = None, limit: int = 50,
    ) -> list[OutboxMessage]:  # fmt: skip
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise StoreError(f"limit must be a whole number >= 0, got {limit!r}")
        Outbox = self._m.Outbox
        query = Outbox.select().order_by(Outbox.seq.desc()).limit(limit)
        if destination is not None:
            query = query.where(Outbox.destination == _text(destination, "destination"))
        if pending_only:
            query = query.where(Outbox.delivered_at.is_null())
        if topic is not None:
            query = query.where(Outbox.topic == _text(topic, "topic"))
        with self._session():
            return [self._message(r) for r in query] if limit else []

    def outbox_redeliver(self, event_ids: list[str], destination: str | None = None) -> int:
        if not event_ids:
            return 0
        Outbox = self._m.Outbox
        where = Outbox.event_id.in_([_text(e, "event id") for e in event_ids])
        if destination is not None:
            where &= Outbox.destination == _text(destination, "destination")
        with self._session(write=True):
            return (
                Outbox.update(
                    delivered_at=None, attempts=0, last_error="", next_attempt_at=utcnow()
                )
                .where(where)
                .execute()
            )

    def outbox_counts(self) -> dict[str, tuple[int, int]]:
        with self._session(), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            rows = self._db.execute_sql(self._sql.outbox_counts).fetchall()
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def outbox_prune(self, delivered_before: _dt.datetime, limit: int = 500) -> int:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreError(f"limit must be a whole number >= 1, got {limit!r}")
        before = self._db_ts(delivered_before, "delivered_before")
        with self._session(write=True), peewee.__exception_wrapper__:  # type: ignore[attr-defined]
            cursor = self._db.execute_sql(self._sql.outbox_prune, (before, before, limit))
            return max(0, cursor.rowcount)


def _json(detail: dict) -> str:
    """Audit details are JSON objects (``corecall audit --json`` shows them as such)."""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True)


__all__ = ["DIALECTS", "MIGRATIONS", "PeeweeStore", "UTCDateTimeField", "make_models"]
