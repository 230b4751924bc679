"""The AMI driver against a real Asterisk (the lab): routes, every final reason produced by
real carrier behaviour, Asterisk restarts, AMI links cut mid-Originate, injection attempts,
two Asterisk servers, hang-up, and reconcile after a corecall restart.

The sipp carriers decide on the dialed number's last four digits (see corecall_testing.ami).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3

import attrs
import pytest
from corecall_testing.ami import (
    ANSWERS,
    DEV_CID,
    HOLDS,
    MAIN_CID,
    TARGET,
    AmiProxy,
    ami_sections,
    server_of,
)

from corecall.domain import CallState, EndReason
from corecall.errors import RefusedError, UnsafeValueError
from corecall.telephony.driver import OriginateRequest

pytestmark = pytest.mark.lab


def num(area: int, last4: str) -> str:
    """A valid US number with the given carrier behaviour (last four digits)."""
    return f"+1{area}555{last4}"


def invites_to(lab, carrier: str, number: str):
    return [i for i in lab.invites(carrier) if i.ruri_user == number]


async def wait_for(predicate, timeout: float = 10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------ routes


async def test_route_m_goes_out_main_and_route_d_goes_out_dev(fresh_lab, telephony):
    lab = fresh_lab
    t = await telephony(ami_sections({"pbx1": server_of(lab)}))
    agent_m, target_m = num(212, "1111"), num(212, "1123")
    agent_d, target_d = num(213, "1111"), num(213, "1123")
    m, d = await asyncio.gather(t.place(agent_m, target_m, "M"), t.place(agent_d, target_d, "D"))
    final_m, final_d = await asyncio.gather(t.final(m), t.final(d))

    assert (final_m.reason, final_d.reason) == (EndReason.COMPLETED, EndReason.COMPLETED)
    # The agent is rung first, then the target, each on its route's trunk only; both legs
    # present the route's own caller ID (the carriers answer 403 to any other From).
    main = [tuple(i) for i in lab.invites("corecall-main")]
    dev = [tuple(i) for i in lab.invites("corecall-dev")]
    assert main == [(agent_m, MAIN_CID), (target_m, MAIN_CID)]
    assert dev == [(agent_d, DEV_CID), (target_d, DEV_CID)]
    for final, route in ((final_m, "M"), (final_d, "D")):
        stored = t.app.store.get_call(final.id)
        assert (stored.state, stored.reason, stored.route_code) == (
            CallState.ENDED, EndReason.COMPLETED, route,
        )  # fmt: skip
        stamps = [stored.dialing_agent_at, stored.agent_ringing_at, stored.agent_answered_at,
                  stored.dialing_target_at, stored.target_ringing_at, stored.connected_at,
                  stored.ended_at]  # fmt: skip
        assert all(stamps) and stamps == sorted(stamps)
        assert 0.5 < stored.talk_seconds < 3  # the carrier hangs up after 2 s
        assert stored.ring_seconds < 1


# ------------------------------------------------------------------------------ final reasons


REASON_CASES = [
    # agent phone, target, expected reason, did the target leg happen
    (num(212, "0111"), num(212, "0123"), EndReason.COMPLETED, True),
    (num(213, "0486"), num(213, "0123"), EndReason.AGENT_BUSY, False),
    (num(214, "0408"), num(214, "0123"), EndReason.AGENT_NO_ANSWER, False),
    (num(215, "0403"), num(215, "0123"), EndReason.AGENT_REJECTED, False),
    (num(216, "0503"), num(216, "0123"), EndReason.TRUNK_UNAVAILABLE, False),
    (num(217, "0999"), num(217, "0486"), EndReason.TARGET_BUSY, True),
    (num(218, "0999"), num(218, "0408"), EndReason.TARGET_NO_ANSWER, True),
    (num(219, "0999"), num(219, "0403"), EndReason.TARGET_UNREACHABLE, True),
    (num(224, "0999"), num(224, "0503"), EndReason.TARGET_UNREACHABLE, True),
    (num(225, "0111"), num(225, "0408"), EndReason.CANCELLED, True),  # agent hangs up at 1 s
]


async def test_every_final_reason_from_real_carrier_behaviour(fresh_lab, telephony):
    lab = fresh_lab
    t = await telephony(ami_sections({"pbx1": server_of(lab)}, agent_ring=2, target_ring=3))
    calls = await asyncio.gather(*(t.place(a, b) for a, b, _, _ in REASON_CASES))
    finals = await asyncio.gather(*(t.final(c, 20) for c in calls))

    got = {(a[-4:], b[-4:]): f.reason for (a, b, _, _), f in zip(REASON_CASES, finals, strict=True)}
    want = {(a[-4:], b[-4:]): r for a, b, r, _ in REASON_CASES}
    assert got == want
    for (agent, target, reason, target_leg), final in zip(REASON_CASES, finals, strict=True):
        stored = t.app.store.get_call(final.id)
        assert (stored.state, stored.reason) == (CallState.ENDED, reason), stored
        assert stored.detail
        assert len(invites_to(lab, "corecall-main", agent)) == 1
        assert len(invites_to(lab, "corecall-main", target)) == (1 if target_leg else 0)
        assert (stored.connected_at is not None) == (reason is EndReason.COMPLETED)
        assert (stored.agent_answered_at is not None) == target_leg
    assert lab.invites("corecall-dev") == []
    by_reason = {f.reason: f for f in finals}
    assert 2.5 < by_reason[EndReason.TARGET_NO_ANSWER].ring_seconds < 4  # the 3 s dial timeout
    assert by_reason[EndReason.AGENT_NO_ANSWER].agent_ringing_at is not None


async def test_carrier_down_is_trunk_unavailable_not_agent_no_answer(own_lab, telephony):
    lab = own_lab()
    lab.stop_carrier("corecall-dev")  # nothing answers at the Development trunk's address
    t = await telephony(ami_sections({"pbx1": server_of(lab)}, agent_ring=2))
    down = await t.place(num(226, "0111"), num(226, "0123"), "D")
    no_answer = await t.place(num(227, "0408"), num(227, "0123"), "M")  # rings, no answer
    down, no_answer = await asyncio.gather(t.final(down), t.final(no_answer))
    assert down.reason is EndReason.TRUNK_UNAVAILABLE
    assert "never answered" in down.detail and down.agent_ringing_at is None
    assert no_answer.reason is EndReason.AGENT_NO_ANSWER


# ------------------------------------------------------------------------------ restarts, cuts


async def test_asterisk_restart_mid_call(own_lab, telephony):
    lab = own_lab()
    t = await telephony(ami_sections({"pbx1": server_of(lab)}))
    agent, target = num(312, "0999"), num(712, "0999")
    call = await t.place(agent, target)
    await t.reach(call, CallState.CONNECTED)
    # The link's ups and downs reach the plugins (corecall_link_state_changed: metrics, health).
    assert t.driver.link_states == {"pbx1": True}
    seen: list[tuple[str, str, bool]] = []
    t.driver.link_observer = lambda driver, link, up: seen.append((driver, link, up))

    await asyncio.to_thread(lab.restart_asterisk)
    final = await t.final(call, 10)
    # A clean shutdown hangs the channels up like a normal hang-up (cause 16, CorecallEnd
    # with DialStatus ANSWER) about a second before it sends Shutdown; nobody on the call hung
    # up (HangupSource is empty), so the driver waits for what follows and records the call
    # as cut, not completed, with its talk time. (A crash: next test.)
    assert final.reason is EndReason.UNKNOWN, final.detail
    assert "restarted" in final.detail and "not completed" in final.detail
    assert final.talk_seconds > 0
    await wait_for(lambda: t.link().connects >= 2 and t.link().is_up)
    assert seen[0] == ("asterisk_ami", "pbx1", False) and seen[-1] == ("asterisk_ami", "pbx1", True)
    assert t.driver.link_states == {"pbx1": True}
    # Nothing was dialed twice, and the reconnected link places calls again.
    after = await t.place(num(312, "1111"), num(312, "1123"))
    assert (await t.final(after)).reason is EndReason.COMPLETED
    assert [tuple(i) for i in lab.invites("corecall-main")] == [
        (agent, MAIN_CID), (target, MAIN_CID),
        (num(312, "1111"), MAIN_CID), (num(312, "1123"), MAIN_CID),
    ]  # fmt: skip


async def test_asterisk_killed_mid_call_ends_unknown_after_reconnect(own_lab, telephony):
    lab = own_lab()
    t = await telephony(ami_sections({"pbx1": server_of(lab)}))
    agent, target = num(313, "0999"), num(713, "0999")
    call = await t.place(agent, target)
    await t.reach(call, CallState.CONNECTED)

    os.killpg(lab._procs["asterisk"]["pid"], signal.SIGKILL)  # a crash: no events at all
    await wait_for(lambda: not t.link().is_up)
    assert t.manager.live_calls()[0].id == call.id  # not guessed while the link is down
    await asyncio.to_thread(lab.stop_asterisk)
    await asyncio.to_thread(lab.start_asterisk)
    final = await t.final(call, 10)
    assert final.reason is EndReason.UNKNOWN
    assert "AMI link was down" in final.detail
    assert len(invites_to(lab, "corecall-main", agent)) == 1


async def test_link_cut_with_originate_in_flight_never_dials_twice(fresh_lab, telephony):
    lab = fresh_lab
    async with AmiProxy(lab.ami_host, lab.ami_port) as proxy:
        t = await telephony(ami_sections({"pbx1": server_of(lab, port=proxy.port)}))
        # 1. The Originate reaches Asterisk, the link is cut before its reply comes back.
        proxy.cut_on_originate = "forward"
        agent, target = num(314, "0999"), num(714, "0999")
        call = await t.place(agent, target)
        # Its fate is unknown to the driver: after the reconnect it asks Asterisk, finds the
        # call's channels, and keeps following it.
        record = await t.reach(call, CallState.CONNECTED)
        assert record.state is CallState.CONNECTED
        assert t.link().connects == 2
        assert await t.manager.hangup(call.id)
        final = await t.final(call)
        assert final.reason is EndReason.COMPLETED
        assert len(invites_to(lab, "corecall-main", agent)) == 1
        assert proxy.originates_written() == 1

        # 2. The Originate never reaches Asterisk: a clear failure, nothing dialed.
        proxy.cut_on_originate = "drop"
        lost_agent = num(315, "0999")
        lost = await t.place(lost_agent, num(715, "0999"))
        final = await t.final(lost)
        assert final.reason is EndReason.UNKNOWN
        assert "in flight" in final.detail and "never re-sent" in final.detail
        await asyncio.sleep(0.5)  # time for any (wrong) re-send to show up
        assert invites_to(lab, "corecall-main", lost_agent) == []
        assert proxy.originates_written() == 2  # one per call, never a second for either


async def test_half_open_link_mid_call_is_replaced_and_the_call_followed(fresh_lab, telephony):
    lab = fresh_lab
    async with AmiProxy(lab.ami_host, lab.ami_port) as proxy:
        servers = {"pbx1": server_of(lab, port=proxy.port, ping_interval=0.2, action_timeout=0.5)}
        t = await telephony(ami_sections(servers))
        agent = num(316, "0999")
        call = await t.place(agent, num(716, "0999"))
        await t.reach(call, CallState.CONNECTED)
        proxy.freeze()  # nothing passes any more, yet no side closes the connection
        await wait_for(lambda: t.link().connects >= 2 and t.link().is_up, 5)
        assert t.manager.live_calls()[0].id == call.id  # Asterisk still has it: followed
        assert await t.manager.hangup(call.id)
        assert (await t.final(call)).reason is EndReason.COMPLETED
        assert len(invites_to(lab, "corecall-main", agent)) == 1


# ------------------------------------------------------------------------------ injection


TAMPERED_PHONES = [
    "+12125550111\r\nAction: Originate\r\nChannel: PJSIP/+19005550000@corecall-main",
    "+12125550111\nExten: +19005550000",
    "+12125550111&PJSIP/+19005550000@corecall-main",
    "+12125550111@corecall-dev",
    "+12125550111/+19005550000",
    "+1212555,0111",
]


async def test_injection_attempts_never_reach_asterisk(fresh_lab, telephony):
    lab = fresh_lab
    async with AmiProxy(lab.ami_host, lab.ami_port) as proxy:
        t = await telephony(ami_sections({"pbx1": server_of(lab, port=proxy.port)}))
        # A tampered phone in the store (written behind corecall's back).
        db = sqlite3.connect(t.app.store.path)
        for bad in TAMPERED_PHONES:
            agent_id = t.agent(HOLDS)
            db.execute("UPDATE agents SET phone = ? WHERE telegram_id = ?", (bad, agent_id))
            db.commit()
            with pytest.raises(RefusedError) as err:
                await t.manager.place(agent_id, TARGET)
            assert err.value.reason == "agent_phone_invalid"
        db.close()
        # Typed input with separators and line breaks is refused by the number policy.
        for text in ("+12125550123\r\nAction: Hangup", "+1212555,0123", "+12125550123&x"):
            with pytest.raises(RefusedError):
                await t.place(HOLDS, text)
        # And a request that slipped past every earlier check is stopped by the driver.
        good = OriginateRequest(
            call_id="ab" * 16, agent_phone=HOLDS, target=TARGET, caller_id=MAIN_CID,
            trunk=t.app.config.trunks["main"], agent_ring_timeout=2, target_ring_timeout=2,
        )  # fmt: skip
        for field in ("agent_phone", "target", "caller_id"):
            for bad in TAMPERED_PHONES:
                req = attrs.evolve(good)
                object.__setattr__(req, field, bad)
                with pytest.raises(UnsafeValueError):
                    await t.driver.originate(req, t.manager.progress)
        await asyncio.sleep(0.7)  # a ping went through: the socket was live all along
        assert b"Action: Ping" in proxy.client_bytes
        assert proxy.originates_written() == 0
        assert b"19005550000" not in proxy.client_bytes
        assert lab.invites("corecall-main") == [] and lab.invites("corecall-dev") == []
        # The observation works: a legitimate call is seen on the socket and by the carrier.
        ok = await t.place(ANSWERS, TARGET)
        assert (await t.final(ok)).reason is EndReason.COMPLETED
        assert proxy.originates_written() == 1
        assert [tuple(i) for i in lab.invites("corecall-main")] == [
            (ANSWERS, MAIN_CID), (TARGET, MAIN_CID),
        ]  # fmt: skip


# ------------------------------------------------------------------------------ two servers


async def test_two_asterisk_servers_each_with_its_own_link(fresh_lab, own_lab, telephony):
    lab_a = fresh_lab
    lab_b = own_lab(hosts=("127.0.0.4", "127.0.0.5"))
    t = await telephony(
        ami_sections(
            {"a": server_of(lab_a), "b": server_of(lab_b)},
            main=("a", "corecall-main"), dev=("b", "corecall-dev"),
        )
    )  # fmt: skip
    agent_m, agent_d = num(412, "1111"), num(413, "1111")
    m, d = await asyncio.gather(t.place(agent_m, TARGET, "M"), t.place(agent_d, TARGET, "D"))
    assert [f.reason for f in await asyncio.gather(t.final(m), t.final(d))] == [
        EndReason.COMPLETED, EndReason.COMPLETED,
    ]  # fmt: skip
    assert [tuple(i) for i in lab_a.invites("corecall-main")] == [
        (agent_m, MAIN_CID), (TARGET, MAIN_CID),
    ]  # fmt: skip
    assert [tuple(i) for i in lab_b.invites("corecall-dev")] == [
        (agent_d, DEV_CID), (TARGET, DEV_CID),
    ]  # fmt: skip
    assert lab_a.invites("corecall-dev") == [] and lab_b.invites("corecall-main") == []

    # Server b goes down: route D fails at once, route M is not affected.
    await asyncio.to_thread(lab_b.stop_asterisk)
    await wait_for(lambda: not t.link("b").is_up)
    down = await t.place(num(414, "1111"), TARGET, "D")
    still = await t.place(num(415, "1111"), TARGET, "M")
    assert (await t.final(down)).reason is EndReason.TRUNK_UNAVAILABLE
    assert "'b'" in (await t.final(down)).detail
    assert (await t.final(still)).reason is EndReason.COMPLETED
    # Server b comes back: its link reconnects on its own.
    await asyncio.to_thread(lab_b.start_asterisk)
    await wait_for(lambda: t.link("b").is_up)
    again = await t.place(num(416, "1111"), TARGET, "D")
    assert (await t.final(again)).reason is EndReason.COMPLETED
    assert t.link("a").connects == 1


# ------------------------------------------------------------------------------ hang-up


async def test_hangup_of_live_calls(fresh_lab, telephony):
    lab = fresh_lab
    t = await telephony(ami_sections({"pbx1": server_of(lab)}, agent_ring=5, target_ring=5))
    talking = await t.place(num(512, "0999"), num(912, "0999"))  # both hold until BYE
    ringing = await t.place(num(513, "0999"), num(513, "0408"))  # target rings forever
    agent_rings = await t.place(num(514, "0408"), num(914, "0999"))  # agent never answers
    await asyncio.gather(
        t.reach(talking, CallState.CONNECTED),
        t.reach(ringing, CallState.TARGET_RINGING),
        t.reach(agent_rings, CallState.AGENT_RINGING),
    )
    await asyncio.sleep(0.3)
    results = await asyncio.gather(
        *(t.manager.hangup(c.id) for c in (talking, ringing, agent_rings))
    )
    assert results == [True, True, True]
    finals = await asyncio.gather(*(t.final(c, 5) for c in (talking, ringing, agent_rings)))
    assert [f.reason for f in finals] == [
        EndReason.COMPLETED, EndReason.CANCELLED, EndReason.CANCELLED,
    ]  # fmt: skip
    assert finals[0].talk_seconds > 0.2
    assert all(f.ended_at is not None for f in finals)
    live = await t.link().channels()
    assert not any(f"{c.id}-a" in live for c in (talking, ringing, agent_rings))
    assert not await t.manager.hangup(talking.id)  # no longer live


# ------------------------------------------------------------------------------ reconcile


async def test_calls_survive_a_corecall_restart(fresh_lab, telephony):
    lab = fresh_lab
    sections = ami_sections({"pbx1": server_of(lab)})
    first = await telephony(sections)
    call = await first.place(num(612, "0999"), num(646, "0999"))
    short = await first.place(num(613, "0111"), num(613, "1123"))  # ends after ~2 s
    await asyncio.gather(first.reach(call, CallState.CONNECTED),
                         first.reach(short, CallState.CONNECTED))  # fmt: skip
    await first.manager.stop()  # corecall goes away; Asterisk keeps the calls up
    await asyncio.sleep(3.0)  # the short call ends meanwhile

    second = await telephony(sections)
    gone = await second.final(short, 5)
    assert gone.reason is EndReason.UNKNOWN
    assert "while corecall was down" in gone.detail
    assert [c.id for c in second.manager.live_calls()] == [call.id]
    assert await second.manager.hangup(call.id)
    final = await second.final(call)
    assert final.reason is EndReason.COMPLETED
    assert second.app.store.get_call(call.id).reason is EndReason.COMPLETED
