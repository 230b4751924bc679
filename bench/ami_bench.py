#!/usr/bin/env python3
"""Benchmark of the Asterisk AMI driver against the lab, in one run:

1. **Bridged calls per second**: a burst of N calls placed through corecall (CallManager →
   number policy → call record → AsteriskAmiDriver) vs. a bare panoramisk script sending the
   same N Originates; the clock stops when the last call is bridged (agent leg CONNECTED /
   BridgeEnter). The two alternate, each on its own connection, and the ratio is taken per
   round.
2. **Place → Originate on the socket**: calls placed at a steady rate (default 50/s); the
   time from ``CallManager.place()`` (and, separately, from ``driver.originate()``) to the
   moment the Originate bytes are handed to the socket.
3. **Event ingest**: the recorded raw AMI stream ``bench/data/lab-events.ami`` replayed through
   the driver's protocol and event→state machine (every call in it tracked), vs. panoramisk's
   own parsing of the same bytes (``AMIProtocol.data_received`` with no handlers).

Medians over ``--rounds`` rounds are reported; ratios are computed within each round. Run as
root on Debian (the lab needs it)::

    .venv/bin/python bench/ami_bench.py --write-docs

``--write-docs`` replaces the "AMI driver" section of docs/benchmarks.md with the figures and
the command that produced them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import datetime as _dt
import gc
import logging
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import attrs
from corecall_asterisk.actions import originate_headers
from corecall_asterisk.protocol import AmiProtocol
from corecall_asterisk.tracking import CallTracker, TrackedCall
from corecall_lab import lab as labmod
from corecall_testing.bench_docs import write_section
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.calls import CallManager
from corecall.config import parse_config
from corecall.domain import STAGE_TIMESTAMP_FIELD, Agent, CallRecord, CallState
from corecall.errors import AgentChangedError
from corecall.heap import freeze_startup_heap, thaw_startup_heap
from corecall.store import NowaitReads, Store
from corecall.telephony.driver import OriginateRequest

REPO = Path(__file__).resolve().parents[1]
EVENTS_FILE = REPO / "bench" / "data" / "lab-events.ami"
DOCS = REPO / "docs" / "benchmarks.md"
DOCS_SECTION = "ami-bench"  # its markers in docs/benchmarks.md
CALLER_ID = "+12125550100"
ENDPOINT = "corecall-main"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


#: NANP exchanges for the agents' phones (N11 codes are not numbers).
_EXCHANGES = [e for e in range(200, 1000) if e % 100 != 11]


def agent_number(i: int) -> str:
    """Agent ``i``'s phone. It ends in 0999: the lab's carrier answers at once and holds until
    Asterisk hangs up, as a person who placed the call does. (A carrier that hung up 1 s after
    answering cancelled the call whenever the busy machine took longer than that to dial and
    answer the target: neither corecall nor panoramisk had lost it.)"""
    return f"+1212{_EXCHANGES[i % len(_EXCHANGES)]}0999"


def target_number(i: int) -> str:
    return f"+1312555{1000 + i:04d}"  # answers at once, hangs up after 1 s


# ------------------------------------------------------------------------------ lab + corecall


def start_lab() -> labmod.Lab:
    def udp(host: str) -> int:
        return labmod.free_port(host, socket.SOCK_DGRAM)

    lab = labmod.Lab(
        f"bench-{os.getpid()}",
        ami_port=labmod.free_port(),
        sip_port=udp("127.0.0.1"),
        carriers={
            "corecall-main": f"127.0.0.2:{udp('127.0.0.2')}",
            "corecall-dev": f"127.0.0.3:{udp('127.0.0.3')}",
        },
        rtp_ports=(20000, 39999),
        die_with_parent=True,
    )
    lab.start()
    return lab


class MemoryStore(Store):
    """Just enough of a store, in memory: isolates the driver and the state machine from
    SQLite in the "store excluded" figures."""

    def __init__(self, agents: list[Agent]) -> None:
        self.agents = {a.telegram_id: a for a in agents}
        self.calls: dict[str, CallRecord] = {}

    def open(self): ...
    def close(self): ...
    def schema_version(self):
        return self.SCHEMA_VERSION

    def get_agent(self, telegram_id):
        return self.agents.get(telegram_id)

    def list_agents(self):
        return list(self.agents.values())

    def add_agent(self, *a, **k):
        raise NotImplementedError

    def remove_agent(self, *a, **k):
        raise NotImplementedError

    def set_authorized(self, *a, **k):
        raise NotImplementedError

    def set_phone(self, *a, **k):
        raise NotImplementedError

    def set_route(self, *a, **k):
        raise NotImplementedError

    def set_caller_id(self, *a, **k):
        raise NotImplementedError

    def get_call(self, call_id):
        return self.calls.get(call_id)

    def recent_calls(self, telegram_id=None, limit=10):
        return []

    def unfinished_calls(self):
        return []

    def count_calls_since(self, telegram_id, since):
        return 0

    def calls_to_target_since(self, target, since):
        return []

    # The DNC list is empty: every benchmark call passes the check (one lookup each).
    def dnc_contains(self, number):
        return False

    def dnc_get(self, number):
        return None

    def dnc_count(self):
        return 0

    def dnc_entries(self, *, after=None, limit=1000):
        return []

    def dnc_add(self, *a, **k):
        raise NotImplementedError

    def dnc_add_many(self, *a, **k):
        raise NotImplementedError

    def dnc_remove(self, *a, **k):
        raise NotImplementedError

    def audit(self, *a, **k): ...
    def audit_log(self, limit=50):
        return []

    # Memory answers at once: the event loop's fast paths, as SQLite's (no thread hop).
    def agent_and_recent_calls_nowait(self, telegram_id, since):
        return self.agent_and_recent_calls(telegram_id, since)

    def create_call_nowait(self, call, *, check_agent=False):
        return self.create_call(call, check_agent=check_agent)

    def nowait_reads(self):
        return NowaitReads(self)

    def create_call(self, call, *, check_agent=False):
        agent = self.agents.get(call.agent_id)
        if check_agent and not (agent and agent.authorized and agent.phone == call.agent_phone):
            raise AgentChangedError(f"agent {call.agent_id} changed", agent)
        self.calls[call.id] = call
        return call

    def record_transition(self, call_id, state, at, *, reason=None, detail=""):
        import attrs

        call = self.calls[call_id]
        field = STAGE_TIMESTAMP_FIELD.get(state)  # awaiting_confirmation has no stage time
        changes = {field: at} if field else {}
        if state.order > call.state.order:
            changes["state"] = state
        if state is CallState.ENDED:
            changes.update(reason=reason, detail=detail)
        self.calls[call_id] = attrs.evolve(call, **changes)
        return self.calls[call_id]


class Corecall:
    """An App + CallManager on the AMI driver, with N authorized agents on route M.

    ``store="sqlite"`` is the real thing; ``store="memory"`` swaps the store for
    :class:`MemoryStore` to show what the driver and the state machine cost on their own.
    """

    def __init__(
        self,
        lab: labmod.Lab,
        workdir: Path,
        agents: int,
        store: str,
        dsn: str = "",
        confirm: str = "key",
    ) -> None:
        backend = (
            {"backend": "postgres", "postgres_dsn": dsn}
            if store == "postgres"
            else {"backend": "sqlite", "sqlite_path": str(workdir / "bench.sqlite3")}
        )
        raw = {
            "data_dir": str(workdir),
            "store": backend,
            "plugins": {
                "asterisk_ami": {"servers": {"pbx1": {
                    "host": lab.ami_host, "port": lab.ami_port, "username": lab.ami_user,
                    "secret": lab.ami_secret, "ping_interval": 5.0, "action_timeout": 5.0,
                }}},
                # the benchmark runs at any hour: calling hours open round the clock
                "policy_calling_hours": {"opens": "00:00", "closes": "24:00"},
            },
            "trunks": {
                "main": {"driver": "asterisk_ami", "server": "pbx1", "endpoint": ENDPOINT},
                "dev": {"driver": "asterisk_ami", "server": "pbx1", "endpoint": "corecall-dev"},
            },
            "routes": {
                # confirm "key": the agent presses 1 (every lab phone does, 250 ms after
                # answering) before the target is dialed; "none": dialed on answer.
                "M": {"trunk": "main", "caller_ids": [CALLER_ID], "confirm": confirm},
                "D": {"trunk": "dev", "caller_ids": ["+12125550199"]},
            },
            "calls": {"agent_ring_timeout": 10, "target_ring_timeout": 10},
            "limits": {"live_calls_per_agent": 1000, "calls_per_minute": 100000},
        }  # fmt: skip
        self.app = App(parse_config(raw, path=None))
        admin = AgentAdmin(self.app)
        existing = {a.telegram_id for a in self.app.store.list_agents()}
        for i in range(agents):
            if 1 + i not in existing:
                admin.add(1 + i, agent_number(i), authorized=True, actor="bench")
                admin.set_route(1 + i, "M", actor="bench")
        self.agents = agents
        self.store = (
            MemoryStore([self.app.store.get_agent(1 + i) for i in range(agents)])
            if store == "memory"
            else self.app.store
        )
        self.manager = None
        self.driver = None
        self.connected_at: dict[str, float] = {}
        #: Calls that ended without connecting: call id -> (reason, detail).
        self.ended_unconnected: dict[str, tuple[str, str]] = {}

    async def start(self) -> None:
        drivers = self.app.build_drivers()
        self.driver = drivers["asterisk_ami"]
        self.manager = CallManager(
            config=self.app.config, plugins=self.app.plugins, store=self.store,
            routes=self.app.routes, drivers=drivers,
        )  # fmt: skip
        real = self.manager.progress
        connected_at, unconnected = self.connected_at, self.ended_unconnected

        def progress(call_id, state, reason=None, detail=""):
            if state is CallState.CONNECTED:
                connected_at.setdefault(call_id, time.perf_counter())
            elif state is CallState.ENDED and call_id not in connected_at:
                why = getattr(reason, "value", reason) or "unknown"
                unconnected.setdefault(call_id, (why, detail))
            real(call_id, state, reason, detail)

        self.manager.progress = progress  # the driver reports through this wrapper
        await self.manager.start(reconcile=False)

    async def stop(self) -> None:
        await self.manager.wait_all_final(30)
        await self.manager.stop()

    def close(self) -> None:
        self.app.close()


def start_postgres():
    """A real PostgreSQL server, started as the tests start it (initdb + pg_ctl on a free
    loopback port; ``fsync=off`` like the tests, see corecall_testing.pg_server)."""
    from corecall_testing.pg_server import PgServer

    server = PgServer().start()
    server.bench_dsn = server.create_database("corecall_bench")
    out = subprocess.run(
        [str(server.bindir / "postgres"), "--version"], capture_output=True, text=True
    )
    server.version = out.stdout.strip() or "PostgreSQL"
    return server


# ------------------------------------------------------------------------------ 1. throughput


async def corecall_burst(cc: Corecall, n: int, *, driver_only: bool = False) -> float:
    """N calls at once through ``place()``, or with ``driver_only`` straight into
    ``driver.originate()`` with the CallManager state machine as the progress callback (the
    call records are made before the clock starts)."""
    await cc.start()
    try:
        cc.connected_at.clear()
        if driver_only:
            trunk = cc.app.trunk("main")
            requests = []
            for i in range(n):
                req = OriginateRequest(
                    call_id=uuid.uuid4().hex, agent_phone=agent_number(i),
                    target=target_number(i), caller_id=CALLER_ID, trunk=trunk,
                    agent_ring_timeout=10, target_ring_timeout=10,
                    confirm=cc.app.routes()["M"].confirm,
                )  # fmt: skip
                record = CallRecord(
                    id=req.call_id, agent_id=1 + i, agent_phone=req.agent_phone,
                    target=req.target, route_code="M", trunk="main", caller_id=CALLER_ID,
                )  # fmt: skip
                cc.manager._track(cc.store.create_call(record))
                requests.append(req)
            await asyncio.sleep(0.05)  # let the writer settle before the clock starts
            t0 = time.perf_counter()
            progress = cc.manager.progress
            for req in requests:
                progress(req.call_id, CallState.DIALING_AGENT)
            await asyncio.gather(*(cc.driver.originate(req, progress) for req in requests))
            ids = {req.call_id for req in requests}
        else:
            t0 = time.perf_counter()
            calls = await asyncio.gather(
                *(cc.manager.place(1 + i, target_number(i)) for i in range(n))
            )
            ids = {c.id for c in calls}
        return await burst_outcome(cc, ids, t0)
    finally:
        await cc.stop()


def tracked_call(cc: Corecall, call_id: str) -> TrackedCall | None:
    """What the driver still knows about a call (None: it stopped tracking it)."""
    for link in cc.driver.links.values() if cc.driver is not None else ():
        call = link.tracker.get(call_id)
        if call is not None:
            return call
    return None


@attrs.frozen
class Burst:
    """One burst: bridged calls per second over the calls that connected, and every call
    that did not, with why (``failed``: ended on record with that reason and detail;
    ``stuck``: neither connected nor ended when the benchmark gave up on it)."""

    rate: float
    calls: int
    failed: tuple[tuple[str, str], ...] = ()
    stuck: tuple[str, ...] = ()


async def burst_outcome(cc: Corecall, ids: set[str], t0: float, limit: float = 60) -> Burst:
    """Wait until every call of the burst has connected or ended (bounded), then measure."""
    deadline = time.perf_counter() + limit
    while True:
        open_ = ids - cc.connected_at.keys() - cc.ended_unconnected.keys()
        if not open_ or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.005)
    stuck = []
    for cid in sorted(open_):
        live = cc.manager._live.get(cid)
        tracked = tracked_call(cc, cid)
        stuck.append(
            f"{cid}: state {live.state.value if live else 'gone'}, driver "
            f"{tracked.state.value if tracked else 'not tracking'}"
        )
    failed = tuple(cc.ended_unconnected[c] for c in sorted(ids & cc.ended_unconnected.keys()))
    for why in failed:
        log(f"    a call ended without connecting: {why[0]} ({why[1]})")
    for line in stuck:
        log(f"    a call is STUCK (neither connected nor ended after {limit:g} s): {line}")
    connected = [cc.connected_at[i] for i in ids if i in cc.connected_at]
    rate = len(connected) / (max(connected) - t0) if connected else 0.0
    if not await cc.manager.wait_all_final(30):
        for cid, rec in cc.manager._live.items():
            tracked = tracked_call(cc, cid)
            log(f"    call {cid} did not end within 30 s of the burst: {rec.state.value}, "
                f"driver {tracked.state.value if tracked else 'not tracking'}")  # fmt: skip
    return Burst(rate, len(ids), failed, tuple(stuck))


def plural(n: int, word: str) -> str:
    """``1 round``, ``5 rounds``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def originate_action(call_id: str, agent: str, target: str, confirm: str = "key") -> dict:
    """The driver's own Originate (its one builder), for the bare panoramisk baseline."""
    return originate_headers(
        call_id=call_id, agent=agent, target=target, endpoint=ENDPOINT, caller_id=CALLER_ID,
        agent_ring_timeout=10, target_ring_timeout=10, confirm=confirm, action_id=False,
    )  # fmt: skip


