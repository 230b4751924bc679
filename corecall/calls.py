"""Placing calls and the call state machine.

:class:`CallManager` turns "agent X wants to call this text" into a call on a trunk:
authorization (re-read from the store), number policy, route resolution, policy plugins,
the call record, then the trunk driver's ``originate``. Drivers report progress through
:meth:`CallManager.progress`; the state machine only moves forward, writes every transition
to the store (in order, off the event loop), then announces it through the
``corecall_call_state_changed`` hook and to in-process watchers (the bot's status message).

A started call always reaches ``ENDED`` on record: driver errors end it as
``trunk_unavailable``; a call the PBX stops talking about is ended ``unknown`` by a
watchdog; on start-up, calls left unfinished by a previous run are reconciled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as _dt
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TypeVar

import attrs

from corecall.config import Config
from corecall.domain import (
    STAGE_TIMESTAMP_FIELD,
    Agent,
    AgentActivity,
    CallRecord,
    CallRequest,
    CallState,
    EndReason,
    NumberVerdict,
    Route,
    is_e164,
    utcnow,
)
from corecall.errors import (
    AgentChangedError,
    CorecallError,
    PluginError,
    RefusedError,
    StoreError,
    UnsafeValueError,
)
from corecall.fields import DETAIL_MAX_CHARS, echo, one_line
from corecall.logs import call_extra, log_context
from corecall.plugins import Plugins, plugin_failed_message
from corecall.services import Services
from corecall.store import Store
from corecall.store.executor import StoreExecutor
from corecall.supervision import Supervisor
from corecall.telephony.driver import OriginateRequest, TrunkDriver

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Extra seconds, beyond both ring timeouts, before a call that never connected and that the
#: PBX stopped reporting on is ended as ``unknown``.
WATCHDOG_GRACE = 30.0
#: The refusal while the trunk's phone system is (re)starting (nothing was dialed).
PBX_STARTING = "The phone system is starting, try again in a moment."
#: Longest confirmation prompt (the target's digits, "if this is correct press 1"), seconds.
CONFIRM_PROMPT_SECONDS = 15.0


def confirm_budget(request: OriginateRequest) -> float:
    """Seconds the confirmation step may take (prompt + wait, twice after a wrong key)."""
    if request.confirm == "none":
        return 0.0
    return 2 * (CONFIRM_PROMPT_SECONDS + request.confirm_timeout)


#: Writes of one batch of call states before it is given up as critical (StoreError backs
#: off 0.2 s doubling; any other exception, a bug or a bad record, is retried once).
WRITE_ATTEMPTS = 5

#: The agent id on record for calls an operator places from the CLI (``corecall call``).
OPERATOR_AGENT_ID = 0

#: Most call states the call writer saves on the event loop in one transaction: ~30 µs
#: each on SQLite (measured, tmp-file WAL, synchronous = normal), so the loop is held about
#: a millisecond at most; a larger batch (a burst) is written in chunks, the loop free between.
NOWAIT_PROGRESS_ROWS = 32
#: Seconds the call writer waits, once a call state is queued, before it takes the batch,
#: when its last batch had to go through the store thread (PostgreSQL): the states that
#: arrive meanwhile go in the same transaction and statement. Under a burst of 200 calls
#: the writer otherwise wrote ~3 rows a statement, and on PostgreSQL each statement's
#: parse and plan (~0.4 ms) cost more than its rows (issue 11). A watcher (the bot's
#: status message) hears of a state this much later; on SQLite the writer never waits.
STORE_THREAD_WRITER_LINGER = 0.02
#: Seconds between store checkpoints while the call writer writes on the event loop (each
#: pauses the writer, not the loop, for as long as the checkpoint takes on the store thread).
CHECKPOINT_INTERVAL = 1.0

#: Seconds :meth:`CallManager.start` gives each trunk driver's ``start()`` (the Asterisk
#: driver waits up to 5 s for its AMI links): one that raises or takes longer is logged by
#: name and its trunks refuse calls, while the other trunks serve.
DRIVER_START_TIMEOUT = 30.0
#: Seconds a trunk driver's ``originate()`` may take to hand the call to the PBX (the
#: Asterisk driver: the Originate's response, a few seconds at most, plus a boot hold of 3 s).
#: Longer, the call ends as trunk_unavailable and the agent is answered.
ORIGINATE_TIMEOUT = 15.0
#: Seconds :meth:`CallManager.stop` gives each trunk driver's ``stop()`` (a driver that
#: takes longer is logged by name and left behind: one plugin cannot hang the shutdown).
DRIVER_STOP_TIMEOUT = 5.0
#: Seconds :meth:`CallManager.stop` gives the call writer to end once its queue is drained.
WRITER_STOP_TIMEOUT = 1.0


def own_number_refusal(
    target: str, agent_phone: str, routes: Mapping[str, Route]
) -> RefusedError | None:
    """A call to the number corecall rings first (the agent's own phone: it would ring the
    agent twice and bridge them to themselves) or to one of the operator's own caller IDs
    (a route calling itself) is refused before anything is dialed; None otherwise."""
    if target == agent_phone:
        return RefusedError(
            "own_phone",
            f"{target} is your own phone: corecall rings it first, then dials the number you "
            "give. Send the customer's number, e.g. /call +12125550123.",
        )
    for route in routes.values():
        if target in route.caller_ids:
            return RefusedError(
                "own_caller_id",
                f"{target} is one of the caller IDs of the {route.name} route (a number "
                "corecall calls from, not one it calls). Send the customer's number.",
            )
    return None


def authorization_refusal(agent: Agent | None, agent_id: int) -> RefusedError | None:
    """Why ``agent`` (as read from the store) may not place calls, or None."""
    if agent is None or not agent.authorized:
        return RefusedError(
            "not_authorized",
            f"You are not authorized to place calls. Ask your admin to authorize "
            f"Telegram id {agent_id}.",
        )
    if not is_e164(agent.phone):
        return RefusedError(
            "agent_phone_invalid",
            "Your own phone number on file is not valid, so I can't ring you. "
            "Ask your admin to set it again (/setphone).",
        )
    return None


class _Mailbox:
    """The records one :meth:`CallManager.watch` has yet to yield, in order. Every live call
    has one (its status message follows it), and an ``asyncio.Queue`` costs ~3 KiB (three
    deques and an Event): this costs ~0.2 KiB (issue 11, bench/memory_bench.py)."""

    __slots__ = ("records", "waiter")

    def __init__(self) -> None:
        self.records: list[CallRecord] = []  # a handful per call: a list is the smallest
        self.waiter: asyncio.Future[None] | None = None

    def put(self, record: CallRecord) -> None:
        self.records.append(record)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> CallRecord:
        while not self.records:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.records.pop(0)


def agent_changed_refusal(agent: Agent | None, agent_id: int) -> RefusedError:
    """The refusal for a call whose agent changed between its checks and its record (see
    :class:`~corecall.errors.AgentChangedError`): revoked or removed reads as any
    unauthorized request; a new phone asks the agent to call again (the call was checked
    against the old one and was not dialed)."""
    refused = authorization_refusal(agent, agent_id)
    if refused is not None:
        return refused
    return RefusedError(
        "agent_changed",
        "Your phone number on file was changed while this call was being placed, so it "
        "was not dialed. Send the call again to be rung on your new number.",
    )


def parse_on_any_route(plugins: Plugins, routes: Iterable[Route], text: str) -> NumberVerdict:
    """Read ``text`` exactly as ``/call`` would (the parse hook and the number policy) on the
    first of ``routes`` that accepts it: for lists of numbers that are not tied to one
    route, such as the do-not-call list. The first route's refusal when none accepts it;
    the number policy's US/CA rules when no route is offered."""
    first: NumberVerdict | None = None
    for route in routes:
        verdict = plugins.parse_number(text, route)
        if verdict.ok:
            return verdict
        first = first or verdict
    if first is None:
        from corecall.numbers import check_number

        return check_number(text)
    return first


