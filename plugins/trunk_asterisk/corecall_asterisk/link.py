"""One AMI connection to one Asterisk server (:class:`AmiLink`): connect and log in,
detect a dead connection, reconnect with backoff, write actions, and decide the calls
whose fate a drop left unknown.

Connection
    Connect and log in with a timeout (``action_timeout``). A dead connection is found by our
    own ping: every ``ping_interval`` seconds a ``Ping`` must get its ``Pong`` within
    ``action_timeout``, else the transport is aborted (panoramisk's own ping never waits for a
    reply, so it misses half-open connections). Reconnects back off exponentially, capped.

Never twice
    An Originate never goes through panoramisk's action table: :meth:`AmiLink.write_originate`
    writes its bytes and waits for the reply in the link's own table, which is failed, never
    replayed, when the link drops (see :mod:`corecall_asterisk.protocol` for the other two
    locks). Every awaited action has its own timeout.

Stopping
    :meth:`AmiLink.stop` returns within :attr:`AmiLink.stop_timeout` seconds whatever the
    timing. It does not rely on cancellation alone (on Python 3.11 ``asyncio.wait_for``
    swallows a cancellation that arrives just after the awaited result): it sets a stop flag
    that every loop checks, wakes the loops' waits, closes the connection (so no reply can be
    awaited any more), then cancels and waits, bounded. Awaits use ``asyncio.timeout``, which
    does not lose a cancellation.

Fate unknown
    If the link drops while an Originate is in flight, the call is not re-sent: after the
    reconnect the link asks Asterisk (``Status``) whether the call has channels. If so, it
    keeps tracking it (its events keep coming); if not, the call ends ``unknown`` with a
    detail that says so. The same reconcile runs after every reconnect for every call placed
    before it, and at start-up for calls a previous run left unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from corecall.domain import EndReason
from corecall.errors import TelephonyError
from corecall.supervision import Supervisor, log_crash
from corecall_asterisk.actions import check_header, originate_action_id
from corecall_asterisk.errors import AmiLoginError, LinkLost
from corecall_asterisk.tracking import CallTracker, TrackedCall

if TYPE_CHECKING:
    from corecall_asterisk.options import AmiServerConfig
    from corecall_asterisk.protocol import AmiProtocol

log = logging.getLogger(__name__)


async def _wait_set(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` have passed, whichever is first.

    ``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11 the latter swallows a
    cancellation that arrives just after the event was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def describe_error(exc: BaseException) -> str:
    """One short phrase for a connection or action error, for logs and operators."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is Asterisk running and manager.conf enabled?)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