async def panoramisk_burst(lab: labmod.Lab, n: int, confirm: str = "key") -> Burst:
    manager = Manager(
        host=lab.ami_host, port=lab.ami_port, username=lab.ami_user, secret=lab.ami_secret,
        loop=asyncio.get_running_loop(), ping_delay=3600, reconnect_timeout=3600,
    )  # fmt: skip
    bridged: dict[str, float] = {}
    hung_up: set[str] = set()

    def on_bridge(_m, event):
        if event.get("Uniqueid") == event.get("Linkedid"):
            bridged.setdefault(event["Linkedid"], time.perf_counter())

    def on_hangup(_m, event):
        if event.get("Uniqueid") == event.get("Linkedid"):
            hung_up.add(event["Linkedid"])

    manager.register_event("BridgeEnter", on_bridge)
    manager.register_event("Hangup", on_hangup)
    booted = asyncio.get_running_loop().create_future()
    manager.register_event("FullyBooted", lambda *_: booted.done() or booted.set_result(True))
    await manager.connect()
    await asyncio.wait_for(booted, 10)
    try:
        ids = [uuid.uuid4().hex for _ in range(n)]
        keys = {f"{i}-a" for i in ids}
        t0 = time.perf_counter()
        futures = [
            manager.send_action(originate_action(cid, agent_number(i), target_number(i), confirm))
            for i, cid in enumerate(ids)
        ]
        deadline = time.perf_counter() + 60
        while True:
            if not keys - bridged.keys() - hung_up or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.005)
        failed = tuple(("hung up unbridged", k) for k in sorted(keys & hung_up - bridged.keys()))
        stuck = tuple(sorted(keys - bridged.keys() - hung_up))
        for why in failed + tuple(("STUCK", k) for k in stuck):
            log(f"    a bare panoramisk call did not bridge: {why[0]} ({why[1]})")
        done = [bridged[k] for k in keys if k in bridged]
        rate = len(done) / (max(done) - t0) if done else 0.0
        while not keys <= hung_up:  # let the calls end before the next burst
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.02)
        await asyncio.gather(*futures, return_exceptions=True)
        return Burst(rate, n, failed, stuck)
    finally:
        manager.close()


