"""Test helpers for the AMI driver: a scriptable fake AMI server and a TCP proxy that can cut,
freeze or drop traffic between the driver and a real Asterisk.

Both run on the test's own event loop and record every byte the driver wrote, so tests can
assert on what reached (or never reached) the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

# Numbers by carrier behaviour (the sipp carriers decide on the last four digits).
HOLDS = "+12125550999"  # answers at once, holds until BYE
ANSWERS = "+12125550111"  # answers at once, presses 1, hangs up after 2 s
TARGET = "+12125550123"  # answers at once, hangs up after 2 s
BUSY = "+12125550486"
RINGS = "+12125550408"  # rings forever
FORBIDDEN = "+12125550403"
UNAVAILABLE = "+12125550503"
MAIN_CID = "+12125550100"
DEV_CID = "+12125550199"


GREETING = b"Asterisk Call Manager/11.0.0\r\n"
#: What Asterisk sends right after a login once it is up (and, after a restart, once booted).
FULLY_BOOTED = b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"


def parse_action(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode(errors="replace").split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            headers[name] = value
    return headers


def reply(**headers: str) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"


class FakeAmi:
    """A tiny AMI server. ``on_originate`` decides what happens to each Originate:

    ``"queue"`` (reply "successfully queued"), ``"close"`` (close the connection without a
    reply), ``"silence"`` (never reply). Pings are answered unless ``answer_pings`` is False
    (a half-open connection, seen from the client).
    """

    def __init__(self, secret: str = "s3cret-s3cret") -> None:
        self.secret = secret
        self.on_originate = "queue"
        self.originate_modes: list[str] = []  # per Originate, first to last; then on_originate
        self.answer_pings = True
        self.answer_login = True
        self.fully_booted = True  # False: logins work, FullyBooted is not sent (still starting)
        self.channels: list[dict[str, str]] = []
        self.actions: list[tuple[int, dict[str, str]]] = []  # (connection number, action)
        self.raw = bytearray()
        self.connections = 0
        self.connect_times: list[float] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def __aenter__(self) -> FakeAmi:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)

    def named(self, action: str) -> list[dict[str, str]]:
        return [a for _, a in self.actions if a.get("Action", "").lower() == action.lower()]

    def close_all(self) -> None:
        for w in self.writers:
            w.close()

    def send_event(self, text: str) -> None:
        for w in self.writers:
            if not w.is_closing():
                w.write(text.encode())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connect_times.append(asyncio.get_running_loop().time())
        number = self.connections
        self.writers.append(writer)
        writer.write(GREETING)
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                self.raw += data
                buf += data
                *blocks, buf = buf.split(b"\r\n\r\n")
                for block in blocks:
                    action = parse_action(block)
                    self.actions.append((number, action))
                    if not self._answer(action, writer):
                        writer.close()
                        return
        except (ConnectionError, asyncio.CancelledError):
            return

    def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        name = action.get("Action", "").lower()
        aid = action.get("ActionID", "")
        if name == "login":
            if not self.answer_login:
                return True
            if action.get("Secret") != self.secret:
                writer.write(reply(Response="Error", ActionID=aid, Message="Authentication failed"))
                return True
            writer.write(reply(Response="Success", ActionID=aid, Message="Authentication accepted"))
            if self.fully_booted:
                writer.write(FULLY_BOOTED)
        elif name == "ping":
            if self.answer_pings:
                writer.write(reply(Response="Success", ActionID=aid, Ping="Pong"))
        elif name == "originate":
            mode = self.originate_modes.pop(0) if self.originate_modes else self.on_originate
            if mode == "close":
                return False
            if mode == "queue":
                writer.write(
                    reply(Response="Success", ActionID=aid, Message="Originate successfully queued")
                )
        elif name == "status":
            writer.write(
                reply(
                    Response="Success", ActionID=aid, EventList="start",
                    Message="Channel status will follow",
                )
            )  # fmt: skip
            for ch in self.channels:  # Asterisk puts the ActionID last in Status events
                writer.write(reply(Event="Status", Privilege="Call", **ch, ActionID=aid))
            writer.write(
                reply(
                    Event="StatusComplete", ActionID=aid, EventList="Complete",
                    ListItems=str(len(self.channels)),
                )
            )  # fmt: skip
        elif name == "hangup":
            writer.write(reply(Response="Success", ActionID=aid, Message="Channel Hungup"))
        else:
            writer.write(reply(Response="Error", ActionID=aid, Message="Invalid/unknown command"))
        return True


class AmiProxy:
    """A TCP proxy between the driver and Asterisk's AMI port that the test controls.

    * ``client_bytes``: everything the driver wrote, over every connection;
    * ``cut_on_originate``: ``"forward"`` passes the chunk holding the next Originate to
      Asterisk and then cuts both sides before any reply comes back; ``"drop"`` cuts without
      passing it on (one-shot);
    * ``freeze()``: stop relaying in both directions but keep the sockets open (half-open);
    * ``cut()``: close every connection now.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.client_bytes = bytearray()
        self.cut_on_originate: str | None = None
        self._frozen: set[tuple] = set()  # pairs relaying nothing any more (half-open)
        self._muted: set[tuple] = set()  # pairs whose replies to the client are swallowed
        self.connections = 0
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task] = set()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.on_cut: Callable[[], None] | None = None

    async def __aenter__(self) -> AmiProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        self.cut()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def originates_written(self) -> int:
        return bytes(self.client_bytes).count(b"Action: Originate\r\n")

    def freeze(self) -> None:
        """Stop relaying on the connections open now (new connections work normally)."""
        self._frozen.update(self._pairs)

    def cut(self) -> None:
        for client, upstream in self._pairs:
            for w in (client, upstream):
                transport = w.transport
                if transport is not None and not transport.is_closing():
                    transport.abort()
        self._pairs.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._pairs.append((writer, up_writer))
        for coro in (
            self._pump(reader, up_writer, from_client=True, pair=(writer, up_writer)),
            self._pump(up_reader, writer, from_client=False, pair=(writer, up_writer)),
        ):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader, writer, *, from_client: bool, pair) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if from_client:
                    self.client_bytes += data
                if pair in self._frozen or (not from_client and pair in self._muted):
                    continue  # swallow: the other side never hears of it
                if from_client and self.cut_on_originate and b"Action: Originate" in data:
                    mode, self.cut_on_originate = self.cut_on_originate, None
                    if mode == "forward":
                        self._muted.add(pair)  # Asterisk's reply must never reach the driver
                        writer.write(data)
                        with contextlib.suppress(ConnectionError):
                            await writer.drain()
                        await asyncio.sleep(0.05)  # let Asterisk read it before the cut
                    self.cut()
                    if self.on_cut:
                        self.on_cut()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            if pair not in self._frozen:
                with contextlib.suppress(Exception):
                    writer.close()


