"""The simulated PBX: a trunk driver that behaves like a real call and dials nothing.

It walks the same states as the Asterisk driver with the same timing shape (the agent's
phone rings, the agent answers, the target rings, answers, they talk, someone hangs up) and
fails by rule, on the last four digits of the number dialed (agent leg or target leg), the
same rules the Asterisk lab's sipp carriers follow:

====== =====================================
digits outcome
====== =====================================
0486   busy
0408   rings and never answers (ring timeout)
0183   early media only, never answers (like 0408)
0403   rejected (403)
0503   unreachable (503)
0202   answers after a longer ring
0184   answers after a longer ring
0777   an agent's voicemail: answers, never presses 1
0778   answers and presses a wrong key (twice)
other  answers; an agent presses 1 after ``confirm_seconds``; the conversation lasts
       ``talk_seconds``
====== =====================================

The confirmation step behaves as in Asterisk: on a route with ``confirm = "key"`` the answered
agent leg moves to ``awaiting_confirmation``; a 1 dials the target, a voicemail (``0777``)
ends ``agent_not_confirmed`` after the route's ``confirm_timeout`` (capped by
``timeout_seconds``), a wrong key (``0778``) ends ``agent_not_confirmed`` after one repeat.

Timings come from the trunk's options in the configuration (:class:`SimulatedTrunkOptions`:
``ring_seconds``, ``answer_seconds``, ``slow_answer_seconds``, ``confirm_seconds``,
``talk_seconds``, ``timeout_seconds``), so tests and the demo can run it fast or slow. It is
what the demo and the console use.
"""

from __future__ import annotations

import asyncio
import logging

import attrs

from corecall.domain import CallState, EndReason
from corecall.hookspecs import hookimpl
from corecall.options import option, seconds
from corecall.supervision import log_crash
from corecall.telephony.driver import OriginateRequest, ProgressCallback, TrunkDriver

log = logging.getLogger(__name__)


@attrs.frozen
class SimulatedTrunkOptions:
    """The keys of a ``[trunks.X]`` table with ``driver = "simulated"`` (all in seconds)."""

    ring_seconds: float = option(1.0, doc="Seconds until a phone starts ringing.",
                                 validator=seconds(zero=True))  # fmt: skip
    answer_seconds: float = option(1.5, doc="Seconds of ringing before a normal answer.",
                                   validator=seconds(zero=True))  # fmt: skip
    slow_answer_seconds: float = option(4.0, doc="Seconds of ringing for numbers ending 0202.",
                                        validator=seconds(zero=True))  # fmt: skip
    confirm_seconds: float = option(
        2.0,
        doc="Seconds of the press-1 prompt before the agent presses 1.",
        validator=seconds(zero=True),
    )
    talk_seconds: float = option(5.0, doc="Seconds of conversation before the far end hangs up.",
                                 validator=seconds(zero=True))  # fmt: skip
    timeout_seconds: float = option(
        8.0,
        doc="Seconds before a never-answering number gives up (capped by [calls]).",
        validator=seconds(zero=True),
    )


_FAIL_RULES = {
    "0486": "busy",
    "0403": "rejected",
    "0503": "unreachable",
}