# ------------------------------------------------------------------------------ 2. latency

_placed_at: contextvars.ContextVar[float] = contextvars.ContextVar("placed_at")
#: The event loop thread's CPU time (time.thread_time) when place() was called: the part of
#: place → write spent on the CPU, the rest being waits (the machine's other work).
_placed_cpu: contextvars.ContextVar[float] = contextvars.ContextVar("placed_cpu")
_originate_at: contextvars.ContextVar[float] = contextvars.ContextVar("originate_at")


async def latency_run(cc: Corecall, rate: float, seconds: float) -> tuple[list, list, list, int]:
    """place() at ``rate`` calls/s for ``seconds``: place → write and originate → write
    (seconds), the loop thread's CPU time over place → write, and how many call records
    went through the store thread (``create_call_nowait`` could not write them at once)."""
    await cc.start()
    place_to_write: list[float] = []
    originate_to_write: list[float] = []
    place_cpu: list[float] = []
    fallbacks = 0
    real_create = cc.store.create_call_nowait

    def create_call_nowait(call, **kwargs):
        nonlocal fallbacks
        written = real_create(call, **kwargs)
        fallbacks += written is None
        return written

    cc.store.create_call_nowait = create_call_nowait
    link = cc.driver.links["pbx1"]

    def observer(_call_id: str) -> None:
        now = time.perf_counter()
        place_to_write.append(now - _placed_at.get())
        place_cpu.append(time.thread_time() - _placed_cpu.get())
        originate_to_write.append(now - _originate_at.get())

    real_originate = cc.driver.originate

    async def originate(request, progress):
        _originate_at.set(time.perf_counter())
        return await real_originate(request, progress)

    cc.driver.originate = originate
    link.write_observer = observer
    try:
        n = int(rate * seconds)
        interval = 1.0 / rate
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []

        async def one(i: int) -> None:
            _placed_cpu.set(time.thread_time())
            _placed_at.set(time.perf_counter())
            await cc.manager.place(1 + (i % cc.agents), target_number(i % cc.agents))

        for i in range(n):
            delay = start + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        if not await cc.manager.wait_all_final(30):
            raise RuntimeError("calls did not end")
        return place_to_write, originate_to_write, place_cpu, fallbacks
    finally:
        del cc.store.create_call_nowait
        link.write_observer = None
        cc.driver.originate = real_originate
        await cc.stop()


