"""Smoke test of the Asterisk lab: the driver's exact Originate, sent with raw panoramisk,
places a bridged call over route Main, and everything the driver relies on is observable.
"""

from __future__ import annotations

import pytest
from corecall_testing.lab import (
    CALLER_ID,
    AmiSession,
    labmod,
    new_call_id,
    originate_action,
    wait_until,
)

pytestmark = pytest.mark.lab

AGENT = "+15550000999"  # the carrier answers and holds until BYE
TARGET = "+15557654321"  # the carrier answers at once and hangs up after 2 s


@pytest.mark.asyncio
async def test_originate_over_main_bridges_and_reports(fresh_lab):
    lab = fresh_lab
    async with AmiSession(lab) as ami:
        call_id = new_call_id()
        agent_uid = f"{call_id}-a"
        start = len(ami.events)
        result = await ami.send(originate_action(call_id, AGENT, TARGET), timeout=10)

        # panoramisk hands back [Response, OriginateResponse] for an Async Originate.
        assert isinstance(result, list), result
        assert result[0].get("Response") == "Success"
        origin = result[-1]
        assert origin.get("Event") == "OriginateResponse"
        assert origin.get("Response") == "Success"
        assert origin.get("Reason") == "4"
        assert origin.get("Uniqueid") == agent_uid

        end = await wait_until(lambda: ami.end_event(call_id), timeout=10)
        events = await ami.wait_call_over(call_id)
        after = ami.events[start:]

    # The dialplan's record of how the call ended, on the agent leg.
    assert end.get("Uniqueid") == agent_uid
    assert end.get("Linkedid") == agent_uid
    assert end.get("Reason") == "ok"
    assert end.get("DialStatus") == "ANSWER"
    assert end.get("HangupCause") == "16"

    # Correlation: nothing else ran, so every event after the Originate belongs to this call,
    # and every one of them, on either leg, carries Linkedid (or DestLinkedid) == <id>-a.
    assert after, "no events received"
    for event in after:
        assert agent_uid in (event.get("Linkedid"), event.get("DestLinkedid")), event
    assert len(events) == len(after)

    channels = {e.get("Uniqueid") for e in events if e.get("Event") == "Newchannel"}
    assert agent_uid in channels
    (target_uid,) = channels - {agent_uid}

    # The agent answered (Originate's own dial), then the target answered and both bridged.
    assert any(
        e.get("Event") == "DialEnd"
        and e.get("DestUniqueid") == agent_uid
        and e.get("DialStatus") == "ANSWER"
        for e in events
    )
    assert any(
        e.get("Event") == "DialEnd"
        and e.get("Uniqueid") == agent_uid
        and e.get("DestUniqueid") == target_uid
        and e.get("DialStatus") == "ANSWER"
        for e in events
    )
    bridged = {e.get("Uniqueid") for e in events if e.get("Event") == "BridgeEnter"}
    assert bridged == {agent_uid, target_uid}
    hangups = {e.get("Uniqueid"): e.get("Cause") for e in events if e.get("Event") == "Hangup"}
    assert hangups == {agent_uid: "16", target_uid: "16"}

    # The event filter: only the events corecall uses arrive (no VarSet, Newexten, ...).
    names = {e.get("Event") for e in after}
    assert names <= set(labmod.asterisk_conf.AMI_EVENTS), names
    assert "OriginateResponse" not in names  # went to the action's future, see above

    # The carriers: Main saw the agent leg, then the target leg; Dev saw nothing.
    invites = await wait_until(
        lambda: len(lab.invites("corecall-main")) >= 2 and lab.invites("corecall-main")
    )
    assert invites == [(AGENT, CALLER_ID), (TARGET, CALLER_ID)]
    assert lab.invites("corecall-dev") == []
