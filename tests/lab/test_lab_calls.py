"""Call outcomes, dialplan defences and AMI privileges, against the real lab Asterisk.

The carriers decide by the dialed number's last 4 digits: 0486 busy, 0408 rings forever,
0403/0503 reject, 0999 answers and holds, anything else answers, presses 1 and hangs up after 2 s.
"""

from __future__ import annotations

import asyncio

import pytest
from corecall_testing.lab import (
    CALLER_ID,
    DEV_CALLER_ID,
    AmiSession,
    free_udp,
    new_call_id,
    originate_action,
    wait_until,
)

pytestmark = pytest.mark.lab

HOLD_AGENT = "+15550000999"
TARGET = "+15557654321"


async def _originate(ami: AmiSession, action: dict[str, str], timeout: float = 15):
    result = await ami.send(action, timeout=timeout)
    assert isinstance(result, list), result
    return result[-1]  # the OriginateResponse


@pytest.mark.asyncio
async def test_route_dev_goes_out_over_the_dev_carrier_only(fresh_lab):
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        origin = await _originate(
            ami, originate_action(call_id, HOLD_AGENT, TARGET, trunk="corecall-dev")
        )
        assert origin.get("Response") == "Success"
        await wait_until(lambda: ami.end_event(call_id))
        await ami.wait_call_over(call_id)
    invites = await wait_until(lambda: len(fresh_lab.invites("corecall-dev")) == 2 and True)
    assert invites
    # Both legs present the route's owned number (the carriers refuse any other From).
    assert fresh_lab.invites("corecall-dev") == [
        (HOLD_AGENT, DEV_CALLER_ID),
        (TARGET, DEV_CALLER_ID),
    ]
    assert fresh_lab.invites("corecall-main") == []


@pytest.mark.asyncio
async def test_agent_busy_fails_the_originate_and_never_dials_the_target(fresh_lab):
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        origin = await _originate(ami, originate_action(call_id, "+15550000486", TARGET))
        events = await ami.wait_call_over(call_id)
    assert origin.get("Response") == "Failure"
    assert origin.get("Reason") == "0"  # not 5: busy shows in DialEnd/Hangup, not Reason
    dial_end = [e for e in events if e.get("Event") == "DialEnd"]
    assert [e.get("DialStatus") for e in dial_end] == ["BUSY"]
    assert dial_end[0].get("DestUniqueid") == f"{call_id}-a"
    hangup = [e for e in events if e.get("Event") == "Hangup"]
    assert [(e.get("Uniqueid"), e.get("Cause")) for e in hangup] == [(f"{call_id}-a", "17")]
    assert ami.end_event(call_id) is None
    assert fresh_lab.invites("corecall-main") == [("+15550000486", CALLER_ID)]


@pytest.mark.asyncio
async def test_agent_no_answer_ends_at_the_originate_timeout(fresh_lab):
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        origin = await _originate(
            ami, originate_action(call_id, "+15550000408", TARGET, agent_ring_timeout=1)
        )
        events = await ami.wait_call_over(call_id)
    assert (origin.get("Response"), origin.get("Reason")) == ("Failure", "3")
    assert [e.get("Cause") for e in events if e.get("Event") == "Hangup"] == ["19"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("target_last4", "dial_end", "dial_status", "cause"),
    [
        ("0486", "BUSY", "BUSY", "17"),
        ("0403", "NOANSWER", "CHANUNAVAIL", "21"),
        ("0503", "CONGESTION", "CONGESTION", "34"),
    ],
)
async def test_target_failures_are_reported(fresh_lab, target_last4, dial_end, dial_status, cause):
    target = "+1555765" + target_last4
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        origin = await _originate(ami, originate_action(call_id, HOLD_AGENT, target))
        assert origin.get("Response") == "Success"
        end = await wait_until(lambda: ami.end_event(call_id))
        events = await ami.wait_call_over(call_id)
    target_dial = [
        e for e in events if e.get("Event") == "DialEnd" and e.get("Uniqueid") == f"{call_id}-a"
    ]
    assert [e.get("DialStatus") for e in target_dial] == [dial_end]
    assert (end.get("Reason"), end.get("DialStatus"), end.get("HangupCause")) == (
        "ok",
        dial_status,
        cause,
    )
    target_hangups = [
        e.get("Cause")
        for e in events
        if e.get("Event") == "Hangup" and e.get("Uniqueid") != f"{call_id}-a"
    ]
    assert target_hangups == [cause]


