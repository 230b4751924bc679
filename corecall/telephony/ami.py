"""The Asterisk AMI trunk driver (``asterisk_ami``), built on panoramisk.

One AMI connection (:class:`AmiLink`) per ``[asterisk_servers.NAME]`` used by a trunk, each
with its own reconnect loop. What this module guarantees, and how:

Connection
    Connect and log in with a timeout (``action_timeout``). A dead connection is found by our
    own ping: every ``ping_interval`` seconds a ``Ping`` must get its ``Pong`` within
    ``action_timeout``, else the transport is aborted (panoramisk's own ping never waits for a
    reply, so it misses half-open connections). Reconnects back off exponentially, capped.

Never twice
    panoramisk re-queues actions that got no reply when a connection closes
    (``AMIProtocol.close`` → ``Manager.awaiting_actions``) and re-sends them on the next
    ``FullyBooted`` (``Manager.send_awaiting_actions``). Here an Originate never goes through
    panoramisk's action table at all: the driver writes its bytes itself and waits for the
    reply in its own table, which is failed, never replayed, when the link drops. For the other
    actions the protocol fails pending futures on connection loss instead of re-queueing them,
    ``send_awaiting_actions`` is a no-op and ``originate`` is listed as forgettable (three
    independent locks on the same door). Every awaited action has its own timeout.

Correlation
    The Originate presets the agent leg's unique id (``ChannelId: <call id>-a``); Asterisk
    makes it the ``Linkedid`` of every channel of the call, both legs. The
    ``OriginateResponse`` carries our ``ActionID`` (``<call id>-o``). Events are matched by
    those values only, never by timing or order.

Fate unknown
    If the link drops while an Originate is in flight, the call is not re-sent: after the
    reconnect the driver asks Asterisk (``Status``) whether the call has channels.
    If so, it keeps tracking it (its events keep coming); if not, the call ends ``unknown``
    with a detail that says so. The same reconcile runs after every reconnect for every call
    placed before it, and at start-up for calls a previous run left unfinished.

Injection guard
    Every action is built here from validated values and checked again just before it is
    written: no CR, LF or NUL in any header; numbers are ``+`` and digits; endpoint and
    context names are ``[A-Za-z0-9_-]``; nothing in a ``Variable`` value can contain ``,``;
    nothing in a dial string can contain ``/``, ``@`` or ``&``. Anything else raises
    :class:`~corecall.errors.UnsafeValueError` and nothing is written.

Events → states (agent leg = the channel whose ``Uniqueid`` is ``<call id>-a``)

===================================================  ==========================================
event                                                effect
===================================================  ==========================================
Newstate ChannelState 5 (Ringing), agent leg         AGENT_RINGING
Newstate ChannelState 6 (Up), agent leg;             AGENT_ANSWERED
OriginateResponse Success
DialBegin from the agent leg                         DIALING_TARGET
Newstate ChannelState 5, other leg                   TARGET_RINGING
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
                                                     none cancelled)
Hangup of the agent leg after it answered            the same, if CorecallEnd did not come
===================================================  ==========================================
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from corecall.domain import CallState, EndReason, TrunkConfig, is_e164
from corecall.errors import TelephonyError, UnsafeValueError
from corecall.hookspecs import hookimpl
from corecall.telephony.driver import OriginateRequest, ProgressCallback, TrunkDriver

if TYPE_CHECKING:
    from corecall.config import AmiServerConfig, Config
    from corecall.domain import CallRecord

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------ injection guard

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")
_HEADER_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,40}")
_CALL_ID_RE = re.compile(r"[0-9a-f]{32}")
_VARIABLE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,40}")
_BAD_HEADER_CHARS = ("\r", "\n", "\0")


def check_header(name: str, value: str) -> None:
    """Raise :class:`UnsafeValueError` unless ``name: value`` is one harmless AMI header line."""
    if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
        raise UnsafeValueError(f"AMI header name {name!r} is not allowed")
    if not isinstance(value, str):
        raise UnsafeValueError(f"AMI header {name} must be text, got {type(value).__name__}")
    if any(c in value for c in _BAD_HEADER_CHARS):
        raise UnsafeValueError(f"AMI header {name} contains CR, LF or NUL: {value!r}")


def check_name(value: object, what: str) -> str:
    """Endpoint, context and similar names: ``[A-Za-z0-9_-]`` only."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise UnsafeValueError(f"{what} must be letters, digits, '_' or '-' only, got {value!r}")
    return value


def check_number(value: object, what: str) -> str:
    """A number that reaches a dial string or caller ID: ``+`` and digits (E.164) only."""
    if not is_e164(value):
        raise UnsafeValueError(f"{what} must be + and digits only (E.164), got {value!r}")
    return value  # type: ignore[return-value]


