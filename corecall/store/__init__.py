"""The agent store: agents, the call record and the audit log.

:class:`Store` is the contract every store backend fulfils; one contract test suite
(``tests/store/``) runs against every backend. :class:`corecall.store.peewee_store.PeeweeStore`
implements it on peewee and is what the SQLite and PostgreSQL plugins build on.

Stores are synchronous (peewee is). The application runs every store call on its one store
thread (:meth:`corecall.app.App.run_in_store`), so the event loop is never blocked by the
database.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as _dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from corecall.domain import (
    STAGE_TIMESTAMP_FIELD,
    Agent,
    AuditEntry,
    CallRecord,
    CallState,
    DncEntry,
    EndReason,
    OutboxMessage,
)
from corecall.errors import AgentChangedError, AlreadyExistsError, CorecallError, StoreError

if TYPE_CHECKING:
    from corecall.serving import ServingClaim

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking store call in a worker thread (never on the event loop).

    For scripts and tests. The application runs every store call on its ONE store thread
    (:meth:`corecall.app.App.run_in_store`), so its writes never contend with each other.
    """
    return await asyncio.to_thread(fn, *args, **kwargs)


class StoreWouldBlock(BaseException):
    """Raised by a :class:`NowaitReads` view when it cannot answer at once (a lock in the way,
    or a method it does not offer): the caller asks again on the store thread.

    A ``BaseException``, like :class:`asyncio.CancelledError`: a plugin's ``except
    Exception`` around a store read cannot swallow it and decide without the data."""


