"""Test doubles for the conversation: manual time, a scripted trunk driver, a recording port.

``corecall_testing.fakes``, used by tests/conversation and tests/telegram.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import heapq
import itertools

from corecall import hookimpl
from corecall.conversation import NO_BUTTONS, Keyboard
from corecall.domain import CallState, EndReason
from corecall.telephony.driver import TrunkDriver


class ManualTime:
    """A monotonic clock and a sleep that only move when the test says so.

    ``sleep(seconds)`` records the request and blocks until :meth:`advance` moves the clock
    past its deadline, so coalescing and FloodWait waits are tested without waiting.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    @property
    def sleeping(self) -> int:
        return sum(1 for _due, _n, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move the clock; wake every sleeper that is due; let them run."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now + 1e-9:
            _due, _n, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        for _ in range(20):
            await asyncio.sleep(0)


class WallClock:
    """A settable UTC clock for the CallManager (call timestamps, durations)."""

    def __init__(self) -> None:
        self.now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)  # Telegram's precision

    def __call__(self) -> _dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += _dt.timedelta(seconds=seconds)


class Switchboard:
    """A scripted trunk driver, registered at the trunk-driver hook as ``scripted``: it
    records what it was asked to dial, and the test moves each call by hand."""

    def __init__(self) -> None:
        self.originated = []
        self.hangups: list[str] = []
        self.started = 0
        self.stopped = 0
        self.start_error: BaseException | None = None
        self.originate_error: BaseException | None = None
        #: called with each OriginateRequest as it reaches the "PBX" (for timelines)
        self.on_originate = None
        self._progress = None

    def plugin(self):
        board = self

        class ScriptedDriver(TrunkDriver):
            NAME = "scripted"

            async def start(self) -> None:
                if board.start_error is not None:
                    raise board.start_error
                board.started += 1

            async def stop(self) -> None:
                board.stopped += 1  # like Asterisk: live calls stay up

            async def originate(self, request, progress) -> None:
                if board.originate_error is not None:
                    raise board.originate_error
                board.originated.append(request)
                board._progress = progress
                if board.on_originate is not None:
                    board.on_originate(request)

            async def hangup(self, call_id: str) -> bool:
                board.hangups.append(call_id)
                # The PBX reports the hang-up like any other end of call.
                board._progress(call_id, CallState.ENDED, EndReason.COMPLETED, "hung up")
                return True

        class ScriptedDriverPlugin:
            @hookimpl
            def corecall_register_trunk_drivers(self, registry) -> None:
                registry.register(ScriptedDriver)

        return ScriptedDriverPlugin()

    @property
    def last_call_id(self) -> str:
        return self.originated[-1].call_id

    def move(self, state: CallState, reason: EndReason | None = None, call_id: str | None = None):
        self._progress(call_id or self.last_call_id, state, reason, "")


class RecordingPort:
    """An OutputPort that remembers everything (for conversation-level tests)."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self._ids = itertools.count(1)
        self.fail_next_edit: list[BaseException] = []

    async def send(self, chat_id: int, text: str, buttons: Keyboard = NO_BUTTONS) -> int:
        message_id = next(self._ids)
        self.log.append(("send", chat_id, message_id, text, buttons))
        return message_id

    async def edit(self, chat_id: int, message_id: int, text: str, buttons=NO_BUTTONS) -> None:
        if self.fail_next_edit:
            self.log.append(("failed-edit", chat_id, message_id, text, buttons))
            raise self.fail_next_edit.pop(0)
        self.log.append(("edit", chat_id, message_id, text, buttons))

    def edits(self) -> list[str]:
        return [entry[3] for entry in self.log if entry[0] == "edit"]