def check_dial_part(value: str, what: str) -> str:
    """A piece of ``PJSIP/<number>@<endpoint>``: PJSIP splits on ``/``, ``@`` and ``&``."""
    if any(c in value for c in "/@&,;|\r\n\0 "):
        raise UnsafeValueError(f"{what} contains a dial-string separator: {value!r}")
    return value


def check_variable(name: str, value: str) -> str:
    """One ``NAME=value`` of the Originate ``Variable`` header (split on ``,`` by Asterisk)."""
    if not _VARIABLE_RE.fullmatch(name):
        raise UnsafeValueError(f"channel variable name {name!r} is not allowed")
    if any(c in value for c in ",=\r\n\0") or not value:
        raise UnsafeValueError(f"channel variable {name} has an unsafe value {value!r}")
    return f"{name}={value}"


def action_bytes(headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise one AMI action after checking every header. Raises UnsafeValueError."""
    lines = []
    for name, value in headers:
        check_header(name, value)
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("ascii", "strict")


def originate_action_id(call_id: str) -> str:
    return f"{call_id}-o"


def agent_uniqueid(call_id: str) -> str:
    return f"{call_id}-a"


def build_originate(request: OriginateRequest, *, context: str) -> bytes:
    """The Originate for ``request``, exactly as the bridge dialplan expects it.

    Everything is re-checked here even though :class:`OriginateRequest` validated it on
    construction: this is the last gate before the socket.
    """
    call_id = request.call_id
    if not isinstance(call_id, str) or not _CALL_ID_RE.fullmatch(call_id):
        raise UnsafeValueError(f"call id must be 32 lower-case hex characters, got {call_id!r}")
    agent = check_dial_part(check_number(request.agent_phone, "agent phone"), "agent phone")
    target = check_number(request.target, "target")
    caller_id = check_number(request.caller_id, "caller ID")
    agent_caller_id = check_number(request.agent_caller_id, "agent leg caller ID")
    endpoint = check_dial_part(
        check_name(request.trunk.endpoint, f"trunk {request.trunk.name!r} endpoint"), "endpoint"
    )
    check_name(context, "dialplan context")
    agent_ms = _bounded_int(request.agent_ring_timeout, "agent ring timeout", 1, 600) * 1000
    dial_s = _bounded_int(request.target_ring_timeout, "target ring timeout", 1, 3600)
    variables = ",".join(
        (
            check_variable("CORECALL_CALL_ID", call_id),
            check_variable("CORECALL_TRUNK", endpoint),
            check_variable("CORECALL_CALLER_ID", caller_id),
            check_variable("CORECALL_DIAL_TIMEOUT", str(dial_s)),
        )
    )
    return action_bytes(
        (
            ("Action", "Originate"),
            ("ActionID", originate_action_id(call_id)),
            ("Channel", f"PJSIP/{agent}@{endpoint}"),
            ("Context", context),
            ("Exten", target),
            ("Priority", "1"),
            # The agent's phone shows an operator-owned number (the route's), never the
            # target's: carriers that enforce caller-ID ownership answer 403 otherwise.
            ("CallerID", agent_caller_id),
            ("Timeout", str(agent_ms)),
            ("ChannelId", agent_uniqueid(call_id)),
            ("Variable", variables),
            ("Async", "true"),
        )
    )


def _bounded_int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeValueError(f"{what} must be a whole number {low}-{high}, got {value!r}")
    return value


# ------------------------------------------------------------------------------ outcome mapping

#: Q.850 causes, grouped by what they mean for corecall.
BUSY_CAUSES = frozenset({17})
NO_ANSWER_CAUSES = frozenset({18, 19})
#: The far end (or its network) said no: 403/603 (21), 404 (1), 410 (22), 484 (28), ...
REJECTED_CAUSES = frozenset({1, 2, 3, 20, 21, 22, 28})
#: The trunk or the network could not carry the call: 503 (34), 500 (38), 502 (27), ...
UNAVAILABLE_CAUSES = frozenset({27, 34, 38, 41, 42, 44, 47, 58, 63, 65, 79, 88, 102, 111, 127})

#: OriginateResponse ``Reason`` (an AST_CONTROL value, not a hangup cause).
_ORIGINATE_REASONS = {
    1: (EndReason.AGENT_REJECTED, "the agent's phone hung up while ringing"),
    3: (EndReason.AGENT_NO_ANSWER, "the agent did not answer"),
    5: (EndReason.AGENT_BUSY, "the agent's phone is busy"),
    8: (EndReason.AGENT_REJECTED, "the agent's phone rejected the call (congestion)"),
}


def _int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def agent_leg_failure(
    cause: int | None,
    originate_reason: int | None,
    cause_text: str = "",
    tech: str = "",
    *,
    rang: bool = True,
) -> tuple[EndReason, str]:
    """Why a call ended when the agent's own phone never answered.

    ``rang``: the agent leg reported Ringing. A leg that times out without ever ringing
    never reached a phone: the trunk (provider) did not answer at all.
    """
    sip = f" (SIP {tech})" if tech else ""
    no_answer = cause in NO_ANSWER_CAUSES or (cause is None and originate_reason == 3)
    if no_answer and not rang:
        return EndReason.TRUNK_UNAVAILABLE, (
            "the trunk never answered the agent leg (no ringing before the timeout): is the "
            "provider reachable?"
        )
    if cause in BUSY_CAUSES:
        return EndReason.AGENT_BUSY, f"the agent's phone is busy{sip}"
    if cause in NO_ANSWER_CAUSES:
        return EndReason.AGENT_NO_ANSWER, "the agent did not answer"
    if cause in REJECTED_CAUSES or cause == 16:
        return EndReason.AGENT_REJECTED, f"the agent's phone rejected the call{sip}"
    if cause in UNAVAILABLE_CAUSES:
        what = cause_text or f"cause {cause}"
        return EndReason.TRUNK_UNAVAILABLE, f"the trunk could not reach the agent: {what}{sip}"
    if originate_reason in _ORIGINATE_REASONS:
        return _ORIGINATE_REASONS[originate_reason]
    detail = "Asterisk could not place the agent leg"
    if cause is not None:
        detail += f" (cause {cause}{' ' + cause_text if cause_text else ''}){sip}"
    elif originate_reason is not None:
        detail += f" (OriginateResponse reason {originate_reason})"
    return EndReason.TRUNK_UNAVAILABLE, detail


def end_after_answer(
    dial_status: str, cause: int | None, dialplan_reason: str = "ok", target_cause: str = ""
) -> tuple[EndReason, str]:
    """Why a call ended once the agent had answered (the bridge dialplan ran)."""
    if dialplan_reason and dialplan_reason != "ok":
        detail = f"the bridge dialplan refused the call ({dialplan_reason})"
        if dialplan_reason in ("invalid-target", "no-such-target"):
            return EndReason.TARGET_UNREACHABLE, detail
        return EndReason.TRUNK_UNAVAILABLE, detail
    why = f" ({target_cause})" if target_cause and "200 OK" not in target_cause else ""
    if dial_status == "ANSWER":
        return EndReason.COMPLETED, "call completed"
    if dial_status in ("CANCEL", ""):
        return EndReason.CANCELLED, "the agent hung up before the target answered"
    if dial_status == "BUSY" or cause in BUSY_CAUSES:
        return EndReason.TARGET_BUSY, f"the target is busy{why}"
    if dial_status == "NOANSWER" and (cause is None or cause in NO_ANSWER_CAUSES | {0, 16}):
        return EndReason.TARGET_NO_ANSWER, "the target did not answer"
    if dial_status in ("NOANSWER", "CONGESTION", "CHANUNAVAIL"):
        return EndReason.TARGET_UNREACHABLE, (
            f"the target could not be reached: {dial_status.lower()}, cause {cause}{why}"
        )
    return EndReason.UNKNOWN, f"unexpected dial status {dial_status!r} (cause {cause})"


# ------------------------------------------------------------------------------ call tracking


def _header(block: str, key: str) -> str:
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
        "key",
        "link",
        "originate_reason",
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


#: Only these events can change a call; everything else is dropped after one dict lookup.
_RELEVANT = frozenset(
    ("Newchannel", "Newstate", "DialBegin", "DialEnd", "BridgeEnter", "Hangup", "UserEvent")
)

#: If OriginateResponse says Failure but the agent channel's Hangup (with the precise cause)
#: has not arrived after this long, decide from the OriginateResponse reason alone.
ORIGINATE_FAILURE_GRACE = 2.0


class CallTracker:
    """Turns raw AMI event blocks into state changes of the calls it tracks.

    One per AMI connection. :meth:`feed` takes one message block (the text between blank
    lines, without them) and is the hot path: irrelevant events return after a dict lookup.
    """

    def __init__(self, on_agent_channel: Callable[[TrackedCall], None] | None = None):
        self.calls: dict[str, TrackedCall] = {}  # by agent unique id (= Linkedid)
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
            return  # e.g. the Originate's own dial of the agent leg (no calling channel)
        i += 12
        call = self.calls.get(block[i : i + 34])
        if call is None or block[i + 34 : i + 36] not in ("\r\n", ""):
            return
        self.events_seen += 1
        uid = _header(block, "\r\nUniqueid: ")
        agent = uid == call.key
        if name == "Newstate":
            st = _header(block, "\r\nChannelState: ")
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
        elif name == "DialEnd":
            if agent:
                status = _header(block, "\r\nDialStatus: ")
                call.dial_status = status
                if status == "ANSWER":
                    self.advance(call, CallState.CONNECTED)
        elif name == "BridgeEnter":
            self.advance(call, CallState.CONNECTED)
        elif name == "Newchannel":
            if agent:
                call.agent_channel = _header(block, "\r\nChannel: ")
                if self._on_agent_channel is not None:
                    self._on_agent_channel(call)
        elif name == "Hangup":
            cause = _int(_header(block, "\r\nCause: "))
            if not agent:
                tech = _header(block, "\r\nTechCause: ")
                call.target_cause = f"SIP {tech}" if tech else f"cause {cause}"
                return
            if not call.answered:
                reason, detail = agent_leg_failure(
                    cause,
                    call.originate_reason,
                    _header(block, "\r\nCause-txt: "),
                    _header(block, "\r\nTechCause: "),
                    rang=call.state is CallState.AGENT_RINGING,
                )
            else:
                reason, detail = end_after_answer(call.dial_status, cause, "ok", call.target_cause)
            self.finish(call, reason, detail)
        elif name == "UserEvent":
            if _header(block, "\r\nUserEvent: ") != "CorecallEnd":
                return
            reason, detail = end_after_answer(
                _header(block, "\r\nDialStatus: "),
                _int(_header(block, "\r\nHangupCause: ")),
                _header(block, "\r\nReason: "),
                _header(block, "\r\nTargetCause: "),
            )
            self.finish(call, reason, detail)

    def _originate_response(self, block: str) -> None:
        aid = _header(block, "\r\nActionID: ")
        if len(aid) != 34 or not aid.endswith("-o"):
            return
        call = self.calls.get(aid[:32] + "-a")
        if call is None:
            return
        self.events_seen += 1
        if _header(block, "\r\nResponse: ") == "Success":
            self.advance(call, CallState.AGENT_ANSWERED)
            return
        call.originate_reason = _int(_header(block, "\r\nReason: "))
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
                    if ch.get("Application") == "Dial":
                        self.advance(call, CallState.DIALING_TARGET)
                if bridged:
                    self.advance(call, CallState.CONNECTED)
        for ch in channels:
            if ch.get("Uniqueid") != call.key:
                if ch.get("ChannelState") == "5":
                    self.advance(call, CallState.TARGET_RINGING)
                elif ch.get("BridgeID") or ch.get("BridgeId"):
                    self.advance(call, CallState.CONNECTED)


# ------------------------------------------------------------------------------ panoramisk glue


class LinkLost(TelephonyError):
    """The AMI connection dropped before Asterisk answered an action."""


class AmiLoginError(TelephonyError):
    """Asterisk refused the login (wrong username/secret, or this host is not permitted)."""


class _Protocol(AMIProtocol):
    """panoramisk's protocol with a fast event path and no re-sending of anything.

    Responses (and list events that belong to a pending panoramisk action) go through
    panoramisk's own parsing and futures. Call events go straight to the link's
    :class:`CallTracker` as raw text.
    """

    def __init__(self, link: AmiLink) -> None:
        super().__init__()
        self.link = link
        self._buf = ""
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._buf = ""

    def data_received(self, data: bytes) -> None:
        text = self._decode(data)  # incremental: a character split across reads survives
        if self._buf:
            text = self._buf + text
        blocks = text.split("\r\n\r\n")
        self._buf = blocks.pop()
        link = self.link
        feed = link.tracker.feed
        for block in blocks:
            if not block.startswith(("Event: ", "Response: ")):
                block = block.strip("\r\n")  # stray line ends, the greeting line
                if block.startswith("Asterisk Call Manager/"):
                    block = block.partition("\r\n")[2]
                if not block:
                    continue
            if block.startswith("Event: "):
                if self.responses and "\r\nActionID: " in block:
                    aid = _header(block, "\r\nActionID: ")
                    if aid in self.responses:  # part of a list a panoramisk action awaits
                        msg = Message.from_line(block)
                        if msg is not None:
                            self.handle_message(msg)
                        continue
                if block.startswith("Event: Shutdown\r\n"):
                    link.asterisk_shutting_down = True
                feed(block)
                continue
            msg = Message.from_line(block)
            if msg is None:
                continue
            waiter = link.originates.pop(msg.action_id, None) if msg.action_id else None
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(msg)
                continue
            self.handle_message(msg)

    def connection_lost(self, exc) -> None:
        # Do NOT call AMIProtocol.close(): it would queue unanswered actions for re-sending.
        if self.closed:
            return
        self.closed = True
        self.fail_pending(LinkLost("the AMI connection dropped before Asterisk answered"))
        self.link._connection_lost(self, exc)

    def fail_pending(self, error: Exception) -> None:
        responses, self.responses = self.responses, {}
        for action in responses.values():
            if not action.future.done():
                action.future.set_exception(error)
                action.future.exception()  # mark retrieved: nobody may be waiting any more

    def close(self) -> None:
        self.fail_pending(LinkLost("the AMI connection was closed"))
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self.transport.close()


class _Manager(Manager):
    """panoramisk's Manager as the protocol's factory, with every automatic behaviour off:
    no reconnect of its own, no ping of its own, no re-sending of awaiting actions."""

    def __init__(self, link: AmiLink, **config: Any) -> None:
        super().__init__(
            forgetable_actions=("ping", "login", "originate", "hangup"),
            reconnect_timeout=3600,
            **config,
        )
        self.link = link

    def connection_lost(self, exc) -> None:  # pragma: no cover - the protocol never calls it
        self._drop_awaiting()

    async def send_awaiting_actions(self, *_) -> None:
        self._drop_awaiting()

    def _drop_awaiting(self) -> None:
        while self.awaiting_actions:
            action = self.awaiting_actions.popleft()
            if not action.future.done():
                action.future.set_exception(LinkLost("not re-sent after a reconnect"))
                action.future.exception()

    def connect(self, *args, **kwargs):  # pragma: no cover - AmiLink connects
        raise RuntimeError("AmiLink manages the connection")

    def ping(self) -> None:  # pragma: no cover - AmiLink pings and waits for the pong
        pass


# ------------------------------------------------------------------------------ one AMI link


class AmiLink:
    """One AMI connection to one Asterisk server, with login, ping, backoff and reconcile."""

    #: Reconnect backoff: first delay, cap, factor. Jitter is +-10 %.
    reconnect_initial = 0.25
    reconnect_max = 15.0
    reconnect_factor = 2.0
    #: Calls on a link that stays down this long end as ``unknown``.
    lost_link_grace = 120.0

    def __init__(self, server: AmiServerConfig) -> None:
        self.server = server
        self.tracker = CallTracker(on_agent_channel=self._agent_channel_seen)
        self.manager = _Manager(
            self,
            host=server.host,
            port=server.port,
            username=server.username,
            secret=server.secret,
        )
        self.originates: dict[str, asyncio.Future] = {}
        self.protocol: _Protocol | None = None
        self.epoch = 0
        self.connected = asyncio.Event()
        self.last_error = "not connected yet"
        self.last_loss = ""  # why the previous connection ended (kept across reconnects)
        self.asterisk_shutting_down = False
        self.write_observer: Callable[[str], None] | None = None
        self._lost: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._down_since: float | None = time.monotonic()
        self._closing = False
        self._first_attempt = asyncio.Event()
        self._background: set[asyncio.Task] = set()
        self.connects = 0

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def is_up(self) -> bool:
        return self.connected.is_set() and self.protocol is not None and not self.protocol.closed

    def describe(self) -> str:
        return f"Asterisk {self.name!r} (AMI {self.server.host}:{self.server.port})"

    # ---- lifecycle
    async def start(self, wait: float | None = None) -> None:
        """Start the connection loop; wait (bounded) for the first login."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name=f"corecall-ami-{self.name}")
        if wait:
            # Until the first attempt ends either way: a refused login or connection is not
            # worth waiting for, a slow one is.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_attempt.wait(), wait)

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._close_protocol()
        for call in list(self.tracker.calls.values()):
            if call.fallback is not None:
                call.fallback.cancel()

    def _close_protocol(self) -> None:
        proto, self.protocol = self.protocol, None
        self.connected.clear()
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
                self.last_error = _describe_error(exc)
                self._first_attempt.set()
                log.warning("%s: %s; retrying in %.1f s", self.describe(), self.last_error, delay)
                self._give_up_on_calls_if_down_too_long()
                await asyncio.sleep(delay * random.uniform(0.9, 1.1))
                delay = min(delay * self.reconnect_factor, self.reconnect_max)
                continue
            delay = self.reconnect_initial
            self._first_attempt.set()
            log.info("%s: connected and logged in", self.describe())
            self._spawn(self._reconcile_after_connect(self.epoch))
            try:
                await self._ping_until_lost()
            finally:
                self.last_loss = self.last_error or "the connection closed"
                self._close_protocol()
                self._down_since = time.monotonic()
            if not self._closing:
                log.warning("%s: connection lost (%s)", self.describe(), self.last_error)

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.server.action_timeout
        self._lost = asyncio.Event()
        self.asterisk_shutting_down = False
        _transport, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), self.server.host, self.server.port),
            timeout,
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
        self.connected.set()

    async def _ping_until_lost(self) -> None:
        assert self._lost is not None
        lost = self._lost
        interval = max(0.05, self.server.ping_interval)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), interval)
            if lost.is_set():
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

    def _connection_lost(self, proto: _Protocol, exc: BaseException | None) -> None:
        if proto is not self.protocol:
            return
        self.connected.clear()
        if self.asterisk_shutting_down:
            self.last_error = "Asterisk shut down"
        elif exc is not None:
            self.last_error = _describe_error(exc)
        elif not self.last_error:
            self.last_error = "Asterisk closed the connection"
        self.last_loss = self.last_error
        self._fail_originates(LinkLost(f"the AMI connection dropped ({self.last_error})"))
        if self._lost is not None:
            self._lost.set()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        action = Action(headers)
        fut = proto.send(action, as_list=None)  # None: panoramisk detects lists itself
        try:
            return await asyncio.wait_for(fut, timeout or self.server.action_timeout)
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
            log.warning("call %s: hangup failed: %s", call.call_id, _describe_error(exc))

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
            for call in calls:
                self.tracker.finish(
                    call, EndReason.UNKNOWN,
                    "the AMI link dropped and Asterisk could not be asked about the call "
                    f"afterwards ({_describe_error(exc)})",
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


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is Asterisk running and manager.conf enabled?)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