def effective_caller_id(agent: Agent, route: Route) -> str:
    """The caller ID a call by ``agent`` on ``route`` shows: the agent's assigned number when
    it is one of the route's operator-owned numbers, else the route's first number."""
    if agent.caller_id in route.caller_ids:
        return agent.caller_id
    return route.caller_ids[0]


def _log_checkpoint_failure(job: asyncio.Future) -> None:
    if not job.cancelled() and job.exception() is not None:
        exc = job.exception()
        log.warning("store checkpoint failed: %s: %s", type(exc).__name__, exc)


@attrs.frozen
class _Transition:
    call_id: str
    previous: CallState | None
    record: CallRecord
    at: _dt.datetime


class CallManager:
    """Places calls and runs their state machines. One per running front end."""

    def __init__(
        self,
        *,
        config: Config,
        plugins: Plugins,
        store: Store,
        routes: Callable[[], dict[str, Route]],
        drivers: dict[str, TrunkDriver],
        clock: Callable[[], _dt.datetime] = utcnow,
        services: Services | None = None,
        store_executor: StoreExecutor | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.config = config
        #: Plugins' background services, started before the drivers, stopped after the last
        #: call record was written (so they hear every final state).
        self.services = services
        self.plugins = plugins
        self.store = store
        self._routes = routes
        self.drivers = drivers
        #: Trunk drivers whose start() failed: name -> the problem (``corecall health``).
        self.failed_drivers: dict[str, str] = {}
        self._clock = clock
        self._live: dict[str, CallRecord] = {}
        # The last record of each live call that the writer has persisted (and announced):
        # what watch() starts from. _live runs ahead of it by the writer's queue.
        self._persisted: dict[str, CallRecord] = {}
        # call id -> (reason, detail) to record when corecall itself hung up (None: the
        # agent's own hang-up button, recorded as cancelled/completed).
        self._hangup_requested: dict[str, tuple[EndReason, str] | None] = {}
        self._watchers: dict[str, list[_Mailbox]] = collections.defaultdict(list)
        self._finished: dict[str, asyncio.Future[CallRecord]] = {}
        self._watchdogs: dict[str, asyncio.TimerHandle] = {}
        self._confirm_budgets: dict[str, float] = {}  # call id -> seconds the key may take
        self._agent_locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}
        self._writes: asyncio.Queue[_Transition] | None = None
        self._writer: asyncio.Task | None = None
        self._started_drivers: set[str] = set()
        self._checkpoint_due = False  # progress was written on the loop since the last one
        self._writer_lingers = False  # the last batch went through the store thread
        self._checkpointing: asyncio.Future | None = None  # the last one, on the store thread
        self._checkpointed_at = float("-inf")  # time.monotonic() of the last one
        # Every store call of this manager runs on ONE worker thread, in order and in
        # batches (see corecall.store.executor): SQLite never has two of our writers
        # contending for its lock, and the event loop is never blocked by the database.
        self.store_executor = store_executor or StoreExecutor()
        # The writer and the watchdogs are supervised: a crash is logged by name, the writer
        # restarted (and, if it keeps crashing, the process told to stop: see App.supervisor).
        self.supervisor = supervisor or Supervisor()
        if services is not None:  # the plugins' services share the one store thread
            services.run_in_store = self._in_store
        # The batch functions for call records, made once: the store executor batches
        # adjacent jobs of the same function (an agent's records are written only if the
        # agent is still authorized with the same phone: Store.create_call(check_agent=True)).
        self._create_agent_calls = functools.partial(store.create_calls, check_agent=True)
        self._create_operator_calls = functools.partial(store.create_calls, check_agent=False)

    async def _in_store(self, fn: Callable[..., T], *args) -> T:
        return await self.store_executor.run(fn, *args)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, reconcile: bool = True) -> None:
        """Start the writer, the drivers, and reconcile calls a previous run left open.

        ``reconcile=False`` is for short-lived helpers (``corecall call``) that must not take
        over the live calls of a bot running beside them."""
        self._writes = asyncio.Queue()
        self._writer = self.supervisor.start("corecall-call-writer", self._write_loop)
        if self.services is not None:  # first, so they hear every state change
            await self.services.start()
        for name, driver in list(self.drivers.items()):
            try:
                async with asyncio.timeout(DRIVER_START_TIMEOUT):
                    await driver.start()
            except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a plugin cannot exit
                self._driver_failed(name, driver, exc)
                continue
            self._started_drivers.add(name)
        if reconcile:
            await self._reconcile_unfinished()

    def _driver_failed(self, name: str, driver: TrunkDriver, exc: BaseException) -> None:
        """A driver that did not start is left out: its trunks refuse calls
        (``trunk_unavailable``), the others serve, and health reports it."""
        registered = self.plugins.trunk_drivers.get(name)
        plugin = registered.plugin if registered is not None else "?"
        trunks = sorted(t.name for t in self.config.trunks.values() if t.driver == name)
        why = (
            f"did not start within {DRIVER_START_TIMEOUT:.0f} s" if isinstance(exc, TimeoutError)
            else f"failed to start: {type(exc).__name__}: {exc}"
        )  # fmt: skip
        problem = (
            f"trunk driver {name!r} (plugin {plugin!r}) {why}; trunk(s) "
            f"{', '.join(trunks) or 'none'} cannot place calls until corecall restarts"
        )
        expected = isinstance(exc, OSError | CorecallError | TimeoutError)
        (log.error if expected else log.exception)("%s", problem)
        self.failed_drivers[name] = problem
        del self.drivers[name]

    async def stop(self, *, drain_timeout: float = 10.0) -> None:
        """Stop drivers and flush every pending write. Live calls stay up in the PBX; their
        records stay unfinished and are reconciled on the next start.

        Bounded whatever the timing: at most :data:`DRIVER_STOP_TIMEOUT` per started driver,
        plus ``drain_timeout`` for the pending writes, plus :data:`WRITER_STOP_TIMEOUT`
        seconds. Nothing here relies on a cancellation being delivered."""
        for name in list(self._started_drivers):
            try:
                async with asyncio.timeout(DRIVER_STOP_TIMEOUT):
                    await self.drivers[name].stop()
            except TimeoutError:
                log.error("trunk driver %r did not stop within %g s", name, DRIVER_STOP_TIMEOUT)
            except Exception:
                log.exception("trunk driver %r failed to stop", name)
            self._started_drivers.discard(name)
        for handle in self._watchdogs.values():
            handle.cancel()
        self._watchdogs.clear()
        if self._writes is not None and self._writer is not None:
            try:
                async with asyncio.timeout(drain_timeout):
                    await self._writes.join()
                    if self._checkpointing is not None:  # the store thread is using the store
                        await asyncio.wait({self._checkpointing})
            except TimeoutError:
                log.error("call records still being written after %.0fs", drain_timeout)
            self._writer.cancel()
            _done, pending = await asyncio.wait({self._writer}, timeout=WRITER_STOP_TIMEOUT)
            if pending:
                log.error("the call writer did not stop within %g s", WRITER_STOP_TIMEOUT)
            self._writer = None
        if self.services is not None:
            await self.services.stop()

    # ------------------------------------------------------------------ placing calls
    def live_calls(self, agent_id: int | None = None) -> list[CallRecord]:
        return [
            c for c in self._live.values()
            if not c.is_final and (agent_id is None or c.agent_id == agent_id)
        ]  # fmt: skip

    async def prepare(self, agent_id: int, text: str) -> tuple[CallRequest, Agent]:
        """Every check a call must pass, without placing it. Raises RefusedError."""
        now = self._clock()
        since = now - _dt.timedelta(minutes=1)
        # Authorization and limits are read fresh on every request; on the event loop when
        # the store can answer at once (SQLite), else in one trip to the store thread.
        read = self.store.agent_and_recent_calls_nowait(agent_id, since)
        if read is None:
            read = await self._in_store(self.store.agent_and_recent_calls, agent_id, since)
        agent, recent = read
        refused = authorization_refusal(agent, agent_id)
        if refused is not None:
            raise refused
        assert agent is not None
        routes = self._routes()
        try:
            route = self.plugins.resolve_route(agent, routes)
        except PluginError as exc:  # fail closed, naming the plugin (logged there)
            raise RefusedError("policy_error", plugin_failed_message(exc)) from None
        if route is None:
            names = " or ".join(r.name for r in routes.values()) or "none is offered yet"
            if agent.route_code is not None and agent.route_code not in routes:
                # The agent did choose one: its plugin was disabled or [routes.X] removed.
                raise RefusedError(
                    "no_route",
                    f"Your route [{agent.route_code}] is no longer offered. Choose another "
                    f"({names}), then call again.",
                )
            raise RefusedError("no_route", f"Choose a route first ({names}), then call again.")
        verdict = self.plugins.parse_number(text, route)
        if not verdict.ok:
            raise RefusedError(verdict.reason or "invalid", verdict.message)
        refused = own_number_refusal(verdict.e164, agent.phone, routes)  # type: ignore[arg-type]
        if refused is not None:
            raise refused
        limits = self.config.limits
        request = CallRequest(
            agent=agent,
            target=verdict.e164,  # type: ignore[arg-type]
            route=route,
            caller_id=effective_caller_id(agent, route),
            activity=AgentActivity(
                live_calls=len(self.live_calls(agent_id)),
                calls_last_minute=recent,
                max_live_calls=limits.live_calls_per_agent,
                max_calls_per_minute=limits.calls_per_minute,
            ),
            at=now,
        )
        await self._check_policies(request, f"telegram:{agent_id}")
        return request, agent

    async def _check_policies(self, request: CallRequest, actor: str) -> None:
        """Ask the policy plugins, in order, on the event loop as far as they can be: their
        store reads go to the store's non-blocking view (SQLite: indexed WAL reads, no thread
        hop); from the first plugin that cannot be answered that way (PostgreSQL, a lock in
        the way, a plugin marked blocking) the rest are asked on the store thread. Measured:
        the hop cost every call milliseconds of p99 on a busy machine (docs/benchmarks.md).
        A refusal is audited (``call.refused``: who, which number, which plugin and why) and
        raised."""
        refusal, rest = self.plugins.check_call_on_loop(request, self.store.nowait_reads())
        if rest is not None:
            refusal = await self._in_store(self.plugins.check_call, request, rest)
        if refusal is not None:
            detail = f"{refusal.reason} by {refusal.plugin}: {refusal.message}"
            await self._in_store(self.store.audit, actor, "call.refused", request.target, detail)
            raise RefusedError(refusal.reason, refusal.message)

    async def place(self, agent_id: int, text: str) -> CallRecord:
        """Check and place a call; returns its record (already DIALING_AGENT or ENDED).

        Raises :class:`RefusedError` (nothing dialed, nothing recorded) when any check fails.
        """
        with log_context(agent_id=agent_id):
            try:
                # One decision at a time per agent, and the agent's lock is held until the
                # PBX has the Originate: a change to the agent (change_agent: revoke, new
                # phone, caller ID, route) waits for a call being placed to be handed over,
                # and no call checked against the old state is dialed once the change is
                # acknowledged.
                async with self._agent_lock(agent_id):
                    request, agent = await self.prepare(agent_id, text)
                    record, originate, driver = await self._record(request, agent)
                    with log_context(call_id=record.id):  # the driver's work inherits it
                        return await self._originate(record, originate, driver)
            except RefusedError as exc:
                self.plugins.notify_call_refused(agent_id, exc.reason)
                log.info("call refused (%s): %s", exc.reason, exc)
                raise

    async def change_agent(self, agent_id: int, change: Callable[..., T], *args, **kwargs) -> T:
        """Apply ``change(*args, **kwargs)`` (a blocking store or
        :class:`~corecall.agents.AgentAdmin` call that alters how ``agent_id``'s calls are
        dialed: authorization, phone, route, caller ID) in step with this manager's calls.

        It waits until a call of that agent being checked or placed right now has been handed
        to the PBX (bounded by the driver's Originate timeout), and no call of theirs is
        checked until the change is committed. So once the caller acknowledges the change
        ("revoked"), no call is dialed under the old state. Returns what ``change`` returned
        and raises what it raised."""
        async with self._agent_lock(agent_id):
            return await self._in_store(functools.partial(change, *args, **kwargs))

    async def place_operator_call(
        self, route_code: str, agent_phone: str, text: str, *, actor: str
    ) -> CallRecord:
        """See :meth:`_place_operator_call`. A refusal is told to the plugins
        (``corecall_call_refused`` with agent id :data:`OPERATOR_AGENT_ID`), as an agent's
        is."""
        try:
            return await self._place_operator_call(route_code, agent_phone, text, actor=actor)
        except RefusedError as exc:
            self.plugins.notify_call_refused(OPERATOR_AGENT_ID, exc.reason)
            log.info("operator call refused (%s): %s", exc.reason, exc)
            raise

    async def _place_operator_call(
        self, route_code: str, agent_phone: str, text: str, *, actor: str
    ) -> CallRecord:
        """A test call by an operator (``corecall call``): ring ``agent_phone`` over the
        route's trunk, then dial the target. Same number policy and policy plugins as an
        agent's call; recorded with agent id :data:`OPERATOR_AGENT_ID` and audited as
        ``call.operator`` by ``actor``. Raises :class:`RefusedError` when a check fails.

        ``agent_phone`` is rung first and hears the confirmation prompt, so unless it is the
        phone of an agent on record (added by an admin, as an agent's own phone is for
        ``/call``) it is a called party like the target: the policy plugins (do-not-call
        list, calling hours, ...) are asked about it too, before anything is dialed."""
        route = self._routes().get(route_code)
        if route is None:
            known = ", ".join(sorted(self._routes())) or "none"
            raise RefusedError("no_route", f"Route {echo(route_code)} is not offered ({known}).")
        phone = self.plugins.parse_number(agent_phone, route)
        if not phone.ok:
            raise RefusedError("agent_phone_invalid", f"Agent phone: {phone.message}")
        agent = Agent(
            telegram_id=OPERATOR_AGENT_ID,
            phone=phone.e164,  # type: ignore[arg-type]
            name=actor,
            authorized=True,
            route_code=route.code,
        )
        async with self._agent_lock(OPERATOR_AGENT_ID):
            verdict = self.plugins.parse_number(text, route)
            if not verdict.ok:
                raise RefusedError(verdict.reason or "invalid", verdict.message)
            refused = own_number_refusal(verdict.e164, agent.phone, self._routes())  # type: ignore[arg-type]
            if refused is not None:
                raise refused
            if not await self._in_store(self._is_an_agents_phone, agent.phone):
                await self._check_first_leg(agent, route, actor)
            request = CallRequest(
                agent=agent, target=verdict.e164, route=route,  # type: ignore[arg-type]
                caller_id=route.caller_ids[0],
                activity=AgentActivity(live_calls=len(self.live_calls(OPERATOR_AGENT_ID))),
                at=self._clock(),
            )  # fmt: skip
            await self._check_policies(request, actor)
            record, originate, driver = await self._record(request, agent)
        await self._in_store(
            self.store.audit, actor, "call.operator", record.id,
            json.dumps({"route": route.code, "agent_phone": agent.phone,
                        "target": request.target}),
        )  # fmt: skip
        with log_context(call_id=record.id, agent_id=OPERATOR_AGENT_ID):
            return await self._originate(record, originate, driver)

    def _is_an_agents_phone(self, phone: str) -> bool:
        return any(a.phone == phone for a in self.store.list_agents())

    async def _check_first_leg(self, agent: Agent, route: Route, actor: str) -> None:
        """The policy plugins on the number an operator's test call rings first."""
        first_leg = CallRequest(
            agent=agent, target=agent.phone, route=route, caller_id=route.caller_ids[0],
            activity=AgentActivity(live_calls=len(self.live_calls(OPERATOR_AGENT_ID))),
            at=self._clock(),
        )  # fmt: skip
        try:
            await self._check_policies(first_leg, actor)
        except RefusedError as exc:
            raise RefusedError(
                exc.reason,
                f"Agent phone {agent.phone} (rung first, and not an agent's phone on record): "
                f"{exc.message}",
            ) from None

    async def _record(
        self, request: CallRequest, agent: Agent
    ) -> tuple[CallRecord, OriginateRequest, TrunkDriver]:
        """Create the call record for a checked request (the caller holds the agent lock)."""
        agent_id = agent.telegram_id
        trunk = request.route.trunk
        driver = self.drivers.get(trunk.driver)
        if driver is None:
            raise RefusedError(
                "trunk_unavailable",
                f"Route {request.route.name} is not available right now (its trunk driver "
                f"{trunk.driver!r} is not running). Tell your admin.",
            )
        not_ready = await driver.wait_ready(trunk)
        if not_ready is not None:
            log.warning("not placing a call on trunk %r: %s", trunk.name, not_ready)
            raise RefusedError("pbx_starting", PBX_STARTING)
        call_id = uuid.uuid4().hex
        try:
            originate = OriginateRequest(
                call_id=call_id,
                agent_phone=agent.phone,
                target=request.target,
                caller_id=request.caller_id,
                trunk=trunk,
                agent_ring_timeout=self.config.calls.agent_ring_timeout,
                target_ring_timeout=self.config.calls.target_ring_timeout,
                confirm=request.route.confirm,
                confirm_timeout=request.route.confirm_timeout,
                agent_caller_id=request.caller_id,  # owned numbers on both legs
            )
        except UnsafeValueError as exc:
            log.error("refusing unsafe call for agent %s: %s", agent_id, exc)
            raise RefusedError(
                "unsafe_value", "This call was refused: a stored number is malformed. "
                "Tell your admin.",
            ) from None  # fmt: skip
        record = CallRecord(
            id=call_id,
            agent_id=agent_id,
            agent_phone=agent.phone,
            target=request.target,
            route_code=request.route.code,
            trunk=trunk.name,
            caller_id=request.caller_id,
            created_at=self._clock(),
        )
        # A call is on record before the phone can ring: written on the event loop when the
        # store can at once (SQLite, nobody else writing), else through the store thread,
        # where a burst's waiting records are one transaction ahead of the call writer.
        # An agent's record is written only if, in that same transaction, the agent is still
        # authorized with the phone checked above: a revoke or phone change committed by
        # another process (the CLI) while this call was being checked is never dialed.
        check_agent = agent_id != OPERATOR_AGENT_ID
        started = time.perf_counter()
        try:
            written = self.store.create_call_nowait(record, check_agent=check_agent)
            if written is None:
                many = self._create_agent_calls if check_agent else self._create_operator_calls
                written = await self.store_executor.batched(many, record, urgent=True)
        except AgentChangedError as exc:
            log.info("call not placed: %s", exc)
            raise agent_changed_refusal(exc.agent, agent_id) from None
        record = written
        self.plugins.notify_store_write("create_call", time.perf_counter() - started)
        self._track(record)
        self._confirm_budgets[call_id] = confirm_budget(originate)
        return record, originate, driver

    async def _originate(
        self, record: CallRecord, originate: OriginateRequest, driver: TrunkDriver
    ) -> CallRecord:
        call_id = record.id
        self.progress(call_id, CallState.DIALING_AGENT)
        try:
            # The agent's lock is held until the driver returns: one that never does would
            # leave this agent's conversation without an answer for ever.
            async with asyncio.timeout(ORIGINATE_TIMEOUT):
                await driver.originate(originate, self.progress)
        except TimeoutError:
            name = originate.trunk.driver
            log.error(
                "trunk driver %r did not return from originate within %g s; the call is "
                "recorded as trunk_unavailable and hung up", name, ORIGINATE_TIMEOUT,
            )  # fmt: skip
            self.progress(
                call_id, CallState.ENDED, EndReason.TRUNK_UNAVAILABLE,
                f"the trunk driver {name} did not answer within {ORIGINATE_TIMEOUT:g} s",
            )  # fmt: skip
            self.supervisor.start(
                f"corecall-hangup-{call_id}",
                functools.partial(self._hang_up_abandoned, driver, call_id),
                restart=False,
            )
        except CorecallError as exc:
            self.progress(call_id, CallState.ENDED, EndReason.TRUNK_UNAVAILABLE, str(exc))
        except Exception as exc:
            log.exception("trunk driver %r failed to originate", originate.trunk.driver)
            self.progress(
                call_id, CallState.ENDED, EndReason.TRUNK_UNAVAILABLE,
                f"driver error: {type(exc).__name__}",
            )  # fmt: skip
        return self._live.get(call_id, record)

    @staticmethod
    async def _hang_up_abandoned(driver: TrunkDriver, call_id: str) -> None:
        """Best effort: a call given up on may still reach the PBX later."""
        try:
            async with asyncio.timeout(DRIVER_STOP_TIMEOUT):
                await driver.hangup(call_id)
        except Exception as exc:
            log.warning("hanging up abandoned call %s: %s", call_id, exc)

    async def hangup(
        self, call_id: str, *, reason: EndReason | None = None, detail: str = ""
    ) -> bool:
        """Hang up a live call. False if it is not live.

        Without ``reason`` it is the agent's own hang-up (recorded ``cancelled`` before the
        target answered, ``completed`` after). corecall hanging up on its own (``corecall
        call --timeout``) passes ``reason=EndReason.TIMED_OUT`` and a ``detail``, so the
        record never blames the agent.
        """
        record = self._live.get(call_id)
        if record is None or record.is_final:
            return False
        self._hangup_requested[call_id] = (reason, detail) if reason is not None else None
        driver = self.drivers.get(self._trunk_driver_name(record))
        if driver is None:
            return False
        return await driver.hangup(call_id)

    # ------------------------------------------------------------------ state machine
    def progress(
        self, call_id: str, state: CallState, reason: EndReason | None = None, detail: str = ""
    ) -> None:
        """Apply a transition reported by a driver. Repeats and backward moves are ignored;
        the final state is final. Never blocks: persistence happens in the writer task.

        Never raises into the driver: a report outside the contract (a ``state`` that is not
        a :class:`CallState`; with ``ENDED``, a ``reason`` that is not an
        :class:`EndReason`) is logged naming the driver; a bad state is ignored, a bad
        reason ends the call as ``unknown`` saying what the driver reported."""
        current = self._live.get(call_id)
        if current is None or current.is_final:
            return
        if not isinstance(state, CallState) or not (
            reason is None or isinstance(reason, EndReason)
        ):
            checked = self._checked_report(current, state, reason)
            if checked is None:
                return
            state, reason, detail = checked
        elif not isinstance(detail, str):
            detail = repr(detail)
        if detail:  # from the far end (a SIP reason phrase): one safe line, never raw ESC
            detail = one_line(detail, DETAIL_MAX_CHARS)
        if state is not CallState.ENDED and state.order <= current.state.order:
            return
        now = self._clock()
        changes: dict = {"state": state}
        field = STAGE_TIMESTAMP_FIELD.get(state)  # awaiting_confirmation has no stored time
        if field is not None:
            changes[field] = now
        if state is CallState.ENDED:
            reason = reason or EndReason.UNKNOWN
            if call_id in self._hangup_requested:
                # We asked for it: before the target answered it is a cancellation, after it
                # a normal end of conversation, whatever the PBX calls it; when corecall
                # itself hung up, the reason it gave.
                ours = self._hangup_requested[call_id]
                if ours is not None:
                    reason, detail = ours
                else:
                    connected = current.connected_at is not None
                    reason = EndReason.COMPLETED if connected else EndReason.CANCELLED
            changes["reason"] = reason
            changes["detail"] = detail
            self._hangup_requested.pop(call_id, None)
            handle = self._watchdogs.pop(call_id, None)
            if handle:
                handle.cancel()
        record = attrs.evolve(current, **changes)
        self._live[call_id] = record
        if log.isEnabledFor(logging.INFO):
            why = ""
            if state is CallState.ENDED and record.reason is not None:
                why = f" ({record.reason.value}{': ' + detail if detail else ''})"
            extra = call_extra(call_id, current.agent_id)
            log.info("call %s: %s%s", call_id, state.value, why, extra=extra)
        if state is CallState.CONNECTED:
            handle = self._watchdogs.pop(call_id, None)
            if handle:
                handle.cancel()
        elif state is CallState.AWAITING_CONFIRMATION and call_id in self._watchdogs:
            # The prompt and the wait for the key come on top of the ring timeouts.
            self._watchdogs.pop(call_id).cancel()
            self._watchdogs[call_id] = asyncio.get_running_loop().call_later(
                self._confirm_budgets.get(call_id, 0.0)
                + self.config.calls.target_ring_timeout
                + WATCHDOG_GRACE,
                self._watchdog_fired, call_id,
            )  # fmt: skip
        if state is CallState.ENDED:
            self._confirm_budgets.pop(call_id, None)
        assert self._writes is not None, "CallManager.start() was not awaited"
        self._writes.put_nowait(_Transition(call_id, current.state, record, now))

    def _checked_report(
        self, current: CallRecord, state: object, reason: object
    ) -> tuple[CallState, EndReason, str] | None:
        """A driver's report that breaks the contract, made safe (see :meth:`progress`)."""
        trunk = self.config.trunks.get(current.trunk)
        driver = trunk.driver if trunk is not None else current.trunk
        extra = call_extra(current.id, current.agent_id)
        if not isinstance(state, CallState):
            log.error("trunk driver %r reported %r for call %s, which is not a CallState; "
                      "ignored", driver, state, current.id, extra=extra)  # fmt: skip
            return None
        if state is not CallState.ENDED:
            return state, EndReason.UNKNOWN, ""  # a reason only counts with ENDED
        log.error("trunk driver %r ended call %s with %r, which is not an EndReason; "
                  "recorded as unknown", driver, reason, current.id, extra=extra)  # fmt: skip
        detail = f"the trunk driver {driver} reported an invalid end reason {reason!r:.80}"
        return state, EndReason.UNKNOWN, detail

    def _track(self, record: CallRecord) -> None:
        self._live[record.id] = record
        self._finished[record.id] = asyncio.get_running_loop().create_future()
        deadline = (
            self.config.calls.agent_ring_timeout
            + self.config.calls.target_ring_timeout
            + WATCHDOG_GRACE
        )
        self._watchdogs[record.id] = self.supervisor.call_later(
            deadline, f"corecall-watchdog-{record.id}", self._watchdog_fired, record.id
        )
        if self._writes is not None:
            self._writes.put_nowait(_Transition(record.id, None, record, self._clock()))

    def _watchdog_fired(self, call_id: str) -> None:
        self._watchdogs.pop(call_id, None)
        record = self._live.get(call_id)
        if record is not None and record.state is not CallState.CONNECTED:
            log.warning("call %s: no word from the PBX; ending it as unknown", call_id,
                        extra=call_extra(call_id, record.agent_id))  # fmt: skip
            self.progress(call_id, CallState.ENDED, EndReason.UNKNOWN, "no word from the PBX")

    def _trunk_driver_name(self, record: CallRecord) -> str:
        trunk = self.config.trunks.get(record.trunk)
        return trunk.driver if trunk else ""

    async def _write_loop(self) -> None:
        assert self._writes is not None
        while True:
            batch = [await self._writes.get()]
            if self._writer_lingers:
                await asyncio.sleep(STORE_THREAD_WRITER_LINGER)
            while not self._writes.empty():
                batch.append(self._writes.get_nowait())
            try:
                await self._persist(batch)
            finally:
                # Announced even when a write failed for good (logged as critical by
                # _persist): a watcher must never wait forever on a call that moved on.
                for item in batch:
                    try:
                        self._announce(item)
                    except Exception:
                        log.exception("announcing call %s (%s) failed", item.call_id,
                                      item.record.state.value)  # fmt: skip
                    self._writes.task_done()
            if self._checkpoint_due:
                await self._checkpoint()

    async def _persist(self, batch: list[_Transition]) -> None:
        """Write each call's newest record (it carries every stage time so far, so a burst of
        transitions is one write per call; creation was written by place()). Never raises
        (but CancelledError): a failure of any kind is retried, a batch that fails is
        written record by record so one bad record never blocks the others, and a record
        that cannot be written is logged as critical with its call id."""
        latest = {item.call_id: item.record for item in batch if item.previous is not None}
        pending = list(latest.values())
        delay = 0.2
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            if not pending:
                return
            pending, backend_down = await self._save(pending)
            if pending and attempt < WRITE_ATTEMPTS:
                # The backend failing (StoreError) may take a while to come back; anything
                # else is a plugin's bug or a bad record: one quick retry, then give up.
                if not backend_down and attempt >= 2:
                    break
                await asyncio.sleep(delay if backend_down else 0.05)
                delay *= 2
        for record in pending:
            log.critical(
                "call %s: its state %s could not be written to the store; the record stays "
                "behind until it is reconciled", record.id, record.state.value,
            )  # fmt: skip

    async def _save(self, records: list[CallRecord]) -> tuple[list[CallRecord], bool]:
        """One write of ``records``; on failure, one write per record. Returns the records
        still unwritten and whether the backend itself failed (StoreError)."""
        try:
            started = time.perf_counter()
            await self._write_progress(records)
            self.plugins.notify_store_write("save_progress", time.perf_counter() - started)
            return [], False
        except Exception as exc:
            log.error(
                "writing the state of %d call(s) failed: %s: %s", len(records),
                type(exc).__name__, exc, exc_info=not isinstance(exc, StoreError),
            )  # fmt: skip
            if len(records) == 1:
                return records, isinstance(exc, StoreError)
        failed: list[CallRecord] = []
        backend_down = False
        for record in records:
            try:
                await self._write_progress([record])
            except Exception as exc:
                backend_down = backend_down or isinstance(exc, StoreError)
                failed.append(record)
        return failed, backend_down

    async def _write_progress(self, records: list[CallRecord]) -> None:
        """:meth:`Store.save_progress` of ``records``: on the event loop when the store can
        take them at once (SQLite with no other writer: then the call records written by
        place() on the loop never find the lock held by this writer), at most
        :data:`NOWAIT_PROGRESS_ROWS` per transaction with the loop free in between; from the
        first chunk it cannot take, through the store thread (same order: the writer
        awaits each batch before the next). Raises what the store raised."""
        for start in range(0, len(records), NOWAIT_PROGRESS_ROWS):
            if start:
                await asyncio.sleep(0)  # let waiting place() calls run between chunks
            chunk = records[start : start + NOWAIT_PROGRESS_ROWS]
            if not self.store.save_progress_nowait(chunk):
                self._writer_lingers = True
                await self._in_store(self.store.save_progress, records[start:])
                return
        self._writer_lingers = False
        if time.monotonic() - self._checkpointed_at >= CHECKPOINT_INTERVAL:
            self._checkpoint_due = True

    async def _checkpoint(self) -> None:
        """A store checkpoint on the store thread (the loop's connection never checkpoints:
        that fsyncs), awaited by the call writer between two batches, after announcing the
        first: the writer adds nothing to the WAL while it runs, so the checkpoint is short
        and its last step, which holds writers back, rarely meets one."""
        self._checkpoint_due = False
        job = self._checkpointing = self.store_executor.run(self.store.checkpoint)
        job.add_done_callback(_log_checkpoint_failure)
        # Not cancelled with the writer: stop() waits for it before the store may be closed
        # (closing a SQLite connection in use on another thread crashes the process).
        await asyncio.wait({job})
        self._checkpointed_at = time.monotonic()

    def _announce(self, item: _Transition) -> None:
        record = item.record
        self._persisted[record.id] = record
        self.plugins.notify_state_changed(record, item.previous)
        for mailbox in self._watchers.get(record.id, ()):
            mailbox.put(record)
        if record.is_final:
            self._watchers.pop(record.id, None)
            fut = self._finished.pop(record.id, None)
            if fut is not None and not fut.done():
                fut.set_result(record)
            self._live.pop(record.id, None)
            self._persisted.pop(record.id, None)

    @contextlib.asynccontextmanager
    async def _agent_lock(self, agent_id: int) -> AsyncIterator[None]:
        """The agent's lock, dropped from the table when nobody holds or awaits it (a lock
        dropped while a coroutine still waits on it would let two holders in)."""
        lock, users = self._agent_locks.setdefault(agent_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._agent_locks.pop(agent_id, None)

    # ------------------------------------------------------------------ watching
    async def watch(self, call_id: str) -> AsyncIterator[CallRecord]:
        """Yield the call's record after each persisted transition, ending with the final one.

        Starts with the last persisted state, so a late watcher still sees where the call
        is; a state that is still in the writer's queue is yielded once it is on record, so
        whatever a watcher shows can be read back from the store. A call that is not live
        yields its stored record (if any) and ends.
        """
        if call_id not in self._live:
            stored = await self._in_store(self.store.get_call, call_id)
            if stored is not None:
                yield stored
            return
        mailbox = _Mailbox()
        self._watchers[call_id].append(mailbox)
        persisted = self._persisted.get(call_id)
        if persisted is not None:
            mailbox.put(persisted)
        while True:
            record = await mailbox.get()
            yield record
            if record.is_final:
                return

    async def wait_final(self, call_id: str, timeout: float | None = None) -> CallRecord:
        fut = self._finished.get(call_id)
        if fut is None:
            stored = await self._in_store(self.store.get_call, call_id)
            if stored is None:
                raise KeyError(call_id)
            return stored
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancellation
            return await asyncio.shield(fut)

    async def wait_all_final(self, timeout: float) -> bool:
        """Wait (bounded) for every live call to end. True when none is left."""
        futs = [asyncio.shield(f) for f in self._finished.values()]
        if not futs:
            return True
        _done, pending = await asyncio.wait(futs, timeout=timeout)
        return not pending

    # ------------------------------------------------------------------ reconcile
    async def _reconcile_unfinished(self) -> None:
        unfinished = await self._in_store(self.store.unfinished_calls)
        by_driver: dict[str, list[CallRecord]] = collections.defaultdict(list)
        for record in unfinished:
            self._live[record.id] = record
            self._persisted[record.id] = record  # read back from the store
            self._finished[record.id] = asyncio.get_running_loop().create_future()
            by_driver[self._trunk_driver_name(record)].append(record)
        for name, records in by_driver.items():
            driver = self.drivers.get(name)
            if driver is None:
                for r in records:
                    self.progress(
                        r.id, CallState.ENDED, EndReason.UNKNOWN,
                        "outcome unknown: its trunk is no longer configured",
                    )  # fmt: skip
                continue
            try:
                await driver.reconcile(records, self.progress)
            except Exception:
                log.exception("trunk driver %r failed to reconcile", name)
                for r in records:
                    self.progress(r.id, CallState.ENDED, EndReason.UNKNOWN, "reconcile failed")
