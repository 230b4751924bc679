"""Fault soak: many agents place calls for minutes while faults are injected on a schedule.

Everything is real except Telegram's servers: the Asterisk lab (Asterisk 22 and one sipp
carrier per trunk, which logs every INVITE), corecall's CallManager with the AMI trunk driver,
the store (an SQLite file, or a real PostgreSQL server started for the run), and the bot's
Conversation behind a real Telethon client whose network sender is the offline harness (the
harness answers like Telegram, FloodWait included). Between corecall and Asterisk's AMI port
sits a TCP proxy: the seam for cutting the AMI connection, also with an Originate in flight.

Faults, at fixed fractions of the run (see :data:`SCHEDULE`): the AMI connection cut (four
times, twice with an Originate in flight), Asterisk restarted, Asterisk killed (SIGKILL) and
started again, the store unavailable (SQLite: another process holds the write lock for 3 s;
PostgreSQL: the server restarts), a Telegram FloodWait storm (8 s in which most requests are
answered FLOOD_WAIT_1..3).

Each agent places one call at a time to a number never dialed before in the run (the
carriers answer, talk 1 s and hang up; every 10th agent's own phone is busy and every 10th
rings 2 s first), waits for the end, and calls again. After the schedule, the run drains
(every call must reach a final state) and prints:

* calls requested, dialed (Originates written, by distinct call), finished by end reason;
* **lost**: a call on record with no final state after the drain, or a /call that got no
  answer at all;
* **duplicated**: a call whose Originate was written twice, or whose agent or target leg
  reached a carrier twice (two INVITEs for one call);
* agents told the wrong outcome: the status message's last text differs from the final
  record (e.g. a final edit lost in a FloodWait storm);
* RSS of this process at the first fault (imports, caches and pools warm) and after the
  drain; the harness's and the proxy's recordings are folded into counts every second so
  they don't count as corecall's memory.

Run it with ``bench/soak.py`` (figures in docs/benchmarks.md). Targets: 0 lost, 0
duplicated, RSS growth under 10 %. ``tests/lab/test_soak.py`` runs a one-minute version with
a few faults in the suite.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import attrs
from telethon import errors
from telethon.tl import functions

from corecall.app import App
from corecall.calls import CallManager
from corecall.config import parse_config
from corecall.conversation import Conversation, UserRef, texts
from corecall.domain import EndReason
from corecall.telegram import attach_handlers
from corecall_testing import config_dict
from corecall_testing.ami import AmiProxy, ami_sections, server_of
from corecall_testing.lab import make_lab
from corecall_testing.telegram_harness import OfflineTelegram

#: (fraction of the run, fault)
SCHEDULE = (
    (0.10, "ami_cut"),
    (0.18, "ami_cut_in_flight"),
    (0.26, "store_unavailable"),
    (0.36, "flood_wait_storm"),
    (0.46, "asterisk_restart"),
    (0.58, "ami_cut"),
    (0.66, "asterisk_kill"),
    (0.76, "ami_cut_in_flight"),
    (0.84, "store_unavailable"),
    (0.90, "ami_cut"),
)
SHORT_SCHEDULE = (
    (0.15, "ami_cut"),
    (0.30, "ami_cut_in_flight"),
    (0.45, "store_unavailable"),
    (0.60, "flood_wait_storm"),
    (0.75, "asterisk_restart"),
)
#: Last four digits the carriers treat specially (docs/asterisk-lab.md): not used as targets.
SPECIAL = {"0486", "0408", "0403", "0503", "0202", "0999"}


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@attrs.define
class Report:
    backend: str
    minutes: float
    agents: int
    requested: int = 0
    dialed: int = 0
    originates_written: int = 0
    finished: dict = attrs.field(factory=dict)
    refused: dict = attrs.field(factory=dict)
    lost: int = 0
    lost_ids: list = attrs.field(factory=list)
    duplicated: int = 0
    duplicated_what: list = attrs.field(factory=list)
    told_wrong: int = 0
    told_wrong_what: list = attrs.field(factory=list)
    faults: list = attrs.field(factory=list)
    rss_start_kib: int = 0
    rss_end_kib: int = 0
    errors_logged: int = 0
    errors_what: list = attrs.field(factory=list)
    seconds: float = 0.0

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kib - self.rss_start_kib) / max(self.rss_start_kib, 1)

    def lines(self) -> list[str]:
        finished = ", ".join(f"{k} {v}" for k, v in sorted(self.finished.items())) or "none"
        refused = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "none"
        return [
            f"backend {self.backend}, {self.agents} agents, {self.minutes:g} min of calls "
            f"({self.seconds:.0f} s with the drain)",
            f"faults: {', '.join(self.faults)}",
            f"calls requested: {self.requested}",
            f"dialed: {self.dialed} (Originates written: {self.originates_written})",
            f"finished: {sum(self.finished.values())} ({finished})",
            f"not placed: {sum(self.refused.values())} ({refused})",
            f"lost (no final state): {self.lost}",
            f"duplicated (two INVITEs or Originates for one call): {self.duplicated}",
            f"agents told the wrong outcome: {self.told_wrong}",
            f"RSS: {self.rss_start_kib / 1024:.1f} MiB at start, {self.rss_end_kib / 1024:.1f} "
            f"MiB at end ({self.rss_growth:+.1%})",
            f"errors logged (expected while faults last): {self.errors_logged}",
        ]


class Soak:
    def __init__(self, *, backend: str, minutes: float, agents: int, schedule, seed: int = 7):
        self.backend = backend
        self.duration = minutes * 60
        self.n_agents = agents
        self.schedule = schedule
        self.random = random.Random(seed)
        self.report = Report(backend=backend, minutes=minutes, agents=agents)
        self._targets = self._target_numbers()
        self._flood_until = 0.0
        self.tmp = Path(tempfile.mkdtemp(prefix="corecall-soak-"))
        self.pg = None
        self.sqlite_path = self.tmp / "corecall.sqlite3"
        self.agent_phones: dict[int, str] = {}
        self.requested: list[tuple[int, str]] = []  # (agent, target)
        self.last_text: dict[str, str] = {}  # target -> the status text Telegram accepted last
        self.replies: list[str] = []  # other messages sent (refusals, errors)
        self.originates: collections.Counter = collections.Counter()  # ActionID -> writes

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _target_numbers():
        for n in itertools.count(1):
            suffix = f"{n % 10000:04d}"
            if suffix in SPECIAL:
                continue
            yield f"+1212{7000000 + n:07d}"

    @staticmethod
    def _agent_phone(k: int) -> str:
        if k % 10 == 3:
            return f"+1212{550 + k % 40:03d}0486"  # the agent's phone is busy
        if k % 10 == 7:
            return f"+1212{600 + k % 40:03d}0202"  # rings 2 s before answering
        return f"+1212556{k:04d}"

    async def run(self) -> Report:
        started = time.monotonic()
        self.lab = make_lab(f"soak-{os.getpid()}", rtp_ports=(30000, 39999))
        await asyncio.to_thread(self.lab.start)
        try:
            async with AmiProxy(self.lab.ami_host, self.lab.ami_port) as proxy:
                self.proxy = proxy
                await self._with_store()
        finally:
            await asyncio.to_thread(self.lab.stop)
            if self.pg is not None:
                self.pg.stop()
        self.report.seconds = time.monotonic() - started
        return self.report

    async def _with_store(self) -> None:
        if self.backend == "postgres":
            from corecall_testing.pg_server import PgServer

            self.pg = PgServer().start()
            store = {"backend": "postgres"}
            os.environ["CORECALL_POSTGRES_DSN"] = self.pg.create_database("soak")
        else:
            store = {"backend": "sqlite", "sqlite_path": str(self.sqlite_path)}
        sections = ami_sections(
            {
                "pbx1": server_of(
                    self.lab, port=self.proxy.port, ping_interval=1.0, action_timeout=2.0
                )
            },
            agent_ring=4,
            target_ring=4,
        )
        raw = config_dict(self.tmp, **sections)
        raw["store"] = store  # the whole table: each store plugin takes its own keys
        raw["bot"]["super_admins"] = [1000]
        config = parse_config(raw, path=None)
        app = App(config)
        try:
            await self._with_app(app)
        finally:
            app.close()

    async def _with_app(self, app: App) -> None:
        calls = CallManager(
            config=app.config, plugins=app.plugins, store=app.store, routes=app.routes,
            drivers=app.build_drivers(),
        )  # fmt: skip
        await calls.start()
        conversation = Conversation(app, calls, edit_interval=1.0)
        client = OfflineTelegram()
        attach_handlers(client, conversation)
        self.client, self.calls, self.app = client, calls, app
        for name in ("SendMessageRequest", "EditMessageRequest"):
            kind = getattr(functions.messages, name)
            client.responders[kind] = self._maybe_flood
        for k in range(self.n_agents):
            agent_id = 2001 + k
            phone = self._agent_phone(k)
            self.agent_phones[agent_id] = phone
            app.store.add_agent(agent_id, phone, f"Agent {k}", authorized=True, actor="soak")
            app.store.set_route(agent_id, "M" if k % 2 == 0 else "D", actor="soak")
            client.user(agent_id, f"Agent{k}")
        try:
            await self._calls_and_faults(conversation)
            await self._drain(conversation)
            self._digest()
            self.report.rss_end_kib = rss_kib()
            self._count(client)
        finally:
            await conversation.shutdown(timeout=5, announce=False)
            await calls.stop(drain_timeout=10)
            logged = client.errors.take()
            self.report.errors_logged = len(logged)
            self.report.errors_what = sorted({r.getMessage()[:120] for r in logged})[:10]
            await client.aclose()

    # ------------------------------------------------------------------ traffic
    def _maybe_flood(self, request):
        if time.monotonic() < self._flood_until and self.random.random() < 0.8:
            raise errors.FloodWaitError(request, capture=self.random.randint(1, 3))
        return self.client.default_response(request)

    async def _agent(self, agent_id: int, conversation: Conversation, end: float) -> None:
        user = UserRef(agent_id, agent_id, first_name="Agent")
        await asyncio.sleep(self.random.random() * 2)
        while time.monotonic() < end:
            target = next(self._targets)
            self.requested.append((agent_id, target))
            self.report.requested += 1
            await conversation.handle_text(user, f"/call {target}")
            deadline = time.monotonic() + 120
            # Polls another component's state, bounded by the deadline.
            while self.calls.live_calls(agent_id) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5 + self.random.random())

    def _digest(self) -> None:
        """Fold what the harness and the proxy recorded into the counts and drop the
        recordings, so the RSS measured is corecall's, not the recorders'. Only requests
        Telegram accepted count as shown."""
        sender = self.client._sender
        for request, result in zip(sender.requests, sender.results, strict=True):
            message = getattr(request, "message", None)
            if result is None or not isinstance(message, str):
                continue  # refused (FloodWait): the person never saw it
            if message.startswith("📞 Call to "):
                target = message.split("\n", 1)[0].removeprefix("📞 Call to ")
                self.last_text[target] = message
            elif isinstance(request, functions.messages.SendMessageRequest):
                self.replies.append(message)
        sender.requests.clear()
        sender.results.clear()
        data = bytes(self.proxy.client_bytes)
        cut = data.rfind(b"\r\n\r\n") + 4 if b"\r\n\r\n" in data else 0
        for block in data[:cut].split(b"\r\n\r\n"):
            if b"Action: Originate" in block:
                match = re.search(rb"ActionID: (\S+)", block)
                if match:
                    self.originates[match.group(1)] += 1
        del self.proxy.client_bytes[:cut]

    async def _digest_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._digest()

    async def _calls_and_faults(self, conversation: Conversation) -> None:
        digest = asyncio.create_task(self._digest_loop(), name="soak-digest")
        try:
            await self._calls_and_faults_inner(conversation)
        finally:
            digest.cancel()
            await asyncio.gather(digest, return_exceptions=True)

    async def _calls_and_faults_inner(self, conversation: Conversation) -> None:
        start = time.monotonic()
        end = start + self.duration
        agents = [
            asyncio.create_task(self._agent(2001 + k, conversation, end), name=f"soak-agent-{k}")
            for k in range(self.n_agents)
        ]
        for fraction, fault in self.schedule:
            delay = start + fraction * self.duration - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.report.rss_start_kib:
                self._digest()
                self.report.rss_start_kib = rss_kib()  # at the first fault (warm)
            print(f"  {time.monotonic() - start:6.1f} s  fault: {fault}", flush=True)
            self.report.faults.append(fault)
            await getattr(self, f"_fault_{fault}")()
        await asyncio.gather(*agents)

    async def _drain(self, conversation: Conversation) -> None:
        deadline = time.monotonic() + 150
        while self.calls.live_calls() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        self._flood_until = 0.0
        await conversation.wait_idle(timeout=30)
        await asyncio.sleep(2)  # the call writer's last batch

    # ------------------------------------------------------------------ faults
    async def _fault_ami_cut(self) -> None:
        self.proxy.cut()

    async def _fault_ami_cut_in_flight(self) -> None:
        self.proxy.cut_on_originate = "forward"
        deadline = time.monotonic() + 10
        while self.proxy.cut_on_originate and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if self.proxy.cut_on_originate:  # no Originate came: cut anyway
            self.proxy.cut_on_originate = None
            self.proxy.cut()

    async def _fault_asterisk_restart(self) -> None:
        await asyncio.to_thread(self.lab.restart_asterisk)

    async def _fault_asterisk_kill(self) -> None:
        info = self.lab._procs.get("asterisk")
        if info:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info["pid"], signal.SIGKILL)
        await asyncio.sleep(3)
        self.lab._procs.pop("asterisk", None)
        await asyncio.to_thread(self.lab.start_asterisk)

    async def _fault_store_unavailable(self) -> None:
        if self.pg is not None:
            # The server's output goes to its log: pg_ctl's own pipes must close when it exits.
            data, log = str(self.pg.tmpdir / "data"), str(self.pg.tmpdir / "server.log")
            await asyncio.to_thread(
                self.pg._run, "pg_ctl", "-D", data, "-l", log, "-m", "fast", "-w", "restart"
            )
            return
        locker = (
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "time.sleep(3)\n"
            "c.execute('COMMIT')\n"
        )
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", locker,
                                                    str(self.sqlite_path))  # fmt: skip
        await proc.wait()

    async def _fault_flood_wait_storm(self) -> None:
        self._flood_until = time.monotonic() + 8

    # ------------------------------------------------------------------ counting
    def _count(self, client: OfflineTelegram) -> None:
        report = self.report
        records = self.app.store.recent_calls(None, 1_000_000)
        by_target = {r.target: r for r in records}
        routes = self.app.routes()
        # Originates written through the proxy, by ActionID (one per call).
        self._digest()
        actions = self.originates
        report.originates_written = sum(actions.values())
        report.dialed = len(actions)
        for action_id, count in actions.items():
            if count > 1:
                report.duplicated_what.append(f"Originate {action_id.decode()} x{count}")
        # INVITEs. The target leg's R-URI is the target (one per call). The agent leg's From
        # is the route's own caller ID (shared by every call), so agent legs are counted per
        # agent phone against that agent's calls that reached the dialing stage: more
        # INVITEs than calls means a call reached the agent's phone twice.
        agent_phones = set(self.agent_phones.values())
        agent_legs: collections.Counter = collections.Counter()
        target_legs: collections.Counter = collections.Counter()
        for carrier in self.lab.carriers:
            for ruri, _from_user, _sip_id in self.lab.invite_rows(carrier):
                phone = "+" + ruri.lstrip("+")
                if phone in agent_phones:
                    agent_legs[phone] += 1
                else:
                    target_legs[ruri] += 1
        placed = collections.Counter(
            r.agent_phone for r in records if r.dialing_agent_at is not None
        )
        for phone, count in agent_legs.items():
            if count > placed[phone]:
                report.duplicated_what.append(
                    f"agent leg for {phone}: {count} INVITEs for {placed[phone]} calls"
                )
        for number, count in target_legs.items():
            if count > 1:
                report.duplicated_what.append(f"target leg for {number}: {count} INVITEs")
        report.duplicated = len(report.duplicated_what)
        # Final states.
        for r in records:
            if r.is_final:
                reason = (r.reason or EndReason.UNKNOWN).value
                report.finished[reason] = report.finished.get(reason, 0) + 1
            else:
                report.lost_ids.append(r.id)
        # What each agent was told: the last text of each call's status message, and the
        # answer to each /call that placed no call.
        last_text, replies = self.last_text, self.replies
        for _agent_id, target in self.requested:
            record = by_target.get(target)
            if record is None:
                continue
            route = routes.get(record.route_code)
            expected = texts.call_status(record, route.name if route else None)
            shown = last_text.get(target)
            if record.is_final and shown != expected:
                report.told_wrong_what.append(f"{target}: shown {shown!r}, record {expected!r}")
        not_placed = [t for _a, t in self.requested if t not in by_target]
        for reply in replies:
            key = reply.split(".")[0][:60]
            report.refused[key] = report.refused.get(key, 0) + 1
        unanswered = max(0, len(not_placed) - len(replies))
        report.lost = len(report.lost_ids) + unanswered
        report.told_wrong = len(report.told_wrong_what)


async def soak(backend: str, minutes: float, agents: int, *, short: bool = False) -> Report:
    runner = Soak(backend=backend, minutes=minutes, agents=agents,
                  schedule=SHORT_SCHEDULE if short else SCHEDULE)  # fmt: skip
    return await runner.run()