# ------------------------------------------------------------------------------ the driver


class AsteriskAmiDriver(TrunkDriver):
    """Trunk driver ``asterisk_ami``: places calls through Asterisk over AMI."""

    NAME = "asterisk_ami"

    #: How long :meth:`start` waits for the first login of each server.
    start_wait = 5.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.links: dict[str, AmiLink] = {}
        for trunk in config.trunks.values():
            if trunk.driver == self.NAME and trunk.server and trunk.server not in self.links:
                server = config.asterisk_servers.get(trunk.server)
                if server is not None:
                    self.links[trunk.server] = AmiLink(server)

    async def start(self) -> None:
        await asyncio.gather(
            *(link.start(wait=min(self.start_wait, link.server.action_timeout * 2))
              for link in self.links.values())
        )  # fmt: skip
        for link in self.links.values():
            if not link.is_up:
                log.warning("%s is not reachable yet: %s", link.describe(), link.last_error)

    async def stop(self) -> None:
        await asyncio.gather(*(link.stop() for link in self.links.values()))

    def problems(self) -> list[str]:
        return [
            f"cannot reach {link.describe()}: {link.last_error}"
            for link in self.links.values()
            if not link.is_up
        ]

    def link_for(self, trunk: TrunkConfig) -> AmiLink:
        link = self.links.get(trunk.server or "")
        if link is None:
            raise TelephonyError(
                f"trunk {trunk.name!r} names no configured Asterisk server "
                f"(server = {trunk.server!r})"
            )
        return link

    def _find(self, call_id: str) -> TrackedCall | None:
        key = agent_uniqueid(call_id)
        for link in self.links.values():
            call = link.tracker.calls.get(key)
            if call is not None:
                return call
        return None

    async def originate(self, request: OriginateRequest, progress: ProgressCallback) -> None:
        link = self.link_for(request.trunk)
        payload = build_originate(request, context=link.server.context)
        if not link.is_up:
            raise TelephonyError(f"{link.describe()} is not connected: {link.last_error}")
        call = TrackedCall(request.call_id, progress, link=link)
        fut = link.write_originate(call, payload)
        try:
            reply = await asyncio.wait_for(fut, link.server.action_timeout)
        except LinkLost:
            log.warning(
                "call %s: the AMI link dropped with the Originate in flight; NOT re-sending it, "
                "its fate is decided after the reconnect", request.call_id,
            )  # fmt: skip
            return
        except TimeoutError:
            link.originates.pop(originate_action_id(request.call_id), None)
            log.warning(
                "call %s: no reply to the Originate within %g s; NOT re-sending it, its events "
                "or the reconcile after a reconnect decide it",
                request.call_id, link.server.action_timeout,
            )  # fmt: skip
            return
        if reply.get("Response") != "Success":
            link.tracker.calls.pop(call.key, None)
            raise TelephonyError(
                f"Asterisk {link.name!r} refused the Originate: {reply.get('Message') or reply}"
            )
        call.confirmed = True

    async def hangup(self, call_id: str) -> bool:
        if not isinstance(call_id, str) or not _CALL_ID_RE.fullmatch(call_id):
            raise UnsafeValueError(f"call id must be 32 lower-case hex characters: {call_id!r}")
        call = self._find(call_id)
        if call is None or call.link is None:
            return False
        if not call.agent_channel and call.state is CallState.DIALING_AGENT:
            # The agent channel may not exist yet: hang up as soon as it shows up, and try now.
            call.hangup_pending = True
        try:
            done = await call.link.hangup(call)
        except (TelephonyError, TimeoutError) as exc:
            log.warning("call %s: hangup failed: %s", call_id, _describe_error(exc))
            return call.hangup_pending
        if done:
            call.hangup_pending = False
        return done or call.hangup_pending

    async def reconcile(self, calls: list[CallRecord], progress: ProgressCallback) -> None:
        """Calls a previous run left unfinished: keep tracking those Asterisk still has a
        channel for, end the others as ``unknown``."""
        by_link: dict[str, list[TrackedCall]] = {}
        for record in calls:
            trunk = self.config.trunks.get(record.trunk)
            link = self.links.get(trunk.server or "") if trunk else None
            if link is None or not _CALL_ID_RE.fullmatch(record.id):
                progress(
                    record.id, CallState.ENDED, EndReason.UNKNOWN,
                    "ended while corecall was down; its Asterisk server is no longer configured",
                )  # fmt: skip
                continue
            call = TrackedCall(record.id, progress, link=link)
            call.state = record.state
            call.answered = record.agent_answered_at is not None
            call.confirmed = True
            call.epoch = -2
            link.tracker.track(call)
            by_link.setdefault(link.name, []).append(call)
        for name, tracked in by_link.items():
            link = self.links[name]
            if link.is_up:
                await link._reconcile_after_connect(link.epoch + 1)
            else:
                log.warning(
                    "%s is down: %d unfinished call(s) will be reconciled when it is back",
                    link.describe(), len(tracked),
                )  # fmt: skip