# ------------------------------------------------------------------------------ 3. ingest


class _Transport:
    def write(self, data) -> None:
        pass

    def close(self) -> None:
        pass

    def get_extra_info(self, *_a, **_k):
        return None


class _Link:
    """The bits of AmiLink the protocol touches."""

    def __init__(self, tracker: CallTracker) -> None:
        self.tracker = tracker
        self.originates: dict = {}
        self.asterisk_shutting_down = False
        self.asterisk_restarting = False

    def fully_booted(self) -> None:
        pass


def chunks_of(data: bytes, size: int = 65536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def count_events(data: bytes) -> int:
    return len(re.findall(rb"(?:^|\r\n\r\n)Event: ", data))


def ingest_corecall(chunks: list[bytes], call_ids: list[str], progress) -> tuple[float, int]:
    tracker = CallTracker()
    for cid in call_ids:
        tracker.track(TrackedCall(cid, progress))
    proto = AmiProtocol(_Link(tracker))
    proto.connection_made(_Transport())
    gc.disable()
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.data_received(chunk)
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed, tracker.events_seen


def ingest_panoramisk(chunks: list[bytes]) -> float:
    manager = Manager(loop=asyncio.get_event_loop())  # no handlers registered
    proto = AMIProtocol()
    proto.connection_made(_Transport())
    proto.factory = manager
    proto.encoding = "utf8"
    gc.disable()
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.data_received(chunk)
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed


def state_machine_progress(workdir: Path, call_ids: list[str]):
    """CallManager.progress (the core state machine, persistence queued) for these calls."""
    app = App(parse_config({"data_dir": str(workdir / "sm"), "store": {"backend": "sqlite",
              "sqlite_path": str(workdir / "sm.sqlite3")}}, path=None))  # fmt: skip
    manager = app.call_manager({})
    manager._writes = asyncio.Queue()  # transitions pile up; the writer is not running

    def reset() -> None:
        manager._writes = asyncio.Queue()
        for cid in call_ids:
            manager._live[cid] = CallRecord(
                id=cid, agent_id=1, agent_phone="+12125551000", target="+13125551000",
                route_code="M", trunk="main", caller_id=CALLER_ID,
                state=CallState.DIALING_AGENT,
            )  # fmt: skip

    return app, manager, reset


# ------------------------------------------------------------------------------ main


async def run(opts) -> dict:
    results: dict = {"rounds": opts.rounds}
    events_path, data = Path(opts.events), opts.events_data
    log("starting the lab ...")
    lab = await asyncio.to_thread(start_lab)
    results["asterisk"] = labmod.asterisk_version(lab.root)
    workdir = Path(tempfile.mkdtemp(prefix="corecall-bench-"))
    pg = None
    try:
        agents = max(opts.burst, 50)
        variants = {
            "sqlite": Corecall(lab, workdir, agents, "sqlite"),
            "memory": Corecall(lab, workdir, agents, "memory"),
        }
        if opts.postgres:
            log("starting PostgreSQL ...")
            pg = await asyncio.to_thread(start_postgres)
            results["postgres"] = pg.version
            variants["postgres"] = Corecall(lab, workdir, agents, "postgres", dsn=pg.bench_dsn)
        # Warm up every path (connections, imports, Asterisk's first-call costs).
        for cc in variants.values():
            await corecall_burst(cc, 20)
        await corecall_burst(variants["memory"], 20, driver_only=True)
        await panoramisk_burst(lab, 20)
        # As `corecall run` does once it is ready to serve: what start-up made is frozen,
        # out of the collector's way (corecall/heap.py); a full collection of this process
        # otherwise took 53-61 ms inside a place() now and then (issue 11).
        freeze_startup_heap()

        # driver: driver.originate() + CallManager state machine (in-memory store);
        # memory / sqlite / postgres: the whole place() path with that store; raw: bare
        # panoramisk.
        kinds = ["driver", "memory", "sqlite", *(["postgres"] if pg else []), "raw"]
        rates: dict[str, list[float]] = {k: [] for k in kinds}
        ratios: dict[str, list[float]] = {k: [] for k in kinds if k != "raw"}
        unconnected: list[tuple] = results.setdefault("unconnected", [])
        for r in range(opts.rounds):
            got = {}
            shift = r % len(kinds)
            for which in kinds[shift:] + kinds[:shift]:  # rotate the order every round
                if which == "raw":
                    got[which] = await panoramisk_burst(lab, opts.burst)
                elif which == "driver":
                    got[which] = await corecall_burst(
                        variants["memory"], opts.burst, driver_only=True
                    )
                else:
                    got[which] = await corecall_burst(variants[which], opts.burst)
                await asyncio.sleep(0.5)
            for k in kinds:
                rates[k].append(got[k].rate)
                for why in got[k].failed:
                    unconnected.append((k, r + 1, "ended", *why))
                for line in got[k].stuck:
                    unconnected.append((k, r + 1, "stuck", line, ""))
            for k in ratios:
                ratios[k].append(got[k].rate / got["raw"].rate)
            log(f"  round {r + 1}: " + ", ".join(f"{k} {got[k].rate:.0f}" for k in kinds)
                + " calls/s")  # fmt: skip
        results["throughput"] = {
            "panoramisk": statistics.median(rates["raw"]),
            **{k: statistics.median(rates[k]) for k in ratios},
            **{f"{k}_ratio": statistics.median(v) for k, v in ratios.items()},
            **{f"{k}_ratios": v for k, v in ratios.items()},
        }

        # Latency: every variant once per round, in rotating order, so each round's
        # place() p99 can be compared with the driver's own p99 measured beside it.
        names = list(variants)
        per: dict[str, dict[str, list[float]]] = {
            n: {
                "p50": [],
                "p99": [],
                "max": [],
                "d50": [],
                "d99": [],
                "c50": [],
                "c99": [],
                "hops": [],
            }
            for n in names
        }
        for r in range(opts.rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                place, orig, cpu, hops = await latency_run(variants[name], opts.rate, opts.seconds)
                got = per[name]
                got["p50"].append(pct(place, 50) * 1000)
                got["p99"].append(pct(place, 99) * 1000)
                got["max"].append(max(place) * 1000)
                got["d50"].append(pct(orig, 50) * 1000)
                got["d99"].append(pct(orig, 99) * 1000)
                got["c50"].append(pct(cpu, 50) * 1000)
                got["c99"].append(pct(cpu, 99) * 1000)
                got["hops"].append(hops)
                log(f"  latency ({name}) round {r + 1}: {len(place)} calls, place->write "
                    f"p50 {got['p50'][-1]:.2f} ms p99 {got['p99'][-1]:.2f} ms max "
                    f"{got['max'][-1]:.2f} ms; originate->write p99 "
                    f"{got['d99'][-1]:.3f} ms")  # fmt: skip
        driver_p99s = per["memory"]["d99"]  # driver.originate() alone (store in memory)
        results["latency"] = {}
        for name, got in per.items():
            over_driver = [p / d for p, d in zip(got["p99"], driver_p99s, strict=True)]
            results["latency"][name] = {
                "calls": int(opts.rate * opts.seconds), "rate": opts.rate,
                "p50": statistics.median(got["p50"]), "p99": statistics.median(got["p99"]),
                "max": statistics.median(got["max"]),
                "driver_p50": statistics.median(got["d50"]),
                "driver_p99": statistics.median(got["d99"]), "p99s": got["p99"],
                "cpu_p50": statistics.median(got["c50"]), "cpu_p99": statistics.median(got["c99"]),
                "record_hops": got["hops"],
                "p99_over_driver": statistics.median(over_driver),
                "p99_over_driver_rounds": over_driver,
            }  # fmt: skip
        for cc in variants.values():
            cc.close()
    finally:
        thaw_startup_heap()
        await asyncio.to_thread(lab.stop)
        if pg is not None:
            await asyncio.to_thread(pg.stop)

    # 3. ingest (no Asterisk needed)
    chunks = chunks_of(data)
    events = count_events(data)
    call_ids = sorted({m.decode() for m in re.findall(rb"Linkedid: ([0-9a-f]{32})-a\r\n", data)})
    seen = []

    def noop(*_a) -> None:
        seen.append(1)

    app, sm, reset = state_machine_progress(workdir, call_ids)
    rate_drv, rate_sm, rate_pan, ratio_drv, ratio_sm = [], [], [], [], []
    tracked_events = 0
    for _ in range(opts.rounds):
        elapsed_pan = ingest_panoramisk(chunks)
        elapsed_drv, tracked_events = ingest_corecall(chunks, call_ids, noop)
        reset()
        elapsed_sm, _ = ingest_corecall(chunks, call_ids, sm.progress)
        rate_pan.append(events / elapsed_pan)
        rate_drv.append(events / elapsed_drv)
        rate_sm.append(events / elapsed_sm)
        ratio_drv.append(elapsed_pan / elapsed_drv)
        ratio_sm.append(elapsed_pan / elapsed_sm)
    app.close()
    results["ingest"] = {
        "file": str(events_path.relative_to(REPO)) if events_path.is_relative_to(REPO)
        else str(events_path),
        "bytes": len(data), "events": events, "calls": len(call_ids),
        "tracked_events": tracked_events, "transitions": len(seen) // opts.rounds,
        "driver": statistics.median(rate_drv), "state_machine": statistics.median(rate_sm),
        "panoramisk": statistics.median(rate_pan),
        "driver_ratio": statistics.median(ratio_drv), "sm_ratio": statistics.median(ratio_sm),
    }  # fmt: skip
    return results


def report(results: dict, command: str) -> str:
    t, ing = results["throughput"], results["ingest"]
    lat, mem = results["latency"]["sqlite"], results["latency"]["memory"]
    pgl = results["latency"].get("postgres")
    ok = lambda c: "met" if c else "**not met**"  # noqa: E731
    us = lambda ms: f"{ms * 1000:.0f} µs"  # noqa: E731
    rounds = lambda xs, unit="": ", ".join(f"{x:.2f}" for x in xs) + unit  # noqa: E731
    load = results["load"]
    lines = [
        "## AMI driver and the whole /call path (issues 3 and 11)",
        "",
        f"Measured {_dt.date.today().isoformat()} on {os.cpu_count()} cores (Asterisk, the "
        f"sipp carriers, PostgreSQL and corecall share them), Python "
        f"{platform.python_version()}, {results['asterisk']} (the lab)"
        + (f", {results['postgres']}" if "postgres" in results else "")
        + f". Load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end: "
        "other work ran on the machine, so compare ratios taken within one round, not "
        f"absolute rates. Medians of {plural(results['rounds'], 'round')}; the variants run "
        "back to back in rotating order. Command:",
        "",
        "```",
        command,
        "```",
        "",
        "The same calls are placed several ways and compared with a bare panoramisk script "
        "sending the same Originates (`Async: true`, preset `ChannelId`, same variables):",
        "",
        "* **driver + state machine**: `AsteriskAmiDriver.originate()` with the CallManager's "
        "state machine (`CallManager.progress`) as its progress callback; the call records "
        "are made before the clock starts (store in memory).",
        "* **place(), store in memory**: the whole `/call` path, `CallManager.place()` (agent "
        "and limits read from the store, number policy, policy plugins, call record) then "
        "the driver, with an in-memory store.",
        "* **place(), SQLite** / **place(), PostgreSQL**: the same with the real store, as "
        "deployed (PostgreSQL: a real server started as the tests start it).",
        "",
        f"Bridged calls per second, bursts of {results['burst']} calls (the clock stops when "
        "the last call of the burst is bridged):",
        "",
        "| Path | calls/s | ratio to panoramisk | Target | |",
        "|---|---:|---:|---:|:---:|",
        f"| bare panoramisk | {t['panoramisk']:.0f} | 1 | | |",
        f"| driver + state machine | {t['driver']:.0f} | {t['driver_ratio']:.2f} | ≥ 0.9 | "
        f"{ok(t['driver_ratio'] >= 0.9)} |",
        f"| place(), store in memory | {t['memory']:.0f} | {t['memory_ratio']:.2f} | | |",
        f"| place(), SQLite | {t['sqlite']:.0f} | {t['sqlite_ratio']:.2f} | ≥ 0.9 | "
        f"{ok(t['sqlite_ratio'] >= 0.9)} |",
    ]
    if "postgres" in t:
        lines.append(
            f"| place(), PostgreSQL | {t['postgres']:.0f} | {t['postgres_ratio']:.2f} | ≥ 0.8 "
            f"| {ok(t['postgres_ratio'] >= 0.8)} |"
        )
    lost = results.get("unconnected", [])
    lines += [
        "",
        f"Calls of the bursts that did not connect: {len(lost)}"
        + (" (each is listed by the benchmark as it happens: ended with its reason on "
           "record, or stuck)." if lost else ".")
        + " A call that ends without connecting, or never ends, is reported, not fatal.",
    ]  # fmt: skip
    for kind, rnd, how, why, detail in lost[:20]:
        lines.append(f"* {kind}, round {rnd}: {how}: {why}" + (f" ({detail})" if detail else ""))
    lines += [
        "",
        f"From placing a call to its Originate bytes handed to the socket, {lat['calls']} "
        f"calls at {lat['rate']:g} calls/s (each lasts ~1 s, so ~{lat['rate']:g} are live "
        "at any moment and their events are processed meanwhile). The target compares each "
        "round's place() p99 with `driver.originate()`'s own p99 in the same round:",
        "",
        "| From | p50 | p99 | max | p99 / driver's p99 | Target | |",
        "|---|---:|---:|---:|---:|---:|:---:|",
        f"| `driver.originate()` (store in memory) | {us(mem['driver_p50'])} | "
        f"{us(mem['driver_p99'])} | | 1 | | |",
        f"| `place()`, store in memory | {mem['p50']:.2f} ms | {mem['p99']:.2f} ms | "
        f"{mem['max']:.2f} ms | {mem['p99_over_driver']:.1f}× | | |",
        f"| `place()`, SQLite | {lat['p50']:.2f} ms | {lat['p99']:.2f} ms | "
        f"{lat['max']:.2f} ms | {lat['p99_over_driver']:.1f}× | ≤ 4× | "
        f"{ok(lat['p99_over_driver'] <= 4)} |",
    ]
    if pgl:
        lines.append(
            f"| `place()`, PostgreSQL | {pgl['p50']:.2f} ms | {pgl['p99']:.2f} ms | "
            f"{pgl['max']:.2f} ms | {pgl['p99_over_driver']:.1f}× | | |"
        )
    lines += [
        f"| `driver.originate()`, while the SQLite writer runs | {us(lat['driver_p50'])} | "
        f"{us(lat['driver_p99'])} | | | | |",
        "",
        "Of each place() → write, the event loop thread's own CPU time (`time.thread_time`, "
        f"p50 / p99): SQLite {lat['cpu_p50']:.2f} / {lat['cpu_p99']:.2f} ms, store in memory "
        f"{mem['cpu_p50']:.2f} / {mem['cpu_p99']:.2f} ms"
        + (f", PostgreSQL {pgl['cpu_p50']:.2f} / {pgl['cpu_p99']:.2f} ms" if pgl else "")
        + ". Call records that found SQLite's write lock taken and went through the store "
        f"thread, per round: {', '.join(str(n) for n in lat['record_hops'])} of "
        f"{lat['calls']}. Otherwise nothing in place() waits before the Originate on SQLite "
        "(no await suspends, no lock, no thread hop): the rest of the wall time is time the "
        "thread was not running, the machine's other work on its 2 cores (Asterisk, sipp, "
        "other processes) preempting it.",
        "",
        "| Event ingest (replay) | events/s | Target | |",
        "|---|---:|---:|:---:|",
        f"| Driver: parse, correlate by Linkedid, map to states | {ing['driver']:,.0f} | "
        f"≥ 50,000 | {ok(ing['driver'] >= 50000)} |",
        f"| Driver + CallManager state machine (transitions queued for the writer) | "
        f"{ing['state_machine']:,.0f} | ≥ 50,000 | {ok(ing['state_machine'] >= 50000)} |",
        f"| panoramisk's own parsing of the same bytes, no handlers | "
        f"{ing['panoramisk']:,.0f} | | |",
        f"| Ratio driver + state machine / panoramisk (driver alone) | "
        f"{ing['sm_ratio']:.2f} ({ing['driver_ratio']:.2f}) | ≥ 0.5 | "
        f"{ok(ing['sm_ratio'] >= 0.5)} |",
        "",
        f"The replay feeds `{ing['file']}` ({ing['bytes']:,} bytes, {ing['events']:,} "
        f"events of {ing['calls']} calls, every call tracked: {ing['tracked_events']:,} events "
        f"matched a live call, {ing['transitions']:,} state changes) in 64 KiB chunks, as a "
        "socket delivers them.",
        "",
        "Notes. Each lab call lasts about 1 s after the target answers (the target's carrier "
        "hangs up; the agent's phone holds until Asterisk hangs it up, as a person would): a "
        "burst measures how fast calls are set up and bridged. What the `place()` rows add "
        "over the driver is the core's own work before each Originate: one store read (the "
        "agent, re-read on every request, and their calls in the last minute, one "
        "statement; with SQLite on the event loop itself, ~50 µs, on the connection the "
        "call records are written on, which never waits for a lock, else on the store "
        "thread), the number "
        "policy and policy plugins, and the call record, written before the Originate; "
        "under a burst the records waiting at that moment are written in one transaction "
        "(`Store.create_calls`), ahead of the call writer's work. Every other store call "
        "runs on one `StoreExecutor` thread, whose results reach the event loop in one "
        "wake-up per batch; the call writer saves each call's newest state with one UPDATE "
        "per call per batch, with SQLite on the event loop too (`Store.save_progress_nowait`, "
        "at most 32 rows per transaction, the loop free between them), so a call record "
        "never finds SQLite's lock held by the writer; the store thread checkpoints the WAL "
        "about once a second. PostgreSQL has no write or read on the loop: the agent read, "
        "the policy plugins' reads (the do-not-call list) and the records are store-thread "
        "trips; a pooled connection used in the last second is reused without peewee's "
        "`SELECT 1` (its socket shows a closed one), the call writer waits 20 ms before "
        "each batch so that a burst's states share one `UPDATE ... FROM (VALUES ...)`, and "
        "those updates are in place (HOT: schema v6 left no index on the state). "
        f"Per-round ratios to panoramisk: driver {rounds(t['driver_ratios'])}; place()/memory "
        f"{rounds(t['memory_ratios'])}; place()/SQLite {rounds(t['sqlite_ratios'])}"
        + (f"; place()/PostgreSQL {rounds(t['postgres_ratios'])}" if "postgres" in t else "")
        + f". Per-round p99 of place() over the driver's: SQLite "
        f"{rounds(lat['p99_over_driver_rounds'])}"
        + (f"; PostgreSQL {rounds(pgl['p99_over_driver_rounds'])}" if pgl else "")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burst", type=int, default=200, help="calls per throughput burst")
    parser.add_argument("--rate", type=float, default=50.0, help="calls/s for the latency run")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of a latency run")
    parser.add_argument("--events", default=str(EVENTS_FILE))
    parser.add_argument(
        "--no-postgres", dest="postgres", action="store_false",
        help="skip the place(), PostgreSQL rows (they need PostgreSQL's server binaries)",
    )  # fmt: skip
    parser.add_argument("--write-docs", action="store_true")
    opts = parser.parse_args(argv)
    events = Path(opts.events)
    if not events.exists():
        parser.error(f"{events} not found: record it with corecall-lab-record --only stream")
    opts.events_data = events.read_bytes()
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()[0]
    results = asyncio.run(run(opts))
    results["burst"] = opts.burst
    results["load"] = (load_before, os.getloadavg()[0])
    command = ".venv/bin/python bench/ami_bench.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    section = report(results, command.strip())
    print(section)
    if opts.write_docs:
        write_section(DOCS, DOCS_SECTION, section)
        log(f"wrote {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
