"""The bot under test: a real TelegramClient (offline harness) + a real SQLite store in
tmp_path + the real CallManager, with trunks on the simulated PBX (tiny timings) or on a
scripted driver registered at the trunk-driver hook (:class:`fakes.Switchboard`)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from pathlib import Path

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.calls import CallManager
from corecall.config import parse_config
from corecall.conversation import Conversation
from corecall.telegram import attach_handlers

# The conversation tests' doubles (manual time, scripted driver) are shared with these tests:
from corecall_testing import config_dict
from corecall_testing.fakes import ManualTime, Switchboard, WallClock
from corecall_testing.telegram_harness import OfflineTelegram

AGENT_ID = 501
AGENT_PHONE = "+12125550111"
ADMIN_ID = 1000  # config_dict's super admin
STRANGER_ID = 777
TARGET = "+12125550123"


class Bot:
    """Everything a test needs to talk to the bot and look at what it did."""

    def __init__(self, client, app, calls, conversation, board, manual_time, wall) -> None:
        self.client = client
        self.app = app
        self.calls = calls
        self.conversation = conversation
        self.board = board
        self.time = manual_time
        self.wall = wall
        self.alice = client.user(AGENT_ID, "Alice")
        self.admin = client.user(ADMIN_ID, "Ada")
        self.stranger = client.user(STRANGER_ID, "Mallory")

    @property
    def store(self):
        return self.app.store

    async def say(self, user, text: str, *, age: float = 0.0) -> list:
        """Send ``text`` as ``user`` (``age`` seconds ago); the requests it caused."""
        before = len(self.client.requests)
        date = self.wall.now - _dt.timedelta(seconds=age)  # the bot's clock is the wall clock
        await self.client.feed(self.client.private_text(user, text, date=date))
        return self.client.requests[before:]

    async def reply(self, user, text: str) -> str:
        """Send ``text``; the text of the one message the bot answered with."""
        sent = [r for r in await self.say(user, text) if type(r).__name__ == "SendMessageRequest"]
        assert len(sent) == 1, [r.message for r in sent]
        return sent[0].message

    async def press(self, user, message_id: int, data: bytes, **kwargs) -> list:
        before = len(self.client.requests)
        await self.client.feed(self.client.button_press(user, message_id, data, **kwargs))
        if self.time is None:
            # Every edit the press caused is delivered before the test looks (a busy machine
            # may take seconds: never read the messages half-way).
            delivered = await self.conversation.flush_edits(timeout=30)
            assert delivered, "edits not delivered in 30 s"
        else:  # manual time: edits wait for the test to advance the clock
            await self.conversation.flush_edits(timeout=2)
        return self.client.requests[before:]

    async def until(self, predicate, timeout: float = 3.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    def last_sent(self):
        return self.client.sent()[-1]


async def build_bot(
    tmp_path: Path,
    *,
    driver: str = "scripted",
    edit_interval: float = 0.0,
    ringing_settle: float | None = None,
    manual_time: bool = False,
    agent_route: str | None = "D",
    disabled_plugins: tuple[str, ...] = (),
    **sections,
) -> Bot:
    raw = config_dict(tmp_path, **sections)
    if driver == "scripted":
        raw["trunks"] = {"main": {"driver": "scripted"}, "dev": {"driver": "scripted"}}
    if disabled_plugins:
        raw["plugins"] = {**raw.get("plugins", {}), "disabled": list(disabled_plugins)}
    config = parse_config(raw, path=None)
    board = Switchboard()
    app = App(config, extra_plugins=[("test_driver", board.plugin())])
    wall = WallClock()
    calls = CallManager(
        config=config, plugins=app.plugins, store=app.store, routes=app.routes,
        drivers=app.build_drivers(), clock=wall,
    )  # fmt: skip
    await calls.start()
    manual = ManualTime() if manual_time else None
    conversation = Conversation(
        app, calls, edit_interval=edit_interval, ringing_settle=ringing_settle, clock=wall,
        monotonic=manual.monotonic if manual else time.monotonic,
        sleep=manual.sleep if manual else asyncio.sleep,
    )  # fmt: skip
    client = OfflineTelegram()
    attach_handlers(client, conversation)
    admin = AgentAdmin(app)
    admin.authorize(AGENT_ID, actor="test", phone=AGENT_PHONE, name="Alice")
    if agent_route:
        admin.set_route(AGENT_ID, agent_route, actor="test")
    bot = Bot(client, app, calls, conversation, board, manual, wall)
    return bot