# ------------------------------------------------------------------------------ asterisk check


@attrs.frozen
class CheckResult:
    """One line of ``corecall asterisk check``."""

    ok: bool
    what: str
    fix: str = ""
    warning: bool = False


async def check_server(
    server: AmiServerConfig, endpoints: dict[str, str], *, timeout: float | None = None
) -> list[CheckResult]:
    """Check one Asterisk server: AMI reachable, login, privileges, endpoints, bridge context.

    ``endpoints`` maps each PJSIP endpoint name to a description of who uses it (route and
    trunk). Nothing is dialed. Endpoints and contexts are looked up with ``Getvar`` of
    ``PJSIP_ENDPOINT()`` / ``DIALPLAN_EXISTS()`` (``call`` privilege); when those functions
    are not loaded, ``PJSIPQualify`` / ``ShowDialPlan`` are tried (``reporting``).
    """
    results: list[CheckResult] = []
    where = f"{server.name} ({server.host}:{server.port})"
    link = AmiLink(attrs.evolve(server, action_timeout=timeout or server.action_timeout))
    try:
        await link._connect_once()
    except AmiLoginError as exc:
        results.append(CheckResult(True, f"{where}: AMI reachable"))
        results.append(
            CheckResult(
                False, f"{where}: {exc.args[0].split(':')[0]}",
                f"use the same secret in manager.conf [{server.username}] and in "
                f"[asterisk_servers.{server.name}] secret (or CORECALL_AMI_SECRET_"
                f"{server.name.upper()}); the [{server.username}] permit= must allow this host; "
                "then `manager reload` in Asterisk",
            )
        )  # fmt: skip
        return results
    except (OSError, TimeoutError, TelephonyError) as exc:
        results.append(
            CheckResult(
                False, f"{where}: AMI not reachable: {_describe_error(exc)}",
                f"start Asterisk; in manager.conf set enabled=yes, bindaddr={server.host}, "
                f"port={server.port} (or fix [asterisk_servers.{server.name}] host/port)",
            )
        )  # fmt: skip
        return results
    try:
        results.append(
            CheckResult(True, f"{where}: AMI reachable, logged in as {server.username!r}")
        )
        results.extend(await _check_privileges(link, where, server))
        results.extend(await _check_endpoints(link, where, endpoints))
        results.extend(await _check_context(link, where, server.context))
    finally:
        link._close_protocol()
    return results


