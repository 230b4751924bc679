"""Stopping cannot hang (issue #7, finding 1), whatever the timing.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives after the awaited
result is in but before the waiting task resumed: a loop that relies on being cancelled then
runs on. The AMI link's ping loop did exactly that: ``AmiLink.stop()`` never returned and the
link kept sending Pings. These tests force that timing (the stop's cancellation reaches the
ping loop in the loop iteration in which its Pong arrived), many times, on every stop path:
the link itself (against the fake AMI server and against a real Asterisk), the call manager,
the end of console input and SIGTERM on ``corecall run``. Each must end within its stated
bound, with the link's task finished and no Ping written afterwards.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal

import pytest
from corecall_asterisk.link import AmiLink
from corecall_asterisk.options import AmiServerConfig
from corecall_asterisk.protocol import AmiProtocol
from corecall_testing import config_dict
from corecall_testing.ami import FakeAmi, ami_sections, server_of
from corecall_testing.telegram_harness import OfflineTelegram

from corecall.app import App
from corecall.calls import DRIVER_STOP_TIMEOUT
from corecall.config import parse_config
from corecall.console import run_console_async
from corecall.conversation import EditScheduler
from corecall.telegram.runner import serve, start_calls

ROUNDS = 40


@pytest.fixture
def stop_at_pong(monkeypatch):
    """Every ``AmiLink.stop()`` is held until the link's next Pong, then started in the same
    loop iteration in which that Pong completed the ping loop's pending action: the bad
    timing. Returns the list of links stopped that way."""
    held: dict[int, asyncio.Future] = {}
    stopped: list[AmiLink] = []
    real_stop = AmiLink.stop
    real_handle = AmiProtocol.handle_message

    def handle_message(proto, message):
        real_handle(proto, message)  # completes the Ping's future first...
        waiter = held.pop(id(proto.link), None)
        if waiter is not None and message.get("Ping") == "Pong" and not waiter.done():
            waiter.set_result(None)  # ...then wakes the stop, in the same iteration

    async def stop(link):
        if link.is_up:
            waiter = asyncio.get_running_loop().create_future()
            held[id(link)] = waiter
            async with asyncio.timeout(5):
                await waiter
        stopped.append(link)
        await real_stop(link)

    monkeypatch.setattr(AmiProtocol, "handle_message", handle_message)
    monkeypatch.setattr(AmiLink, "stop", stop)
    return stopped


async def until(predicate, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.002)


def fake_server(port: int, **over) -> AmiServerConfig:
    values = {
        "name": "pbx1", "host": "127.0.0.1", "port": port, "secret": "s3cret-s3cret",
        "ping_interval": 0.05, "action_timeout": 1.0,
    }  # fmt: skip
    values.update(over)
    return AmiServerConfig(**values)


async def stop_in_bound(link: AmiLink) -> None:
    task = link._task
    assert task is not None and link.is_up, link.last_error
    async with asyncio.timeout(AmiLink.stop_timeout + 1.0):
        await link.stop()
    assert task.done(), "stop() returned but the link task still runs"
    assert not link.is_up and link._task is None


async def test_link_stop_is_bounded_against_the_fake_ami(stop_at_pong):
    async with FakeAmi() as ami:
        for round_ in range(ROUNDS):
            link = AmiLink(fake_server(ami.port))
            await link.start(wait=2)
            await stop_in_bound(link)
            pings = len(ami.named("Ping"))
            await asyncio.sleep(0.15)  # three ping intervals: a live loop would ping again
            assert len(ami.named("Ping")) == pings, f"round {round_}: Pings after stop()"
    assert len(stop_at_pong) == ROUNDS


@pytest.mark.lab
async def test_link_stop_is_bounded_against_asterisk(lab, stop_at_pong):
    for _ in range(ROUNDS // 2):
        link = AmiLink(
            fake_server(
                lab.ami_port, host=lab.ami_host, username=lab.ami_user, secret=lab.ami_secret
            )
        )
        await link.start(wait=5)
        await stop_in_bound(link)
    assert len(stop_at_pong) == ROUNDS // 2


def ami_app(tmp_path, port: int) -> App:
    sections = ami_sections({"pbx1": server_of(port=port, ping_interval=0.05)})
    return App(parse_config(config_dict(tmp_path, **sections), path=None))


async def test_call_manager_stop_is_bounded(tmp_path, stop_at_pong):
    async with FakeAmi() as ami:
        for _ in range(10):
            app = ami_app(tmp_path, ami.port)
            manager = await start_calls(app)
            async with asyncio.timeout(DRIVER_STOP_TIMEOUT + 3):
                await manager.stop(drain_timeout=2)
            app.close()
    assert len(stop_at_pong) == 10
    assert all(link._task is None for link in stop_at_pong)


async def test_end_of_console_input_is_bounded(tmp_path, stop_at_pong):
    async with FakeAmi() as ami:
        for _ in range(10):
            app = ami_app(tmp_path, ami.port)
            out = io.StringIO()
            async with asyncio.timeout(15):
                await run_console_async(
                    app, 1000, stdin=io.StringIO("/start\n"), stdout=out, interactive=False
                )
            assert "you: /start" in out.getvalue()
            app.close()
    assert len(stop_at_pong) == 10


async def test_sigterm_on_corecall_run_is_bounded(tmp_path, stop_at_pong):
    async with FakeAmi() as ami:
        for _ in range(5):
            app = ami_app(tmp_path, ami.port)
            manager = await start_calls(app)
            client = OfflineTelegram()
            serving = asyncio.create_task(serve(app, client, manager))
            await until(client.list_event_handlers)
            os.kill(os.getpid(), signal.SIGTERM)
            async with asyncio.timeout(15):
                await serving
            assert not client.is_connected()
            await client.aclose()
            app.close()
    assert len(stop_at_pong) == 5


class SwallowingPort:
    """An output port whose ``edit`` swallows a cancellation, as a library call built on
    ``asyncio.wait_for`` can: the edit scheduler must stop on its own flag."""

    def __init__(self) -> None:
        self.started = 0

    async def send(self, chat_id, text, buttons=()):
        return 1

    async def edit(self, chat_id, message_id, text, buttons=()):
        self.started += 1
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return  # the cancellation is lost here


async def test_edit_scheduler_close_is_bounded_when_a_cancellation_is_lost():
    for _ in range(ROUNDS):
        port = SwallowingPort()
        edits = EditScheduler(port, min_interval=0.0)
        for message_id in (10, 11, 12):
            edits.edit(1, message_id, "text", ())
        await until(lambda port=port: port.started)
        async with asyncio.timeout(3):
            await edits.close(timeout=2)
        assert port.started == 1  # the two queued edits were dropped, not sent
        assert edits.pending() == 0


def test_no_product_code_awaits_through_asyncio_wait_for():
    """The kind, kept out: ``asyncio.wait_for`` can lose a cancellation on Python 3.11, so
    the product uses ``asyncio.timeout`` (or explicit flags and bounded waits) instead."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for base in ("corecall", "plugins")
        for path in sorted((root / base).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "wait_for(" in line.split("#")[0] and "``" not in line
    ]
    assert offenders == [], offenders
