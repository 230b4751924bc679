"""Helpers for tests that use the Asterisk lab (the ``corecall_lab`` package): make instances
on free ports, build the driver's Originate, and collect AMI events with raw panoramisk.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from typing import Any

from corecall_lab import lab as labmod

REPO = labmod.REPO

#: The numbers the lab's carriers accept as owned (anything else gets 403): route M's first
#: caller ID on corecall-main, route D's on corecall-dev.
CALLER_ID = "+12125550100"
DEV_CALLER_ID = "+12125550199"


def free_udp(host: str) -> int:
    return labmod.free_port(host, socket.SOCK_DGRAM)


def make_lab(instance: str, hosts: tuple[str, str] = ("127.0.0.2", "127.0.0.3"), **kwargs):
    """A Lab whose ports the lab itself picks at start(), race-free across every lab
    instance on the machine; carriers corecall-main/corecall-dev on the two given addresses.

    The processes die with the test process even if it is killed (PR_SET_PDEATHSIG), and a
    later run reaps instances whose owner is gone.
    """
    main, dev = hosts
    options: dict[str, Any] = {
        "ami_port": 0,
        "sip_port": 0,
        "carriers": {"corecall-main": f"{main}:0", "corecall-dev": f"{dev}:0"},
        "rtp_ports": (20000, 29999),
        "die_with_parent": True,
    }
    options.update(kwargs)
    return labmod.Lab(instance, **options)


def new_call_id() -> str:
    return uuid.uuid4().hex


originate_action = labmod.originate_action


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll predicate() until it returns something truthy; return it or raise TimeoutError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class AmiSession:
    """A raw panoramisk connection as the lab's ``corecall`` AMI user, recording events.

    Note: panoramisk routes an event carrying the ActionID of a pending action to that
    action's future instead of the event callbacks, so the OriginateResponse of an Originate
    sent through ``send_action`` arrives in the action's result, not in :attr:`events`.
    """

    def __init__(self, lab) -> None:
        self.lab = lab
        self.events: list[Any] = []
        self.manager = None

    #: How long to keep trying to log in (a just-started Asterisk under load may take a while
    #: and has been seen to drop the first session right after accepting it).
    login_timeout = 20.0

    async def __aenter__(self) -> AmiSession:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.login_timeout
        attempts: list[str] = []
        while True:
            outcome = await self._try_login(min(5.0, max(0.5, deadline - loop.time())))
            if outcome is None:
                return self
            attempts.append(outcome)
            if loop.time() >= deadline:
                raise AssertionError(
                    f"could not log in to the lab's AMI at {self.lab.ami_host}:"
                    f"{self.lab.ami_port} within {self.login_timeout:.0f} s; attempts: "
                    + "; ".join(attempts)
                )
            await asyncio.sleep(0.2)

    async def _try_login(self, timeout: float) -> str | None:
        """One connection and login; None when logged in and FullyBooted was seen, else why
        not (the connection is closed then)."""
        from panoramisk import Manager

        lost: list[object] = []
        self.events = []
        self.manager = Manager(
            host=self.lab.ami_host,
            port=self.lab.ami_port,
            username=self.lab.ami_user,
            secret=self.lab.ami_secret,
            loop=asyncio.get_running_loop(),
            ping_delay=3600,
            reconnect_timeout=3600,
            on_disconnect=lambda _manager, exc: lost.append(exc),
        )
        self.manager.register_event("*", self._on_event)
        try:
            async with asyncio.timeout(timeout):
                await self.manager.connect()
                while not (self.manager.authenticated and self.named("FullyBooted")):
                    if lost:
                        break
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pass
        except OSError as exc:
            return f"connect failed: {exc}"
        if self.manager.authenticated and self.named("FullyBooted") and not lost:
            return None
        if lost:
            why = f"connection lost ({lost[0]!r})"
        elif not self.manager.authenticated:
            why = f"not logged in within {timeout:.1f} s"
        else:
            why = f"logged in, no FullyBooted within {timeout:.1f} s"
        with contextlib.suppress(Exception):
            self.manager.close()
        return f"{why}, {len(self.events)} events seen"

    def _on_event(self, _manager, event) -> None:
        self.events.append(event)

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.manager.close()

    async def send(self, action: dict[str, str], timeout: float = 10.0):
        return await asyncio.wait_for(self.manager.send_action(action), timeout)

    def named(self, name: str, **fields: str) -> list[Any]:
        return [
            e
            for e in self.events
            if e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())
        ]

    def of_call(self, call_id: str) -> list[Any]:
        linked = f"{call_id}-a"
        return [
            e
            for e in self.events
            if e.get("Linkedid") == linked
            or e.get("DestLinkedid") == linked
            or e.get("CallId") == call_id
        ]

    def end_event(self, call_id: str):
        found = self.named("UserEvent", UserEvent="CorecallEnd", CallId=call_id)
        return found[0] if found else None

    async def wait_call_over(self, call_id: str, timeout: float = 15.0) -> list[Any]:
        """Wait until every channel of the call has hung up; return the call's events."""

        def over():
            events = self.of_call(call_id)
            live: set[str] = set()
            for e in events:
                if e.get("Event") == "Newchannel":
                    live.add(e.get("Uniqueid"))
                elif e.get("Event") == "Hangup":
                    live.discard(e.get("Uniqueid"))
            return events if events and not live else None

        await wait_until(over, timeout)
        await asyncio.sleep(0.1)  # let trailing events of the same instant arrive
        return self.of_call(call_id)