_NEEDED_ACTIONS = {
    "Originate": "originate",
    "Hangup": "call",
    "Status": "call",
    "Getvar": "call",
}


async def _check_privileges(link: AmiLink, where: str, server) -> list[CheckResult]:
    reply = await link.action({"Action": "ListCommands"})
    allowed = {k for k in reply if k not in ("Response", "ActionID", "Message")}
    missing = {a: c for a, c in _NEEDED_ACTIONS.items() if a not in allowed}
    out = []
    if missing:
        classes = ",".join(sorted(set(missing.values())))
        out.append(
            CheckResult(
                False, f"{where}: AMI user {server.username!r} may not use "
                f"{', '.join(sorted(missing))}",
                f"in manager.conf [{server.username}] set write=originate,call "
                f"(missing: {classes}) and read=call,user,system; then `manager reload`",
            )
        )  # fmt: skip
    else:
        out.append(CheckResult(True, f"{where}: privileges suffice (write=originate,call)"))
    extra = sorted(a for a in ("Command", "Reload", "UpdateConfig", "GetConfig") if a in allowed)
    if extra:
        out.append(
            CheckResult(
                True, f"{where}: AMI user {server.username!r} can also use {', '.join(extra)}; "
                "corecall does not need that",
                "remove system, command and config from write= in manager.conf", warning=True,
            )
        )  # fmt: skip
    return out


