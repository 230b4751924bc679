"""Event tracking: raw AMI event blocks → state changes of the calls a link tracks.

Correlation is by value only, never by timing or order: the Originate presets the agent
leg's unique id (``ChannelId: <call id>-a``), which Asterisk makes the ``Linkedid`` of every
channel of the call, both legs; the ``OriginateResponse`` carries our ``ActionID``
(``<call id>-o``).

Events → states (agent leg = the channel whose ``Uniqueid`` is ``<call id>-a``)

===================================================  ==========================================
event                                                effect
===================================================  ==========================================
Newstate ChannelState 5 (Ringing), agent leg;        AGENT_RINGING
DialState RINGING/PROGRESS of the agent leg
(``DestUniqueid``; PROGRESS is 183 with early media)
Newstate ChannelState 6 (Up), agent leg;             AGENT_ANSWERED
OriginateResponse Success
UserEvent CorecallConfirm ``Step: prompt``           AWAITING_CONFIRMATION (asked to press 1)
DialBegin from the agent leg                         DIALING_TARGET
Newstate ChannelState 5, other leg; DialState        TARGET_RINGING
RINGING/PROGRESS from the agent leg
DialEnd ANSWER; BridgeEnter                          CONNECTED
Hangup of the agent leg before it answered           final, from ``Cause`` (17 busy, 18/19 no
                                                     answer, or trunk if it never rang,
                                                     21/1/… rejected, 34/38/… trunk)
OriginateResponse Failure with no agent channel      final, from ``Reason`` (3 no answer,
                                                     5 busy, 8/1 rejected, 0 trunk)
UserEvent CorecallEnd (hangup handler, agent leg)    final, from ``DialStatus`` and
                                                     ``HangupCause`` (ANSWER completed, BUSY/17
                                                     busy, NOANSWER no answer, CONGESTION/
                                                     CHANUNAVAIL/21/34 unreachable, CANCEL or
                                                     none cancelled; ``Reason: not-confirmed``
                                                     agent_not_confirmed)
Hangup of the agent leg after it answered            the same, if CorecallEnd did not come
===================================================  ==========================================

The mapping of causes to end reasons is :mod:`corecall_asterisk.causes`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from corecall.domain import CallState, EndReason
from corecall.telephony.driver import ProgressCallback
from corecall_asterisk.actions import agent_uniqueid
from corecall_asterisk.causes import agent_leg_failure, end_after_answer, parse_int
from corecall_asterisk.render import CONFIRM_EVENT, END_EVENT

if TYPE_CHECKING:
    from corecall_asterisk.link import AmiLink


def header(block: str, key: str) -> str:
    """The value of header ``key`` (given as ``"\\r\\nName: "``) in a raw message block."""
    i = block.find(key)
    if i < 0:
        return ""
    i += len(key)
    j = block.find("\r\n", i)
    return block[i:] if j < 0 else block[i:j]


class TrackedCall:
    """What the driver knows about one live call. Small and flat: it is touched per event."""

    __slots__ = (
        "agent_channel",
        "answered",
        "call_id",
        "confirmed",
        "dial_status",
        "epoch",
        "fallback",
        "hangup_pending",
        "hangup_sent",
        "key",
        "link",
        "originate_reason",
        "pending_end",
        "progress",
        "state",
        "target_cause",
    )

    def __init__(self, call_id: str, progress: ProgressCallback, *, link: AmiLink | None = None):
        self.call_id = call_id
        self.key = agent_uniqueid(call_id)
        self.progress = progress
        self.link = link
        self.state = CallState.DIALING_AGENT
        self.agent_channel = ""  # e.g. PJSIP/corecall-main-00000001, once seen
        self.answered = False
        self.confirmed = False  # Asterisk acknowledged the Originate
        self.epoch = -1  # connection generation the Originate was written on (-1: before)
        self.dial_status = ""
        self.target_cause = ""
        self.originate_reason: int | None = None
        self.fallback: asyncio.TimerHandle | None = None
        self.hangup_pending = False
        self.hangup_sent = False  # we asked Asterisk to hang it up (AMI Hangup)
        # A normal end that nobody on the call caused (see SYSTEM_HANGUP_GRACE).
        self.pending_end: tuple[EndReason, str] | None = None


#: Only these events can change a call; everything else is dropped after one dict lookup.
_RELEVANT = frozenset(
    (
        "Newchannel", "Newstate", "DialBegin", "DialState", "DialEnd", "BridgeEnter", "Hangup",
        "UserEvent",
    )
)  # fmt: skip
#: DialState statuses that mean "the phone was reached and is alerting": 180 (RINGING) and
#: 183 with early media (PROGRESS), which many mobile networks send instead of 180.
_ALERTING = frozenset(("RINGING", "PROGRESS"))

#: If OriginateResponse says Failure but the agent channel's Hangup (with the precise cause)
#: has not arrived after this long, decide from the OriginateResponse reason alone.
ORIGINATE_FAILURE_GRACE = 2.0

#: A connected call that ends with cause 16 and an empty ``HangupSource`` was hung up by
#: nobody on it: by the phone system itself. When Asterisk shuts down (restart, ``core stop``)
#: it hangs every channel up exactly like that and only about a second later sends
#: ``Shutdown`` and closes the connection (measured in the lab: 1.1 s). Such an end is held
#: this long (seconds): if ``Shutdown`` or the link's loss follows, the call was cut by a
#: restart, not completed, and is recorded ``unknown``; otherwise (an operator's AMI or CLI
#: hangup) it is completed.
SYSTEM_HANGUP_GRACE = 3.0

#: The detail of a call cut by an Asterisk shutdown or restart.
CUT_BY_RESTART = (
    "Asterisk shut down or restarted while the call was up: the call was cut off, not completed"
)


class CallTracker:
    """Turns raw AMI event blocks into state changes of the calls it tracks.

    One per AMI connection. :meth:`feed` takes one message block (the text between blank
    lines, without them) and is the hot path: irrelevant events return after a dict lookup.
    """

    def __init__(self, on_agent_channel: Callable[[TrackedCall], None] | None = None):
        self.calls: dict[str, TrackedCall] = {}  # by agent unique id (= Linkedid)
        self.pbx_stopping = False  # Shutdown seen or link lost, until the next connection
        self._on_agent_channel = on_agent_channel
        self.events_seen = 0

    # ---- registry
    def track(self, call: TrackedCall) -> None:
        self.calls[call.key] = call

    def get(self, call_id: str) -> TrackedCall | None:
        return self.calls.get(agent_uniqueid(call_id))

    def advance(self, call: TrackedCall, state: CallState) -> None:
        if state.order > call.state.order:
            call.state = state
            if state is CallState.AGENT_ANSWERED or state.order > CallState.AGENT_ANSWERED.order:
                call.answered = True
            call.progress(call.call_id, state)

    def finish(self, call: TrackedCall, reason: EndReason, detail: str) -> None:
        if self.calls.pop(call.key, None) is None:
            return
        if call.fallback is not None:
            call.fallback.cancel()
            call.fallback = None
        call.state = CallState.ENDED
        call.progress(call.call_id, CallState.ENDED, reason, detail)

    # ---- the hot path
    def feed(self, block: str) -> None:
        """Apply one AMI event block (``Event: ...\\r\\n...``, no trailing blank line)."""
        nl = block.find("\r\n")
        name = block[7:nl] if nl > 0 else block[7:]
        if name == "OriginateResponse":
            self._originate_response(block)
            return
        if name not in _RELEVANT:
            return
        i = block.find("\r\nLinkedid: ")
        if i < 0:
            if name == "DialState":  # the Originate's own dial: only Dest* fields
                self._agent_dial_state(block)
            return  # e.g. the Originate's own dial of the agent leg (no calling channel)
        i += 12
        call = self.calls.get(block[i : i + 34])
        if call is None or block[i + 34 : i + 36] not in ("\r\n", ""):
            return
        self.events_seen += 1
        uid = header(block, "\r\nUniqueid: ")
        agent = uid == call.key
        if name == "Newstate":
            st = header(block, "\r\nChannelState: ")
            if agent:
                if st == "5":
                    self.advance(call, CallState.AGENT_RINGING)
                elif st == "6":
                    self.advance(call, CallState.AGENT_ANSWERED)
            elif st == "5":
                # The target's 180 can be published before the agent leg's DialBegin (they
                # come from different Asterisk threads): a ringing target was being dialed.
                self.advance(call, CallState.DIALING_TARGET)
                self.advance(call, CallState.TARGET_RINGING)
        elif name == "DialBegin":
            if agent:
                self.advance(call, CallState.DIALING_TARGET)
        elif name == "DialState":
            # From the agent leg: the target is alerting, by 180 or by 183 (early media).
            if agent and header(block, "\r\nDialStatus: ") in _ALERTING:
                self.advance(call, CallState.DIALING_TARGET)
                self.advance(call, CallState.TARGET_RINGING)
        elif name == "DialEnd":
            if agent:
                status = header(block, "\r\nDialStatus: ")
                call.dial_status = status
                if status == "ANSWER":
                    self.advance(call, CallState.CONNECTED)
        elif name == "BridgeEnter":
            self.advance(call, CallState.CONNECTED)
        elif name == "Newchannel":
            if agent:
                call.agent_channel = header(block, "\r\nChannel: ")
                if self._on_agent_channel is not None:
                    self._on_agent_channel(call)
        elif name == "Hangup":
            cause = parse_int(header(block, "\r\nCause: "))
            if not agent:
                tech = header(block, "\r\nTechCause: ")
                call.target_cause = f"SIP {tech}" if tech else f"cause {cause}"
                return
            if not call.answered:
                reason, detail = agent_leg_failure(
                    cause,
                    call.originate_reason,
                    header(block, "\r\nCause-txt: "),
                    header(block, "\r\nTechCause: "),
                    rang=call.state is CallState.AGENT_RINGING,
                )
            else:
                if call.pending_end is not None:
                    return  # its CorecallEnd came first and is being held (see pending_end)
                asked = call.state is CallState.AWAITING_CONFIRMATION
                reason, detail = end_after_answer(
                    call.dial_status, cause, "not-confirmed" if asked else "ok", call.target_cause
                )
            self.finish(call, reason, detail)
        elif name == "UserEvent":
            kind = header(block, "\r\nUserEvent: ")
            if kind == CONFIRM_EVENT:
                if agent and header(block, "\r\nStep: ") == "prompt":
                    self.advance(call, CallState.AWAITING_CONFIRMATION)
                return
            if kind != END_EVENT:
                return
            reason, detail = end_after_answer(
                header(block, "\r\nDialStatus: "),
                parse_int(header(block, "\r\nHangupCause: ")),
                header(block, "\r\nReason: "),
                header(block, "\r\nTargetCause: "),
            )
            if (
                reason is EndReason.COMPLETED
                and not header(block, "\r\nHangupSource: ")
                and not call.hangup_sent
            ):
                self._hold_system_hangup(call, reason, detail)
                return
            self.finish(call, reason, detail)

    def _hold_system_hangup(self, call: TrackedCall, reason: EndReason, detail: str) -> None:
        """A connected call hung up by nobody on it: hold the end (SYSTEM_HANGUP_GRACE)."""
        if self.pbx_stopping:
            self.finish(call, EndReason.UNKNOWN, CUT_BY_RESTART)
            return
        call.pending_end = (reason, detail + "; hung up by the phone system (not by a party)")
        if call.fallback is not None:
            call.fallback.cancel()
        call.fallback = asyncio.get_running_loop().call_later(
            SYSTEM_HANGUP_GRACE, self._release_held_end, call
        )

    def _release_held_end(self, call: TrackedCall) -> None:
        call.fallback = None
        if call.pending_end is not None:
            self.finish(call, *call.pending_end)

    def pbx_gone(self) -> None:
        """Asterisk said ``Shutdown`` or the link dropped: the calls it hung up just before
        were cut by the shutdown, not completed."""
        self.pbx_stopping = True
        for call in [c for c in self.calls.values() if c.pending_end is not None]:
            self.finish(call, EndReason.UNKNOWN, CUT_BY_RESTART)

    def pbx_back(self) -> None:
        """A new connection: Asterisk is not known to be stopping any more."""
        self.pbx_stopping = False

    def _agent_dial_state(self, block: str) -> None:
        """DialState of the agent leg itself (the Originate's dial has no calling channel, so
        only ``DestUniqueid``/``DestLinkedid``): 180 or 183 means the phone is alerting."""
        call = self.calls.get(header(block, "\r\nDestUniqueid: "))
        if call is None:
            return
        self.events_seen += 1
        if header(block, "\r\nDialStatus: ") in _ALERTING:
            self.advance(call, CallState.AGENT_RINGING)

    def _originate_response(self, block: str) -> None:
        aid = header(block, "\r\nActionID: ")
        if len(aid) != 34 or not aid.endswith("-o"):
            return
        call = self.calls.get(aid[:32] + "-a")
        if call is None:
            return
        self.events_seen += 1
        if header(block, "\r\nResponse: ") == "Success":
            self.advance(call, CallState.AGENT_ANSWERED)
            return
        call.originate_reason = parse_int(header(block, "\r\nReason: "))
        if call.agent_channel and not call.answered:
            # The agent channel exists: its Hangup (with the precise cause) is on its way.
            if call.fallback is None:
                call.fallback = asyncio.get_running_loop().call_later(
                    ORIGINATE_FAILURE_GRACE, self._originate_failed, call
                )
            return
        self._originate_failed(call)

    def _originate_failed(self, call: TrackedCall) -> None:
        call.fallback = None
        reason, detail = agent_leg_failure(
            None, call.originate_reason, rang=call.state is CallState.AGENT_RINGING
        )
        self.finish(call, reason, detail)

    # ---- snapshots (reconcile)
    def apply_channels(self, call: TrackedCall, channels: list[dict[str, str]]) -> None:
        """Advance ``call`` from a ``Status`` snapshot of its channels."""
        for ch in channels:
            state = ch.get("ChannelState", "")
            bridged = bool(ch.get("BridgeID") or ch.get("BridgeId"))
            if ch.get("Uniqueid") == call.key:
                call.agent_channel = ch.get("Channel", call.agent_channel)
                if state == "5":
                    self.advance(call, CallState.AGENT_RINGING)
                elif state == "6":
                    self.advance(call, CallState.AGENT_ANSWERED)
                    if ch.get("Application") in ("Read", "Playback"):  # the confirmation step
                        self.advance(call, CallState.AWAITING_CONFIRMATION)
                    elif ch.get("Application") == "Dial":
                        self.advance(call, CallState.DIALING_TARGET)
                if bridged:
                    self.advance(call, CallState.CONNECTED)
        for ch in channels:
            if ch.get("Uniqueid") != call.key:
                if ch.get("ChannelState") == "5":
                    self.advance(call, CallState.TARGET_RINGING)
                elif ch.get("BridgeID") or ch.get("BridgeId"):
                    self.advance(call, CallState.CONNECTED)
