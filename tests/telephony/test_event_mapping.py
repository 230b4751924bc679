"""The driver's event → state machine, fed the event sequences Asterisk really produced, as
recorded in docs/asterisk-events.md (corecall-lab-record against the lab). No Asterisk
needed: each scenario's table is turned back into AMI event blocks and fed to a CallTracker."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from corecall_asterisk.causes import agent_leg_failure, end_after_answer
from corecall_asterisk.tracking import CallTracker, TrackedCall

from corecall.domain import CallState, EndReason

DOC = Path(__file__).resolve().parents[2] / "docs" / "asterisk-events.md"
CALL_ID = "5a5dda4a374544a6a8adf8f5114d4dcc"
TARGET_UID = "1795546483.99"
STATE_NUMBERS = {"Down": "0", "Ring": "4", "Ringing": "5", "Up": "6", "Busy": "7"}

EXPECTED = {
    "ok-target-hangs-up": EndReason.COMPLETED,
    "ok-agent-hangs-up": EndReason.COMPLETED,
    "agent-answers-late": EndReason.COMPLETED,
    "target-answers-late": EndReason.COMPLETED,
    "agent-busy": EndReason.AGENT_BUSY,
    "agent-no-answer": EndReason.AGENT_NO_ANSWER,
    "agent-403": EndReason.AGENT_REJECTED,
    "agent-503": EndReason.TRUNK_UNAVAILABLE,
    "target-busy": EndReason.TARGET_BUSY,
    "target-no-answer": EndReason.TARGET_NO_ANSWER,
    "target-403": EndReason.TARGET_UNREACHABLE,
    "target-503": EndReason.TARGET_UNREACHABLE,
    "agent-hangup-target-ringing": EndReason.CANCELLED,
    "ami-hangup-connected": EndReason.COMPLETED,
    "agent-early-media-no-answer": EndReason.AGENT_NO_ANSWER,
    "agent-early-media-answers": EndReason.COMPLETED,
    "target-early-media": EndReason.TARGET_NO_ANSWER,
    "agent-voicemail": EndReason.AGENT_NOT_CONFIRMED,
    "agent-wrong-key": EndReason.AGENT_NOT_CONFIRMED,
    "confirm-none": EndReason.COMPLETED,
    "unknown-endpoint": EndReason.TRUNK_UNAVAILABLE,
    "invalid-caller-id": EndReason.TRUNK_UNAVAILABLE,
    "trunk-mismatch": EndReason.TRUNK_UNAVAILABLE,
    "target-with-letter": EndReason.TARGET_UNREACHABLE,
    "carrier-down": EndReason.TRUNK_UNAVAILABLE,
}
#: Scenarios whose call never produces events (the Originate itself is refused).
NO_EVENTS = {"exten-without-plus"}

_FIELD = re.compile(r"([A-Za-z][\w-]*)=(.*?)(?=, [A-Za-z][\w-]*=|$)")


def _sub(text: str) -> str:
    return text.replace("<id>", CALL_ID).replace("<target-uid>", TARGET_UID).strip()


def _block(cells: list[str]) -> str | None:
    """One table row (ms | Event | Leg | Channel | Uniqueid | Linkedid | Key fields) back
    into the AMI event it records."""
    _ms, event, _leg, channel, uid, linked, fields = (c.replace("`", "").strip() for c in cells)
    if event.startswith("*"):
        return None  # an action's reply, not an event
    headers: list[tuple[str, str]] = [("Event", event)]
    linked = _sub(linked)
    if event in ("DialBegin", "DialState", "DialEnd"):
        src_chan, dst_chan = (_sub(x) for x in channel.split("→"))
        src_uid, dst_uid = (_sub(x) for x in uid.split("→"))
        if src_uid != "—":
            headers += [("Channel", src_chan), ("Uniqueid", src_uid), ("Linkedid", linked)]
        headers += [("DestChannel", dst_chan), ("DestUniqueid", dst_uid)]
        headers += [("DestLinkedid", linked)]
    else:
        headers += [("Channel", _sub(channel)), ("Uniqueid", _sub(uid))]
        if linked != "—":
            headers.append(("Linkedid", linked))
    if event == "OriginateResponse":
        headers.append(("ActionID", f"{CALL_ID}-o"))
    for name, value in _FIELD.findall(fields):
        value = _sub(value)
        if name == "ChannelStateDesc":
            headers.append(("ChannelState", STATE_NUMBERS.get(value, "?")))
        headers.append((name, value))
    return "\r\n".join(f"{k}: {v}" for k, v in headers)


def scenarios() -> dict[str, list[str]]:
    if not DOC.exists():
        pytest.fail(f"{DOC} is missing: run .venv/bin/corecall-lab-record --only docs (as root)")
    text = DOC.read_text()
    found: dict[str, list[str]] = {}
    for part in re.split(r'<a id="', text)[1:]:
        key = part.split('"', 1)[0]
        blocks = []
        for line in part.splitlines():
            if not re.match(r"^\| \d+ \|", line):
                continue
            cells = line.strip().strip("|").split(" | ")
            block = _block(cells)
            if block:
                blocks.append(block)
        found[key] = blocks
    return found


def test_the_recorded_document_covers_every_outcome():
    found = scenarios()
    assert set(EXPECTED) | NO_EVENTS <= set(found), sorted(set(EXPECTED) - set(found))
    for key in EXPECTED:
        assert found[key], f"scenario {key} has no events in {DOC}"
    for key in NO_EVENTS:
        assert found[key] == []


@pytest.mark.parametrize("key", sorted(EXPECTED))
async def test_recorded_events_reach_the_right_final_state(key, monkeypatch):
    from corecall_asterisk import tracking

    monkeypatch.setattr(tracking, "ORIGINATE_FAILURE_GRACE", 0.05)
    # An end nobody on the call caused (an AMI hangup from elsewhere) is held this long to
    # tell it apart from a shutdown; nothing follows here, so it completes.
    monkeypatch.setattr(tracking, "SYSTEM_HANGUP_GRACE", 0.05)
    seen: list[tuple[CallState, EndReason | None, str]] = []
    tracker = CallTracker()
    tracker.track(TrackedCall(CALL_ID, lambda _cid, s, r=None, d="": seen.append((s, r, d))))
    unrelated = TrackedCall("f" * 32, lambda *a: pytest.fail(f"wrong call got {a}"))
    tracker.track(unrelated)
    for block in scenarios()[key]:
        tracker.feed(block)
    await asyncio.sleep(0.1)  # a pending OriginateResponse fallback may fire

    states = [s for s, _, _ in seen]
    assert states and states[-1] is CallState.ENDED, seen
    assert states.count(CallState.ENDED) == 1
    assert [s.order for s in states] == sorted({s.order for s in states})  # forward only
    reason, detail = seen[-1][1], seen[-1][2]
    assert reason is EXPECTED[key], (reason, detail)
    assert detail
    assert (CallState.CONNECTED in states) == (EXPECTED[key] is EndReason.COMPLETED)
    if EXPECTED[key] in (EndReason.TARGET_BUSY, EndReason.TARGET_NO_ANSWER):
        assert CallState.DIALING_TARGET in states and CallState.AGENT_ANSWERED in states
    assert tracker.calls == {unrelated.key: unrelated}  # finished and forgotten, once


def test_events_of_other_calls_and_other_event_types_are_ignored():
    seen = []
    tracker = CallTracker()
    tracker.track(TrackedCall(CALL_ID, lambda *a: seen.append(a)))
    other = "0" * 32
    for block in (
        f"Event: Newstate\r\nUniqueid: {other}-a\r\nLinkedid: {other}-a\r\nChannelState: 6",
        f"Event: Newstate\r\nUniqueid: {CALL_ID}-ab\r\nLinkedid: {CALL_ID}-ab\r\nChannelState: 6",
        f"Event: VarSet\r\nUniqueid: {CALL_ID}-a\r\nLinkedid: {CALL_ID}-a\r\nVariable: X",
        f"Event: Hangup\r\nUniqueid: {CALL_ID}-a\r\nDestLinkedid: {CALL_ID}-a\r\nCause: 17",
        f"Event: OriginateResponse\r\nActionID: {other}-o\r\nResponse: Failure\r\nReason: 5",
        f"Event: UserEvent\r\nUniqueid: {CALL_ID}-a\r\nLinkedid: {CALL_ID}-a\r\nUserEvent: Other",
    ):
        tracker.feed(block)
    assert seen == []
    tracker.feed(f"Event: Newstate\r\nUniqueid: {CALL_ID}-a\r\nLinkedid: {CALL_ID}-a\r\n"
                 "ChannelState: 5")  # fmt: skip
    assert seen == [(CALL_ID, CallState.AGENT_RINGING)]


def test_target_ringing_before_dialbegin_still_records_dialing_the_target():
    """Seen in CI: the target's Newstate Ringing was published before the agent leg's
    DialBegin (they come from different Asterisk threads)."""
    seen = []
    tracker = CallTracker()
    tracker.track(TrackedCall(CALL_ID, lambda *a: seen.append(a[1])))
    link = f"Linkedid: {CALL_ID}-a"
    for block in (
        f"Event: Newstate\r\nUniqueid: {CALL_ID}-a\r\n{link}\r\nChannelState: 6",
        f"Event: Newstate\r\nUniqueid: {TARGET_UID}\r\n{link}\r\nChannelState: 5",
        f"Event: DialBegin\r\nUniqueid: {CALL_ID}-a\r\n{link}\r\nDestUniqueid: {TARGET_UID}",
    ):
        tracker.feed(block)
    assert seen == [CallState.AGENT_ANSWERED, CallState.DIALING_TARGET, CallState.TARGET_RINGING]


@pytest.mark.parametrize(
    ("cause", "reason_code", "rang", "expected"),
    [
        (17, 0, True, EndReason.AGENT_BUSY),
        (19, 3, True, EndReason.AGENT_NO_ANSWER),
        (19, 3, False, EndReason.TRUNK_UNAVAILABLE),  # nothing ever rang: the trunk is dead
        (21, 0, True, EndReason.AGENT_REJECTED),
        (34, 0, False, EndReason.TRUNK_UNAVAILABLE),
        (None, 0, False, EndReason.TRUNK_UNAVAILABLE),  # unknown endpoint: no channel at all
        (None, 5, True, EndReason.AGENT_BUSY),
        (None, 3, True, EndReason.AGENT_NO_ANSWER),
    ],
)
def test_agent_leg_outcomes(cause, reason_code, rang, expected):
    assert agent_leg_failure(cause, reason_code, rang=rang)[0] is expected


@pytest.mark.parametrize(
    ("status", "cause", "dialplan", "expected"),
    [
        ("ANSWER", 16, "ok", EndReason.COMPLETED),
        ("BUSY", 17, "ok", EndReason.TARGET_BUSY),
        ("NOANSWER", 16, "ok", EndReason.TARGET_NO_ANSWER),
        ("NOANSWER", 21, "ok", EndReason.TARGET_UNREACHABLE),  # a 403 shows as NOANSWER
        ("CHANUNAVAIL", 21, "ok", EndReason.TARGET_UNREACHABLE),
        ("CONGESTION", 34, "ok", EndReason.TARGET_UNREACHABLE),
        ("CANCEL", 0, "ok", EndReason.CANCELLED),
        ("", 16, "ok", EndReason.CANCELLED),
        ("", 21, "trunk-mismatch", EndReason.TRUNK_UNAVAILABLE),
        ("", 21, "invalid-target", EndReason.TARGET_UNREACHABLE),
        ("TORTURE", 99, "ok", EndReason.UNKNOWN),
    ],
)
def test_outcomes_after_the_agent_answered(status, cause, dialplan, expected):
    assert end_after_answer(status, cause, dialplan)[0] is expected