async def _getvar(link: AmiLink, expression: str) -> str:
    reply = await link.action({"Action": "Getvar", "Variable": expression})
    return reply.get("Value", "") if reply.success else ""


async def _check_endpoints(link: AmiLink, where: str, endpoints: dict[str, str]):
    """One result per endpoint. PJSIP_ENDPOINT (func_pjsip_endpoint) needs only ``call``;
    every existing endpoint has a context, so an empty answer means "no such endpoint" once
    any endpoint answered (the function is loaded), else it is ambiguous."""
    contexts: dict[str, str] = {}
    out: list[CheckResult] = []
    for endpoint in endpoints:
        try:
            check_name(endpoint, "endpoint")
        except UnsafeValueError:
            contexts[endpoint] = ""
            continue
        contexts[endpoint] = await _getvar(link, f"PJSIP_ENDPOINT({endpoint},context)")
    function_loaded = any(contexts.values())
    missing_fix = (
        "add it to pjsip.conf (`corecall asterisk render` prints it), then `pjsip reload` "
        "in Asterisk; or fix the trunk's endpoint name in the config"
    )
    for endpoint, users in endpoints.items():
        exists = CheckResult(True, f"{where}: PJSIP endpoint {endpoint!r} exists ({users})")
        try:
            check_name(endpoint, "endpoint")
        except UnsafeValueError as exc:
            out.append(CheckResult(False, f"{where}: {exc}", "fix the trunk's endpoint name"))
            continue
        if contexts[endpoint]:
            out.append(exists)
            continue
        reply = await link.action({"Action": "PJSIPQualify", "Endpoint": endpoint})
        denied = "permission" in reply.get("Message", "").lower()
        if reply.success:
            out.append(exists)
        elif denied and not function_loaded:
            out.append(
                CheckResult(
                    False, f"{where}: PJSIP endpoint {endpoint!r} not found ({users}), or "
                    "func_pjsip_endpoint is not loaded so it cannot be checked",
                    f"{missing_fix}; if it exists, `module load func_pjsip_endpoint.so`",
                )
            )  # fmt: skip
        else:
            out.append(
                CheckResult(
                    False, f"{where}: PJSIP endpoint {endpoint!r} does not exist ({users})",
                    missing_fix,
                )
            )  # fmt: skip
    return out