class SimulatedPBX(TrunkDriver):
    """Trunk driver ``simulated``."""

    NAME = "simulated"
    OPTIONS = SimulatedTrunkOptions

    def __init__(self, config) -> None:
        super().__init__(config)
        self._calls: dict[str, asyncio.Task] = {}
        self._hangups: dict[str, asyncio.Event] = {}

    def _timing(self, request: OriginateRequest, key: str) -> float:
        return float(getattr(self.trunk_options(request.trunk), key))

    async def originate(self, request: OriginateRequest, progress: ProgressCallback) -> None:
        hangup = asyncio.Event()
        self._hangups[request.call_id] = hangup
        task = asyncio.create_task(
            self._run(request, progress, hangup), name=f"simulated-call-{request.call_id}"
        )
        self._calls[request.call_id] = task
        task.add_done_callback(log_crash)
        call_id = request.call_id
        task.add_done_callback(lambda _t: self._forget(call_id))

    def _forget(self, call_id: str) -> None:
        self._calls.pop(call_id, None)
        self._hangups.pop(call_id, None)

    async def hangup(self, call_id: str) -> bool:
        event = self._hangups.get(call_id)
        if event is None:
            return False
        event.set()
        return True

    async def stop(self) -> None:
        # A real PBX keeps calls up when the bot stops; the simulation can't outlive the
        # process, so it ends them as a PBX restart would look: outcome unknown.
        for task in list(self._calls.values()):
            task.cancel()
        await asyncio.gather(*self._calls.values(), return_exceptions=True)

    async def _run(
        self, req: OriginateRequest, progress: ProgressCallback, hangup: asyncio.Event
    ) -> None:
        cid = req.call_id

        async def wait(seconds: float) -> bool:
            """Sleep; True when the agent hung up meanwhile."""
            try:
                async with asyncio.timeout(seconds):  # not wait_for: it can lose a cancel
                    await hangup.wait()
                return True
            except TimeoutError:
                return False

        def end(reason: EndReason, detail: str = "") -> None:
            progress(cid, CallState.ENDED, reason, detail)

        try:
            # ---- agent leg
            if await wait(self._timing(req, "ring_seconds")):
                return end(EndReason.CANCELLED, "hung up before the agent's phone rang")
            outcome = _outcome(req.agent_phone)
            if outcome in ("busy", "rejected", "unreachable"):
                return end(_AGENT_FAIL[outcome], f"agent phone {outcome}")
            progress(cid, CallState.AGENT_RINGING)
            ring = self._ring_time(req, outcome, req.agent_ring_timeout)
            if await wait(ring):
                return end(EndReason.CANCELLED, "hung up while the agent's phone rang")
            if outcome == "no_answer":
                return end(EndReason.AGENT_NO_ANSWER, "agent did not answer")
            progress(cid, CallState.AGENT_ANSWERED)
            # ---- confirmation: only the agent's own key, on the agent's leg, dials
            if req.confirm == "key":
                progress(cid, CallState.AWAITING_CONFIRMATION)
                if outcome == "voicemail":
                    wait_s = min(float(req.confirm_timeout), self._timing(req, "timeout_seconds"))
                    if await wait(self._timing(req, "confirm_seconds") + wait_s):
                        return end(EndReason.CANCELLED, "agent hung up during the prompt")
                    return end(
                        EndReason.AGENT_NOT_CONFIRMED,
                        f"no key within {req.confirm_timeout} s after the prompt (voicemail?)",
                    )
                if await wait(self._timing(req, "confirm_seconds")):
                    return end(EndReason.CANCELLED, "agent hung up during the prompt")
                if outcome == "wrong_key":
                    if await wait(self._timing(req, "confirm_seconds")):
                        return end(EndReason.CANCELLED, "agent hung up during the prompt")
                    return end(EndReason.AGENT_NOT_CONFIRMED, "a wrong key, twice")
            # ---- target leg
            progress(cid, CallState.DIALING_TARGET)
            if await wait(self._timing(req, "ring_seconds")):
                return end(EndReason.CANCELLED, "agent hung up while dialing")
            outcome = _outcome(req.target)
            if outcome in ("busy", "rejected", "unreachable"):
                return end(_TARGET_FAIL[outcome], f"target {outcome}")
            progress(cid, CallState.TARGET_RINGING)
            if await wait(self._ring_time(req, outcome, req.target_ring_timeout)):
                return end(EndReason.CANCELLED, "agent hung up while the target rang")
            if outcome == "no_answer":
                return end(EndReason.TARGET_NO_ANSWER, "target did not answer")
            progress(cid, CallState.CONNECTED)
            hung_up = await wait(self._timing(req, "talk_seconds"))
            end(EndReason.COMPLETED, "agent hung up" if hung_up else "target hung up")
        except asyncio.CancelledError:
            end(EndReason.UNKNOWN, "simulated PBX stopped")
            raise

    def _ring_time(self, req: OriginateRequest, outcome: str, timeout: int) -> float:
        if outcome == "no_answer":
            return min(float(timeout), self._timing(req, "timeout_seconds"))
        key = "slow_answer_seconds" if outcome == "slow" else "answer_seconds"
        return self._timing(req, key)


_AGENT_FAIL = {
    "busy": EndReason.AGENT_BUSY,
    "rejected": EndReason.AGENT_REJECTED,
    "unreachable": EndReason.TRUNK_UNAVAILABLE,
}
_TARGET_FAIL = {
    "busy": EndReason.TARGET_BUSY,
    "rejected": EndReason.TARGET_UNREACHABLE,
    "unreachable": EndReason.TARGET_UNREACHABLE,
}


def _outcome(number: str) -> str:
    tail = number[-4:]
    if tail in _FAIL_RULES:
        return _FAIL_RULES[tail]
    return _ANSWER_RULES.get(tail, "answer")


_ANSWER_RULES = {
    "0408": "no_answer",
    "0183": "no_answer",  # early media (183) only: rings as far as anyone can tell
    "0202": "slow",
    "0184": "slow",
    "0777": "voicemail",
    "0778": "wrong_key",
}


@hookimpl
def corecall_register_trunk_drivers(registry) -> None:
    registry.register(SimulatedPBX)