class NowaitReads:
    """A store's reads, answered on the calling thread (the event loop) at once, or
    :class:`StoreWouldBlock`.

    Given to the ``corecall_check_call`` plugins that run on the event loop as their
    ``context.store`` (see :meth:`Store.nowait_reads`). Offers the methods in
    :attr:`READS`, each answered by ``reader`` (a store whose reads never wait: e.g. a
    SQLite connection with ``busy_timeout = 0`` reading the WAL); any other method, and any
    :class:`~corecall.errors.StoreError` (a lock in the way, or a bad value the store thread
    will report properly), raises :class:`StoreWouldBlock`.
    """

    #: Indexed lookups a policy may make before a call; writes and scans are not offered.
    READS = frozenset({
        "get_agent", "get_call", "count_calls_since", "agent_and_recent_calls",
        "calls_to_target_since", "dnc_contains", "dnc_get",
    })  # fmt: skip

    def __init__(self, reader: Store) -> None:
        self._reader = reader

    def __getattr__(self, name: str):
        if name not in self.READS:
            raise StoreWouldBlock(name)
        method = getattr(self._reader, name)

        def read(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except StoreError as exc:
                raise StoreWouldBlock(name) from exc

        return read


class Store(abc.ABC):
    """What corecall needs from a store backend.

    Every mutating agent method takes ``actor`` ("cli:alice", "telegram:123") and writes an
    audit entry in the same transaction as the change. Methods raise
    :class:`~corecall.errors.NotFoundError` for an unknown agent/call,
    :class:`~corecall.errors.AlreadyExistsError` for a duplicate agent and
    :class:`~corecall.errors.StoreError` when the backend fails.
    """

    #: The schema version this code writes; ``open()`` upgrades older databases to it.
    SCHEMA_VERSION: int = 6

    # ---- lifecycle
    @abc.abstractmethod
    def open(self) -> None:
        """Connect, create the schema if empty, upgrade it if older (keeping data)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call twice."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version of the open database."""

    # ---- agents
    @abc.abstractmethod
    def get_agent(self, telegram_id: int) -> Agent | None: ...

    @abc.abstractmethod
    def list_agents(self) -> list[Agent]:
        """All agents, ordered by telegram id."""

    @abc.abstractmethod
    def add_agent(
        self, telegram_id: int, phone: str, name: str = "", *, authorized: bool = False,
        actor: str,
    ) -> Agent: ...  # fmt: skip

    @abc.abstractmethod
    def remove_agent(self, telegram_id: int, *, actor: str) -> None:
        """Delete the agent; their call records stay (history is never lost)."""

    @abc.abstractmethod
    def set_authorized(self, telegram_id: int, authorized: bool, *, actor: str) -> Agent: ...

    @abc.abstractmethod
    def set_phone(self, telegram_id: int, phone: str, *, actor: str) -> Agent: ...

    @abc.abstractmethod
    def set_route(self, telegram_id: int, route_code: str | None, *, actor: str) -> Agent: ...

    @abc.abstractmethod
    def set_caller_id(self, telegram_id: int, caller_id: str | None, *, actor: str) -> Agent: ...

    # ---- calls
    @abc.abstractmethod
    def create_call(self, call: CallRecord, *, check_agent: bool = False) -> CallRecord:
        """Insert a new call record (state QUEUED); sets ``created_at`` when missing.

        ``check_agent=True`` (every agent's ``/call``) writes the record only if, in the same
        transaction, agent ``call.agent_id`` exists, is authorized and still has phone
        ``call.agent_phone``; else it raises :class:`~corecall.errors.AgentChangedError`
        and writes nothing. A revoke or phone change committed by any process or connection
        before the record is therefore always seen, and one committed while the record is
        being written waits for it (PostgreSQL: the agent row is share-locked; SQLite: one
        writer at a time), so no call is recorded, and handed to the PBX, under an agent
        state older than a committed change (issue 7, finding 2). Operator test calls and
        imports of history pass False: their agent id is not an agent."""

    def create_calls(
        self, calls: list[CallRecord], *, check_agent: bool = False
    ) -> list[CallRecord | CorecallError]:
        """Insert several new call records (a burst of ``/call``); one outcome per record, in
        order: the record as written, or the error (:class:`~corecall.errors.StoreError`,
        :class:`~corecall.errors.AlreadyExistsError`,
        :class:`~corecall.errors.AgentChangedError` with ``check_agent``, as in
        :meth:`create_call`) that refused that record alone.

        The default calls :meth:`create_call` for each; backends override it to write them
        in one transaction (one commit) and fall back to one by one only when that fails."""
        outcomes: list[CallRecord | CorecallError] = []
        for call in calls:
            try:
                outcomes.append(self.create_call(call, check_agent=check_agent))
            except (StoreError, AlreadyExistsError, AgentChangedError) as exc:
                outcomes.append(exc)
        return outcomes

    @abc.abstractmethod
    def record_transition(
        self, call_id: str, state: CallState, at: _dt.datetime, *,
        reason: EndReason | None = None, detail: str = "",
    ) -> CallRecord:  # fmt: skip
        """Write a state change: the new state, the stage timestamp, and for ENDED the
        reason/detail. Returns the updated record."""

    def save_progress(self, calls: list[CallRecord]) -> None:
        """Write the latest in-memory state of several calls at once (the call writer's fast
        path): each call's state, every stage time it has (a stage's first time wins) and,
        once ended, its reason and detail. A call already ENDED on record is left alone.

        The default replays :meth:`record_transition` stage by stage; backends override it
        with one statement per call in one transaction."""
        for call in calls:
            for state, field in STAGE_TIMESTAMP_FIELD.items():
                at = getattr(call, field)
                if at is None or state.order > call.state.order:
                    continue
                final = state is CallState.ENDED
                self.record_transition(
                    call.id, state, at,
                    reason=call.reason if final else None, detail=call.detail if final else "",
                )  # fmt: skip

    @abc.abstractmethod
    def get_call(self, call_id: str) -> CallRecord | None: ...

    @abc.abstractmethod
    def recent_calls(self, telegram_id: int | None = None, limit: int = 10) -> list[CallRecord]:
        """Newest first; all agents when ``telegram_id`` is None."""

    @abc.abstractmethod
    def unfinished_calls(self) -> list[CallRecord]:
        """Calls not yet ENDED (to reconcile after a restart or reconnect)."""

    @abc.abstractmethod
    def count_calls_since(self, telegram_id: int, since: _dt.datetime) -> int: ...

    def outcomes_since(self, since: _dt.datetime) -> dict[str, int]:
        """Calls created at or after ``since`` that have ended, counted by end reason
        (``completed``, ``target_busy``...). The default reads :meth:`recent_calls`;
        backends override it with one query."""
        counts: dict[str, int] = {}
        for call in self.recent_calls(None, 1_000_000):
            if call.created_at and call.created_at >= since and call.state is CallState.ENDED:
                key = (call.reason or EndReason.UNKNOWN).value
                counts[key] = counts.get(key, 0) + 1
        return counts

    def agent_and_recent_calls(
        self, telegram_id: int, since: _dt.datetime
    ) -> tuple[Agent | None, int]:
        """The agent (None if unknown) and how many calls they placed since ``since``: what
        every ``/call`` reads before it may dial, so backends answer it in one statement.
        The default calls :meth:`get_agent` then :meth:`count_calls_since`."""
        agent = self.get_agent(telegram_id)
        return agent, (self.count_calls_since(telegram_id, since) if agent else 0)

    def agent_and_recent_calls_nowait(
        self, telegram_id: int, since: _dt.datetime
    ) -> tuple[Agent | None, int] | None:
        """:meth:`agent_and_recent_calls`, answered on the calling thread, which is the
        event loop, ONLY if the backend can do so at once (no network round trip, no wait
        for a lock); else None, and the caller runs :meth:`agent_and_recent_calls` on the
        store thread. Saves a thread hop on the path of every call. The default is None
        (PostgreSQL is a network round trip away)."""
        return None

    def nowait_reads(self) -> NowaitReads | None:
        """A view of this store's indexed reads that answers on the calling thread (the
        event loop) at once or raises :class:`StoreWouldBlock`; None when the backend
        cannot answer anything at once (a network round trip away, e.g. PostgreSQL), which
        is the default. The policy plugins (``corecall_check_call``) that run on the event
        loop get it as ``context.store``: a do-not-call lookup then costs no thread hop."""
        return None

    def create_call_nowait(
        self, call: CallRecord, *, check_agent: bool = False
    ) -> CallRecord | None:
        """:meth:`create_call` on the calling thread (the event loop), ONLY if the backend
        can write it at once (no network round trip, no wait for a lock, no fsync); else
        None, and the caller writes it through the store thread. Raises what
        :meth:`create_call` raises (a bad record; with ``check_agent``, an agent that
        changed). The default is None."""
        return None

    def save_progress_nowait(self, calls: list[CallRecord]) -> bool:
        """:meth:`save_progress` on the calling thread (the event loop), ONLY if the backend
        can write at once (no network round trip, no wait for a lock, no fsync); True when
        written (one transaction), False when nothing was written and the caller writes
        them through the store thread. Raises what :meth:`save_progress` raises for a bad
        record. The default is False. Callers keep batches small (the call writer: at most
        a few dozen records per call), so the loop is held for about a millisecond at most.

        The call writer uses it so that a store with one writer at a time (SQLite) has ONE
        writer in this process, on the event loop with :meth:`create_call_nowait`: a call
        record never finds the lock held by the progress of other calls (measured: 2.3 %
        of records did, and waited behind a whole batch on the store thread)."""
        return False

    def checkpoint(self) -> None:
        """Fold what the ``*_nowait`` writes appended to a write-ahead log into the database
        and let the log start over, so that it stays bounded (SQLite: the ``*_nowait``
        connection never checkpoints itself, as that fsyncs). Run on the store thread by the
        call writer about once a second while it writes on the event loop. The default does
        nothing."""

    def claim_serving(self, holder: str) -> ServingClaim | None:
        """Become the one process serving this store's calls (:mod:`corecall.serving`) with
        a lock that every process using the store contends for, on any machine; return what
        holds it (its ``release()`` frees it; the end of the process must free it too), or
        None when the backend has no such lock (the default), and corecall takes a lock
        file on this machine instead. ``holder`` names this process (``corecall run (pid N
        on HOST)``, at most :data:`~corecall.serving.HOLDER_MAX` characters) for the
        refusal of the next one. Raises :class:`~corecall.serving.ServingHeld` naming the
        holder when another process holds it. A lock lost while held (e.g. its connection
        dropped) must not stop the process: the store logs it and takes it again."""
        return None

    @abc.abstractmethod
    def calls_to_target_since(self, target: str, since: _dt.datetime) -> list[_dt.datetime]:
        """When each call to ``target`` (E.164) created at or after ``since`` was placed,
        by any agent, oldest first, counting only the calls that dialed the target or may
        still dial it (:attr:`CallRecord.may_have_dialed_target
        <corecall.domain.CallRecord.may_have_dialed_target>`: not a call that ended before
        its target was dialed, e.g. the agent's phone did not answer or nobody pressed 1).
        The repeat-call cap counts and dates them. Read by the rule on every row, whichever
        version of corecall wrote it (the columns exist since schema v1)."""

    # ---- do-not-call (DNC) list: E.164 numbers the operator must never call
    @abc.abstractmethod
    def dnc_add(self, number: str, *, reason: str = "", actor: str) -> bool:
        """List ``number``; True when it was added, False when it was listed already (the
        first entry, its reason and author are kept). Audited as ``dnc.add`` when added."""

    @abc.abstractmethod
    def dnc_add_many(self, entries: Sequence[tuple[str, str]], *, actor: str) -> int:
        """List many ``(number, reason)`` pairs in one transaction (a bulk import's batch);
        numbers already listed are skipped. Returns how many were added; one ``dnc.import``
        audit entry per batch. Callers keep batches to a few thousand rows so that live
        calls never wait long for the write lock."""

    @abc.abstractmethod
    def dnc_remove(self, number: str, *, actor: str) -> bool:
        """Unlist ``number``; True when it was listed. Audited as ``dnc.remove``."""

    @abc.abstractmethod
    def dnc_contains(self, number: str) -> bool:
        """Whether ``number`` is listed: one indexed lookup, on the path of every call."""

    @abc.abstractmethod
    def dnc_get(self, number: str) -> DncEntry | None: ...

    @abc.abstractmethod
    def dnc_entries(self, *, after: str | None = None, limit: int = 1000) -> list[DncEntry]:
        """Listed numbers in E.164 order, ``limit`` at a time: pass the last number seen
        as ``after`` for the next page (keyset paging, so exporting a million rows stays
        fast)."""

    @abc.abstractmethod
    def dnc_count(self) -> int: ...

    # ---- audit
    @abc.abstractmethod
    def audit(self, actor: str, action: str, subject: str = "", detail: str = "") -> None:
        """Record an admin action that did not go through an agent method above."""

    @abc.abstractmethod
    def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        """Newest first."""

    def audit_after(self, after_id: int, limit: int = 100) -> list[AuditEntry]:
        """Entries with an id greater than ``after_id``, oldest first (for followers such as
        the webhooks plugin). The default reads :meth:`audit_log`; backends override it."""
        newer = [e for e in self.audit_log(10_000) if e.id is not None and e.id > after_id]
        return sorted(newer, key=lambda e: e.id or 0)[:limit]

    # ---- outbox (events written before they are sent; see the webhooks plugin)
    # Not abstract: a store without an outbox still serves calls; a plugin that needs one
    # (webhooks) gets a StoreError naming the backend when it starts.
    def _no_outbox(self) -> StoreError:
        return StoreError(
            f"the {type(self).__name__} store has no outbox (needed by the webhooks plugin); "
            "use the sqlite or postgres store, or disable the webhooks plugin"
        )

    def outbox_add(self, messages: list[OutboxMessage]) -> int:
        """Insert ``messages`` in one transaction, in list order (their ``seq`` follows it).
        A message whose (destination, event_id) is already in the outbox is skipped, so
        adding twice is harmless. Returns how many were inserted. ``created_at`` defaults to
        now; ``next_attempt_at`` to ``created_at``."""
        raise self._no_outbox()

    def outbox_pending(self, destination: str, limit: int = 100) -> list[OutboxMessage]:
        """Up to ``limit`` undelivered messages for ``destination``, oldest ``seq`` first,
        whether or not they are due (the caller keeps the order: nothing overtakes an
        earlier message that is waiting for its retry)."""
        raise self._no_outbox()

    def outbox_mark_delivered(self, seqs: list[int], at: _dt.datetime) -> None:
        """Record that the messages ``seqs`` were accepted by their receiver at ``at``."""
        raise self._no_outbox()

    def outbox_mark_failed(
        self, seqs: list[int], error: str, next_attempt_at: _dt.datetime
    ) -> None:
        """Record a failed try of ``seqs``: ``attempts`` + 1, ``last_error``, and when to
        try again."""
        raise self._no_outbox()

    def outbox_list(
        self, destination: str | None = None, *, pending_only: bool = False,
        topic: str | None = None, limit: int = 50,
    ) -> list[OutboxMessage]:  # fmt: skip
        """Newest first; all destinations when ``destination`` is None, all topics when
        ``topic`` is None."""
        raise self._no_outbox()

    def outbox_redeliver(self, event_ids: list[str], destination: str | None = None) -> int:
        """Make delivered (or failing) messages pending again, due now, with ``attempts``
        reset; they keep their ``seq`` (so they go first). Returns how many changed."""
        raise self._no_outbox()

    def outbox_counts(self) -> dict[str, tuple[int, int]]:
        """destination -> (pending, delivered and still kept), from the indexes: it does
        not read the events themselves."""
        raise self._no_outbox()

    def outbox_prune(self, delivered_before: _dt.datetime, limit: int = 500) -> int:
        """Delete up to ``limit`` messages delivered before ``delivered_before``, oldest
        delivery first, in one short transaction; returns how many were deleted (call again
        until it returns 0). Never deletes a message that is not delivered, nor the newest
        message of each topic: a follower that resumes from the newest message of its topic
        (the webhooks' admin actions, their internal start mark) keeps its place. Raises
        StoreError for a naive datetime or a ``limit`` below 1."""
        raise self._no_outbox()