async def _check_context(link: AmiLink, where: str, context: str) -> list[CheckResult]:
    out = []
    fix = "add extensions.conf from `corecall asterisk render`, then `dialplan reload`"
    probes = (
        (context, "+12125550123", "bridge context", "its _+X. extension"),
        (f"{context}-end", "s", "hangup handler", "its s extension"),
    )
    for ctx, exten, purpose, what in probes:
        check_name(ctx, "context")
        # DIALPLAN_EXISTS (func_dialplan) needs only `call`; ShowDialPlan needs `reporting`.
        found = await _getvar(link, f"DIALPLAN_EXISTS({ctx},{exten},1)")
        if found == "1":
            out.append(CheckResult(True, f"{where}: dialplan {purpose} {ctx!r} exists"))
            continue
        if found == "0":  # the function answered: it is not there
            out.append(
                CheckResult(
                    False, f"{where}: dialplan {purpose} {ctx!r} ({what}) does not exist", fix
                )
            )
            continue
        reply = await link.action({"Action": "ShowDialPlan", "Context": ctx, "Extension": exten})
        messages = reply if isinstance(reply, list) else [reply]
        head = messages[0] if messages else {}
        if head.get("Response") == "Success":
            out.append(CheckResult(True, f"{where}: dialplan {purpose} {ctx!r} exists"))
        elif "permission" in head.get("Message", "").lower():
            out.append(
                CheckResult(
                    False, f"{where}: dialplan {purpose} {ctx!r} ({what}) not found, or "
                    "func_dialplan is not loaded so it cannot be checked",
                    f"{fix}; if it exists, `module load func_dialplan.so`",
                )
            )  # fmt: skip
        else:
            out.append(
                CheckResult(
                    False, f"{where}: dialplan {purpose} {ctx!r} ({what}) does not exist", fix
                )
            )
    return out


@hookimpl
def corecall_register_trunk_drivers(registry) -> None:
    registry.register(AsteriskAmiDriver)