class AmiLink:
    """One AMI connection to one Asterisk server, with login, ping, backoff and reconcile."""

    #: Reconnect backoff: first delay, cap, factor. Jitter is +-10 %.
    reconnect_initial = 0.25
    reconnect_max = 15.0
    reconnect_factor = 2.0
    #: Calls on a link that stays down this long end as ``unknown``.
    lost_link_grace = 120.0
    #: :meth:`stop` returns within this many seconds, whatever the timing.
    stop_timeout = 2.0

    def __init__(self, server: AmiServerConfig, *, supervisor: Supervisor | None = None) -> None:
        self.server = server
        #: Runs the connection loop as the task ``corecall-ami-<server>``: a crash is logged
        #: by name and the loop restarted (the application's supervisor when the driver
        #: runs in one, so a loop that keeps crashing stops ``corecall run``).
        self.supervisor = supervisor or Supervisor()
        self.tracker = CallTracker(on_agent_channel=self._agent_channel_seen)
        # panoramisk is imported when the first link is built, not when the plugin registers
        # its driver: `corecall asterisk --help` and commands that dial nothing never load it.
        from corecall_asterisk.protocol import LinkManager

        self.manager = LinkManager(
            self,
            host=server.host,
            port=server.port,
            username=server.username,
            secret=server.secret,
        )
        self.originates: dict[str, asyncio.Future] = {}
        self.protocol: AmiProtocol | None = None
        self.epoch = 0
        self.connected = asyncio.Event()
        # FullyBooted arrived on the current connection: Asterisk sends it right after the
        # login when it is up, and only once it is up after a restart. Before it, AMI accepts
        # logins but actions fail ("Extension does not exist"): no call goes out until then.
        self.booted = asyncio.Event()
        self.last_error = "not connected yet"
        self.last_loss = ""  # why the previous connection ended (kept across reconnects)
        self.asterisk_shutting_down = False
        self.asterisk_restarting = False  # Shutdown said Restart: True; until FullyBooted
        self.write_observer: Callable[[str], None] | None = None
        #: Told (server name, up) when the link comes up or goes down (the driver passes it
        #: on as corecall_link_state_changed: metrics, health).
        self.state_observer: Callable[[str, bool], None] | None = None
        self._lost: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._down_since: float | None = time.monotonic()
        self._closing = False
        self._stopping = asyncio.Event()  # wakes the backoff pause on stop()
        self._first_attempt = asyncio.Event()
        self._background: set[asyncio.Task] = set()
        self.connects = 0

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def is_up(self) -> bool:
        """Connected and logged in (Asterisk may still be starting: see :attr:`ready`)."""
        return self.connected.is_set() and self.protocol is not None and not self.protocol.closed

    @property
    def ready(self) -> bool:
        """Logged in and Asterisk said FullyBooted on this connection: calls may go out."""
        return self.is_up and self.booted.is_set()

    @property
    def connecting_first_time(self) -> bool:
        """The first connection attempt since start() has not ended yet."""
        return self._task is not None and not self._first_attempt.is_set()

    @property
    def starting(self) -> bool:
        """Logged in, but Asterisk has not said FullyBooted yet (it is still starting)."""
        return self.is_up and not self.booted.is_set()

    def fully_booted(self) -> None:
        if not self.booted.is_set():
            log.info("%s: FullyBooted", self.describe())
        self.asterisk_restarting = False
        self.booted.set()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait (bounded, seconds) until :attr:`ready`; True if it is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.ready:
            left = deadline - loop.time()
            if left <= 0:
                return False
            waiter = self.booted if self.is_up else self.connected
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.25)):
                    await waiter.wait()
        return True

    def describe(self) -> str:
        return f"Asterisk {self.name!r} (AMI {self.server.host}:{self.server.port})"

    # ---- lifecycle
    async def start(self, wait: float | None = None) -> None:
        """Start the connection loop; wait (bounded) for the first login."""
        if self._task is None:
            self._closing = False
            self._stopping.clear()
            self._task = self.supervisor.start(f"corecall-ami-{self.name}", self._run)
        if wait:
            # Until the first attempt ends either way: a refused login or connection is not
            # worth waiting for, a slow one is.
            await _wait_set(self._first_attempt, wait)

    async def stop(self) -> None:
        """Stop the link; returns within :attr:`stop_timeout` seconds, whatever the timing.

        Live calls stay up in Asterisk. The stop flag, the woken waits and the closed
        connection end every loop of the link even if a cancellation is lost; a task that
        still has not finished after the bound is logged by name and left behind.
        """
        self._closing = True
        self._stopping.set()
        if self._lost is not None:
            self._lost.set()  # wakes the ping loop's pause
        tasks = [t for t in (self._task, *self._background) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        self._close_protocol()  # nothing can wait for a reply any more
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.stop_timeout)
            for task in pending:
                log.error(
                    "%s: task %s did not stop within %g s; left behind",
                    self.describe(), task.get_name(), self.stop_timeout,
                )  # fmt: skip
        self._task = None
        self._close_protocol()  # in case a loop reconnected before it saw the flag
        for call in list(self.tracker.calls.values()):
            if call.fallback is not None:
                call.fallback.cancel()

    def _close_protocol(self) -> None:
        proto, self.protocol = self.protocol, None
        self.connected.clear()
        self.booted.clear()
        if proto is not None:
            proto.close()
        self._fail_originates(LinkLost("the AMI connection was closed"))

    def _fail_originates(self, error: Exception) -> None:
        waiters, self.originates = self.originates, {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_exception(error)
                fut.exception()

    async def _run(self) -> None:
        delay = self.reconnect_initial
        while not self._closing:
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = describe_error(exc)
                self._first_attempt.set()
                log.warning("%s: %s; retrying in %.1f s", self.describe(), self.last_error, delay)
                self._give_up_on_calls_if_down_too_long()
                await _wait_set(self._stopping, delay * random.uniform(0.9, 1.1))
                delay = min(delay * self.reconnect_factor, self.reconnect_max)
                continue
            if self._closing:  # stop() came while logging in: do not run this connection
                self._close_protocol()
                return
            delay = self.reconnect_initial
            self._first_attempt.set()
            log.info("%s: connected and logged in", self.describe())
            self._tell_state(True)
            self._spawn(self._reconcile_after_connect(self.epoch))
            try:
                await self._ping_until_lost()
            finally:
                self.last_loss = self.last_error or "the connection closed"
                self._close_protocol()
                self._down_since = time.monotonic()
                self._tell_state(False)
            if not self._closing:
                log.warning("%s: connection lost (%s)", self.describe(), self.last_error)

    def _tell_state(self, up: bool) -> None:
        if self.state_observer is not None:
            try:
                self.state_observer(self.server.name, up)
            except Exception:
                log.exception("%s: the link state observer failed", self.describe())

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.server.action_timeout
        self._lost = asyncio.Event()
        self.asterisk_shutting_down = False
        from corecall_asterisk import protocol

        self.booted.clear()
        async with asyncio.timeout(timeout):
            _transport, proto = await loop.create_connection(
                lambda: protocol.AmiProtocol(self), self.server.host, self.server.port
            )
        # What panoramisk's Manager.connection_made would set up, minus its auto-behaviour.
        proto.factory = self.manager
        proto.log = log
        proto.config = self.manager.config
        proto.encoding = "utf8"
        self.manager.protocol = proto
        self.protocol = proto
        try:
            reply = await self.action(
                {
                    "Action": "Login",
                    "Username": self.server.username,
                    "Secret": self.server.secret,
                    "Events": "on",
                },
                require_login=False,
            )
            if not reply.success:
                message = reply.get("Message", "") or "login refused"
                raise AmiLoginError(
                    f"AMI login as {self.server.username!r} refused ({message}): check the "
                    f"secret and the user's permit= in manager.conf"
                )
        except BaseException:
            self._close_protocol()
            raise
        self.epoch += 1
        self.connects += 1
        self._down_since = None
        self.last_error = ""
        self.tracker.pbx_back()
        self.connected.set()

    async def _ping_until_lost(self) -> None:
        assert self._lost is not None
        lost = self._lost
        interval = max(0.05, self.server.ping_interval)
        # Ends on the stop flag too, not only on cancellation (which can be lost, see stop()).
        while not (lost.is_set() or self._closing):
            await _wait_set(lost, interval)
            if lost.is_set() or self._closing:
                return
            try:
                await self.action({"Action": "Ping"})
            except TimeoutError:
                self.last_error = (
                    f"no Pong within {self.server.action_timeout:g} s: the connection is dead"
                )
                log.warning("%s: %s", self.describe(), self.last_error)
                proto = self.protocol
                if proto is not None and proto.transport is not None:
                    proto.transport.abort()
                return
            except TelephonyError:
                return

    def _connection_lost(self, proto: AmiProtocol, exc: BaseException | None) -> None:
        if proto is not self.protocol:
            return
        self.connected.clear()
        self.booted.clear()
        self.tracker.pbx_gone()
        if self.asterisk_shutting_down:
            self.last_error = "Asterisk shut down"
        elif exc is not None:
            self.last_error = describe_error(exc)
        elif not self.last_error:
            self.last_error = "Asterisk closed the connection"
        self.last_loss = self.last_error
        self._fail_originates(LinkLost(f"the AMI connection dropped ({self.last_error})"))
        if self._lost is not None:
            self._lost.set()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro, name=f"corecall-ami-{self.name}-{coro.__name__}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(log_crash)  # short-lived: a crash is logged by name

    # ---- actions
    async def action(
        self, headers: dict[str, str], *, timeout: float | None = None, require_login=True
    ):
        """Send one action through panoramisk and await its reply (own timeout)."""
        proto = self.protocol
        if proto is None or proto.closed or (require_login and not self.connected.is_set()):
            raise TelephonyError(f"{self.describe()} is not connected ({self.last_error})")
        for name, value in headers.items():
            check_header(name, value)
        from corecall_asterisk.protocol import Action

        action = Action(headers)
        fut = proto.send(action, as_list=None)  # None: panoramisk detects lists itself
        try:
            async with asyncio.timeout(timeout or self.server.action_timeout):
                return await fut
        except TimeoutError:
            proto.responses.pop(action.id, None)
            raise

    def write_originate(self, call: TrackedCall, payload: bytes) -> asyncio.Future:
        """Write an Originate's bytes (already built and checked) and return the future of
        Asterisk's reply. Never queued, never re-sent."""
        proto = self.protocol
        if proto is None or proto.closed or not self.connected.is_set():
            raise TelephonyError(f"{self.describe()} is not connected ({self.last_error})")
        fut = asyncio.get_running_loop().create_future()
        self.originates[originate_action_id(call.call_id)] = fut
        call.epoch = self.epoch
        self.tracker.track(call)
        proto.transport.write(payload)
        if self.write_observer is not None:
            self.write_observer(call.call_id)
        return fut

    async def hangup(self, call: TrackedCall) -> bool:
        reply = await self.action(
            {"Action": "Hangup", "Channel": call.agent_channel or call.key, "Cause": "16"}
        )
        return bool(reply.success)

    def _agent_channel_seen(self, call: TrackedCall) -> None:
        if call.hangup_pending:
            call.hangup_pending = False
            self._spawn(self._safe_hangup(call))

    async def _safe_hangup(self, call: TrackedCall) -> None:
        try:
            await self.hangup(call)
        except (TelephonyError, TimeoutError) as exc:
            log.warning("call %s: hangup failed: %s", call.call_id, describe_error(exc))

    async def channels(self) -> dict[str, list[dict[str, str]]]:
        """Live channels by Linkedid (``Status``: needs only the ``call`` write class)."""
        reply = await self.action({"Action": "Status"})
        messages = reply if isinstance(reply, list) else [reply]
        if messages and messages[0].get("Response") == "Error":
            raise TelephonyError(f"Status refused: {messages[0].get('Message')}")
        by_link: dict[str, list[dict[str, str]]] = {}
        for msg in messages:
            if msg.get("Event") in ("Status", "CoreShowChannel"):
                entry = {k: v for k, v in msg.items() if isinstance(v, str)}
                by_link.setdefault(entry.get("Linkedid", ""), []).append(entry)
        return by_link

    # ---- reconcile
    async def _reconcile_after_connect(self, epoch: int) -> None:
        """After a (re)connect: decide every call placed before this connection."""
        calls = [c for c in self.tracker.calls.values() if c.epoch < epoch]
        if not calls:
            return
        try:
            live = await self.channels()
        except (TelephonyError, TimeoutError) as exc:
            if self._closing:
                return  # stopping: the calls stay up in Asterisk, the next start decides them
            for call in calls:
                self.tracker.finish(
                    call, EndReason.UNKNOWN,
                    "the AMI link dropped and Asterisk could not be asked about the call "
                    f"afterwards ({describe_error(exc)})",
                )  # fmt: skip
            return
        for call in calls:
            if call.key not in self.tracker.calls:
                continue  # its events decided it meanwhile
            channels = live.get(call.key)
            if channels and any(ch.get("Uniqueid") == call.key for ch in channels):
                call.epoch = epoch
                self.tracker.apply_channels(call, channels)
                continue
            self.tracker.finish(call, EndReason.UNKNOWN, self._why_gone(call))

    def _why_gone(self, call: TrackedCall) -> str:
        if call.epoch == -2:
            return "ended while corecall was down; Asterisk has no channel left for it"
        if not call.confirmed:
            return (
                "the AMI link dropped while the Originate was in flight and Asterisk has no "
                "channel for this call: it was not placed, or ended at once (never re-sent)"
            )
        if self.last_loss == "Asterisk shut down":
            return "Asterisk restarted while the call was up; how it ended is not known"
        return "the call ended while the AMI link was down; how it ended is not known"

    def _give_up_on_calls_if_down_too_long(self) -> None:
        if self._down_since is None or not self.tracker.calls:
            return
        down = time.monotonic() - self._down_since
        if down < self.lost_link_grace:
            return
        for call in list(self.tracker.calls.values()):
            self.tracker.finish(
                call, EndReason.UNKNOWN,
                f"the AMI link to {self.describe()} has been down for {down:.0f} s "
                f"({self.last_error}); the call's outcome is not known",
            )  # fmt: skip