@pytest.mark.asyncio
async def test_ami_hangup_ends_a_connected_call(fresh_lab):
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        await _originate(ami, originate_action(call_id, HOLD_AGENT, "+15557650999"))
        await wait_until(lambda: len(ami.named("BridgeEnter", Linkedid=f"{call_id}-a")) == 2)
        reply = await ami.send({"Action": "Hangup", "Channel": f"{call_id}-a", "Cause": "16"})
        assert reply.get("Response") == "Success", reply
        end = await wait_until(lambda: ami.end_event(call_id))
        events = await ami.wait_call_over(call_id)
    assert end.get("DialStatus") == "ANSWER"
    assert sorted(e.get("Cause") for e in events if e.get("Event") == "Hangup") == ["16", "16"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("variables", "exten", "reason"),
    [
        (
            "CORECALL_CALL_ID={id},CORECALL_TRUNK=corecall-main,"
            "CORECALL_CALLER_ID=+1212555010a,CORECALL_DIAL_TIMEOUT=10",
            None,
            "invalid-caller-id",
        ),
        (
            "CORECALL_CALL_ID={id},CORECALL_TRUNK=corecall-dev,"
            "CORECALL_CALLER_ID=+12125550100,CORECALL_DIAL_TIMEOUT=10",
            None,
            "trunk-mismatch",
        ),
        (
            "CORECALL_CALL_ID={id},CORECALL_TRUNK=corecall-main/x,"
            "CORECALL_CALLER_ID=+12125550100,CORECALL_DIAL_TIMEOUT=10",
            None,
            "invalid-trunk",
        ),
        (
            "CORECALL_CALL_ID=abc,CORECALL_TRUNK=corecall-main,"
            "CORECALL_CALLER_ID=+12125550100,CORECALL_DIAL_TIMEOUT=10",
            None,
            "invalid-call-id",
        ),
        (None, "+1555765432a", "invalid-target"),
        (None, "+1555765432&PJSIP/+1900", "invalid-target"),
    ],
)
async def test_dialplan_refuses_tampered_values(fresh_lab, variables, exten, reason):
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        action = originate_action(
            call_id,
            HOLD_AGENT,
            TARGET,
            exten=exten,
            variables=variables.format(id=call_id) if variables else None,
        )
        origin = await _originate(ami, action)
        assert origin.get("Response") == "Success"  # the agent answered
        end = await wait_until(
            lambda: ami.named("UserEvent", UserEvent="CorecallEnd", Uniqueid=f"{call_id}-a")
        )
        await ami.wait_call_over(call_id)
    assert end[0].get("Reason") == reason
    assert end[0].get("DialStatus") == ""
    # Only the agent leg was ever sent anywhere.
    assert [r for r, _ in fresh_lab.invites("corecall-main")] == [HOLD_AGENT]
    assert fresh_lab.invites("corecall-dev") == []


@pytest.mark.asyncio
async def test_originate_to_an_extension_outside_the_pattern_is_refused_at_once(fresh_lab):
    async with AmiSession(fresh_lab) as ami:
        call_id = new_call_id()
        action = originate_action(call_id, HOLD_AGENT, TARGET, exten="15557654321")
        reply = await ami.send(action)
    assert not isinstance(reply, list)
    assert reply.get("Response") == "Error"
    assert "does not exist" in reply.get("Message")
    await asyncio.sleep(0.2)
    assert fresh_lab.invites("corecall-main") == []


@pytest.mark.asyncio
async def test_ami_user_privileges(lab):
    async with AmiSession(lab) as ami:
        allowed = {
            "Ping": {"Action": "Ping"},
            "Status": {"Action": "Status"},
        }
        for name, action in allowed.items():
            reply = await ami.send(action)
            first = reply[0] if isinstance(reply, list) else reply
            assert first.get("Response") == "Success", (name, first)
        denied = {
            "Command": {"Action": "Command", "Command": "core show version"},
            "CoreShowChannels": {"Action": "CoreShowChannels"},
            "Reload": {"Action": "Reload"},
            "GetConfig": {"Action": "GetConfig", "Filename": "manager.conf"},
            "UpdateConfig": {"Action": "UpdateConfig"},
            "Filter": {"Action": "Filter", "Operation": "Add", "Filter": "Event: VarSet"},
            "DBGet": {"Action": "DBGet", "Family": "x", "Key": "y"},
            "ShowDialPlan": {"Action": "ShowDialPlan"},
        }
        for name, action in denied.items():
            reply = await ami.send(action)
            assert reply.get("Response") == "Error", (name, reply)
            assert "Permission denied" in reply.get("Message", ""), (name, reply)
        # Originate may never run System()/Exec() and friends without the system class.
        call_id = new_call_id()
        evil = originate_action(call_id, HOLD_AGENT, TARGET)
        for key in ("Context", "Exten", "Priority"):
            evil.pop(key)
        evil.update({"Application": "System", "Data": "touch /tmp/corecall-pwned"})
        reply = await ami.send(evil)
        assert reply.get("Response") == "Error"
        assert "Forbidden" in reply.get("Message", "")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("127.0.0.2", "404 Not Found"),  # the Main provider's address: dead-end context
        ("127.0.0.9", "401 Unauthorized"),  # an unknown address: no endpoint matches
    ],
)
async def test_inbound_calls_are_never_accepted(lab, tmp_path, source, status):
    messages = tmp_path / "uac.log"
    async with AmiSession(lab) as ami:
        start = len(ami.events)
        proc = await asyncio.create_subprocess_exec(
            "sipp", "-sn", "uac", "-s", "+15557654321", "-m", "1",
            "-i", source, "-p", str(free_udp(source)), "-bind_local",
            "-mp", str(free_udp(source)), "-cp", str(free_udp(source)), "-ci", source,
            "-nostdin", "-timeout", "5", "-trace_msg", "-message_file", str(messages),
            f"{lab.sip_host}:{lab.sip_port}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(proc.wait(), 15)
        await asyncio.sleep(0.2)
        created = [e for e in ami.events[start:] if e.get("Event") == "Newchannel"]
    assert f"SIP/2.0 {status}" in messages.read_text()
    assert created == []  # no channel, no dialplan