def server_of(lab=None, *, host="127.0.0.1", port=None, secret=None, **over) -> dict:
    """A ``[plugins.asterisk_ami.servers.X]`` table for a lab (or any host/port)."""
    table = {
        "host": lab.ami_host if lab else host,
        "port": port or (lab.ami_port if lab else 5038),
        "username": lab.ami_user if lab else "corecall",
        "secret": secret if secret is not None else (lab.ami_secret if lab else "s3cret-s3cret"),
        "ping_interval": 0.5,
        "action_timeout": 2.0,
    }
    table.update(over)
    return table


def ami_sections(servers: dict, *, main=("pbx1", "corecall-main"), dev=("pbx1", "corecall-dev"),
                 agent_ring=2, target_ring=2) -> dict:  # fmt: skip
    """Config sections: routes M and D on asterisk_ami trunks, short ring timeouts."""
    return {
        "plugins": {"asterisk_ami": {"servers": servers}},
        "trunks": {
            "main": {"driver": "asterisk_ami", "server": main[0], "endpoint": main[1]},
            "dev": {"driver": "asterisk_ami", "server": dev[0], "endpoint": dev[1]},
        },
        "calls": {"agent_ring_timeout": agent_ring, "target_ring_timeout": target_ring},
        "limits": {"live_calls_per_agent": 100, "calls_per_minute": 10000},
    }
