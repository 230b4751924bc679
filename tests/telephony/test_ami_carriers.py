"""Real carriers through the real Asterisk: early media (183 without 180), the agent's
confirmation key ("press 1") against a voicemail box, a wrong key and a confirming phone,
``confirm = "none"``, and caller-ID ownership on both legs.

The lab's sipp carriers behave by the dialed number's last four digits (docs/asterisk-lab.md):
0183 sends 183 with SDP and never answers, 0184 sends 183 then answers 2 s later, 0777 is a
voicemail box (answers after 2 s, plays a greeting, never sends a key), 0778 presses 2 then 3,
every other answering phone presses 1 (RFC 4733) 250 ms after answering. Each carrier answers
403 to a From that is not one of its trunk's owned numbers.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from corecall_testing.ami import MAIN_CID, TARGET, ami_sections, server_of

from corecall.domain import CallState, EndReason
from corecall.errors import RefusedError

pytestmark = pytest.mark.lab


def num(area: int, last4: str) -> str:
    """A valid US number with the given carrier behaviour (last four digits)."""
    return f"+1{area}555{last4}"


def sections(lab, *, agent_ring=3, target_ring=3, **route_m) -> dict:
    out = ami_sections({"pbx1": server_of(lab)}, agent_ring=agent_ring, target_ring=target_ring)
    out["routes"] = {
        "M": {"trunk": "main", "caller_ids": [MAIN_CID, "+12125550101"], **route_m},
        "D": {"trunk": "dev", "caller_ids": ["+12125550199"]},
    }
    return out


def invites(lab) -> list[tuple[str, str]]:
    return [tuple(i) for i in lab.invites("corecall-main")]


async def states_of(t, call) -> list[CallState]:
    seen = []
    async for record in t.manager.watch(call.id):
        if not seen or seen[-1] is not record.state:
            seen.append(record.state)
    return seen


# ------------------------------------------------------------------------------ early media


async def test_agent_phone_with_early_media_only_is_agent_no_answer(fresh_lab, telephony):
    """183 Session Progress with SDP and never 180 (a mobile network's own ringback), never
    answered: the agent didn't pick up. Not "the line is broken"."""
    t = await telephony(sections(fresh_lab, agent_ring=2))
    agent = num(212, "0183")
    call = await t.place(agent, TARGET)
    final = await t.final(call)
    assert final.reason is EndReason.AGENT_NO_ANSWER, final.detail
    assert final.agent_ringing_at is not None  # the ringing stage is on record
    assert final.agent_answered_at is None
    assert invites(fresh_lab) == [(agent, MAIN_CID)]  # the target was never dialed


async def test_agent_phone_with_early_media_then_answer_connects(fresh_lab, telephony):
    t = await telephony(sections(fresh_lab, agent_ring=5))
    agent, target = num(212, "0184"), num(212, "1123")
    call = await t.place(agent, target)
    seen = await states_of(t, call)
    final = t.app.store.get_call(call.id)
    assert final.reason is EndReason.COMPLETED, final.detail
    # A watcher starts from the state on record: "queued" when the writer has not yet
    # written the "dialing" that place() returned.
    assert [state for state in seen if state is not CallState.QUEUED][:4] == [
        CallState.DIALING_AGENT, CallState.AGENT_RINGING, CallState.AGENT_ANSWERED,
        CallState.AWAITING_CONFIRMATION,
    ]  # fmt: skip
    assert final.agent_ringing_at is not None and final.connected_at is not None
    # the carrier answered about 2 s after its 183
    assert (final.agent_answered_at - final.agent_ringing_at).total_seconds() > 1.5
    assert invites(fresh_lab) == [(agent, MAIN_CID), (target, MAIN_CID)]


async def test_target_with_early_media_only_rings_and_its_ring_time_is_recorded(
    fresh_lab, telephony
):
    t = await telephony(sections(fresh_lab, target_ring=2))
    agent, target = num(212, "0999"), num(212, "0183")
    call = await t.place(agent, target)
    final = await t.final(call)
    assert final.reason is EndReason.TARGET_NO_ANSWER, final.detail
    assert final.target_ringing_at is not None
    assert final.ring_seconds is not None and final.ring_seconds >= 1.5


# ------------------------------------------------------------------------------ press 1


async def test_voicemail_agent_is_not_confirmed_and_the_target_never_dialed(fresh_lab, telephony):
    """The agent's voicemail answers (after 2 s, with a greeting) and never presses a key:
    the call ends agent_not_confirmed and NO INVITE ever goes to the target."""
    t = await telephony(sections(fresh_lab, agent_ring=5, confirm_timeout=1))
    agent, target = num(212, "0777"), num(212, "1123")
    call = await t.place(agent, target)
    seen = await states_of(t, call)
    final = t.app.store.get_call(call.id)
    assert final.reason is EndReason.AGENT_NOT_CONFIRMED, final.detail
    assert CallState.AWAITING_CONFIRMATION in seen
    assert CallState.DIALING_TARGET not in seen and final.dialing_target_at is None
    assert invites(fresh_lab) == [(agent, MAIN_CID)]  # no INVITE to the target


async def test_wrong_key_twice_is_not_confirmed(fresh_lab, telephony):
    t = await telephony(sections(fresh_lab))
    agent, target = num(212, "0778"), num(212, "1123")
    call = await t.place(agent, target)
    final = await t.final(call, timeout=30)
    assert final.reason is EndReason.AGENT_NOT_CONFIRMED, final.detail
    assert invites(fresh_lab) == [(agent, MAIN_CID)]


async def test_confirming_agent_is_connected_and_the_target_key_changes_nothing(
    fresh_lab, telephony
):
    """The agent presses 1: the target is dialed and bridged. The target's carrier presses 1
    too once it answers; keys are never read from the called party, so nothing happens."""
    t = await telephony(sections(fresh_lab))
    agent, target = num(212, "0999"), num(212, "1123")
    call = await t.place(agent, target)
    connected = await t.reach(call, CallState.CONNECTED)
    assert connected.dialing_target_at > connected.agent_answered_at
    final = await t.final(call)  # the target's carrier hangs up 2 s after answering
    assert final.reason is EndReason.COMPLETED and final.talk_seconds > 0.5
    assert invites(fresh_lab) == [(agent, MAIN_CID), (target, MAIN_CID)]


async def test_route_without_confirmation_connects_without_a_key(fresh_lab, telephony):
    """confirm = "none": the target is dialed as soon as the agent's phone answers, even by
    a voicemail box that never presses anything (the risk the default avoids)."""
    t = await telephony(sections(fresh_lab, agent_ring=5, confirm="none"))
    agent, target = num(212, "0777"), num(212, "0999")
    call = await t.place(agent, target)
    seen = []
    async for record in t.manager.watch(call.id):
        if not seen or seen[-1] is not record.state:
            seen.append(record.state)
        if record.state is CallState.CONNECTED:  # the voicemail box would talk for 20 s
            assert await t.manager.hangup(call.id)
    assert CallState.AWAITING_CONFIRMATION not in seen
    assert CallState.CONNECTED in seen
    assert t.app.store.get_call(call.id).reason is EndReason.COMPLETED
    assert invites(fresh_lab) == [(agent, MAIN_CID), (target, MAIN_CID)]


# ------------------------------------------------------------------------------ caller IDs


async def test_both_legs_present_owned_numbers_and_a_foreign_one_is_refused(fresh_lab, telephony):
    """The carriers answer 403 to a From the operator does not own. Both legs present the
    route's caller ID and pass; a route whose caller ID the carrier does not count as the
    operator's is refused on the agent's leg, and nothing else is dialed."""
    t = await telephony(sections(fresh_lab))
    agent, target = num(212, "0111"), num(212, "1123")
    call = await t.place(agent, target)
    assert (await t.final(call)).reason is EndReason.COMPLETED
    assert invites(fresh_lab) == [(agent, MAIN_CID), (target, MAIN_CID)]

    fresh_lab.clear_invites()
    foreign = "+12125550177"  # a real number, but not one the lab's carriers count as ours
    t2 = await telephony(sections(fresh_lab, caller_ids=[foreign]))
    t2._ids = itertools.count(5000)  # the same database: other agent ids
    call = await t2.place(agent, target)
    final = await t2.final(call)
    assert final.reason is EndReason.AGENT_REJECTED, final.detail
    assert "403" in final.detail
    assert invites(fresh_lab) == [(agent, foreign)]  # refused: nothing else was dialed


# ------------------------------------------------------------------------------ restarts


async def test_calls_during_an_asterisk_restart_are_held_or_refused_never_sent(own_lab, telephony):
    """`core restart now`: Asterisk sends Shutdown (Restart: True), drops the link, accepts AMI
    logins again before it is FullyBooted. A call placed meanwhile is held until FullyBooted
    and only then sent; one held longer than boot_hold is refused with the "starting" text,
    nothing sent, nothing recorded."""
    lab = own_lab()
    t = await telephony(sections(lab))
    agent, target = num(212, "0111"), num(212, "1123")
    written: list[bool] = []  # for each Originate written: was FullyBooted seen first?
    t.link().write_observer = lambda _cid: written.append(t.link().booted.is_set())

    t.driver.boot_hold = 30
    await asyncio.to_thread(lab.cli, "core restart now")
    await wait_for(lambda: not t.link().ready)
    call = await t.place(agent, target)  # held through the restart window
    assert written == [True]
    assert (await t.final(call)).reason is EndReason.COMPLETED
    assert invites(lab) == [(agent, MAIN_CID), (target, MAIN_CID)]  # once, after the boot

    t.driver.boot_hold = 0.05
    await wait_for(lambda: t.link().ready)
    await asyncio.to_thread(lab.cli, "core restart now")
    await wait_for(lambda: not t.link().ready)
    with pytest.raises(RefusedError) as err:
        await t.place(agent, target)
    assert err.value.reason == "pbx_starting"
    assert err.value.message == "The phone system is starting, try again in a moment."
    assert written == [True] and len(t.app.store.recent_calls()) == 1
    await wait_for(lambda: t.link().ready, timeout=30)


async def wait_for(predicate, timeout: float = 15.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)
