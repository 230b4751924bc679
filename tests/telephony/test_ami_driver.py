"""The AMI driver without Asterisk: injection guards, and connection handling against a fake
AMI server (login, dead-connection detection, backoff, never re-sending an Originate)."""

from __future__ import annotations

import asyncio

import pytest
from corecall_asterisk.actions import action_bytes, build_originate, check_header
from corecall_asterisk.link import AmiLink
from corecall_testing.ami import FULLY_BOOTED, HOLDS, TARGET, FakeAmi, ami_sections, server_of

from corecall.domain import CallState, EndReason, TrunkConfig
from corecall.errors import RefusedError, UnsafeValueError
from corecall.telephony.driver import OriginateRequest

CALL_ID = "0123456789abcdef0123456789abcdef"
TRUNK = TrunkConfig(
    name="main", driver="asterisk_ami", options={"server": "pbx1", "endpoint": "corecall-main"}
)
ENDPOINT = "corecall-main"


def request(**changes) -> OriginateRequest:
    """A valid request, then fields forced to other values *bypassing* validation, as a bug
    or a tampered store could produce them: the driver must still refuse them."""
    req = OriginateRequest(
        call_id=CALL_ID, agent_phone=HOLDS, target=TARGET, caller_id="+12125550100",
        trunk=TRUNK, agent_ring_timeout=2, target_ring_timeout=3,
    )  # fmt: skip
    for name, value in changes.items():
        object.__setattr__(req, name, value)
    return req


# ------------------------------------------------------------------------ the Originate


def test_originate_is_exactly_what_the_dialplan_expects():
    text = build_originate(request(), endpoint=ENDPOINT, context="corecall-bridge").decode()
    assert text == (
        "Action: Originate\r\n"
        f"ActionID: {CALL_ID}-o\r\n"
        f"Channel: PJSIP/{HOLDS}@corecall-main\r\n"
        "Context: corecall-bridge\r\n"
        f"Exten: {TARGET}\r\n"
        "Priority: 1\r\n"
        "CallerID: +12125550100\r\n"  # the route's own number, never the target's
        "Timeout: 2000\r\n"
        f"ChannelId: {CALL_ID}-a\r\n"
        f"Variable: CORECALL_CALL_ID={CALL_ID},CORECALL_TRUNK=corecall-main,"
        "CORECALL_CALLER_ID=+12125550100,CORECALL_DIAL_TIMEOUT=3,"
        "CORECALL_CONFIRM=key,CORECALL_CONFIRM_TIMEOUT=10\r\n"
        "Async: true\r\n\r\n"
    )
    assert "Application" not in text and "Data:" not in text


BAD_NUMBERS = [
    "+12125550111\r\nAction: Originate",
    "+12125550111\nChannel: Local/x",
    "+12125550111\r",
    "+1212555\x000111",
    "+12125550111&PJSIP/+19005550000@corecall-main",
    "+12125550111/x",
    "+12125550111@corecall-dev",
    "+1212555,0111",
    "12125550111",
    "+1 212 555 0111",
    "",
]


@pytest.mark.parametrize("field", ["agent_phone", "target", "caller_id", "agent_caller_id"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_no_unsafe_number_reaches_the_originate(field, value):
    with pytest.raises(UnsafeValueError):
        build_originate(request(**{field: value}), endpoint=ENDPOINT, context="corecall-bridge")


@pytest.mark.parametrize(
    "endpoint",
    ["corecall-main\r\nAction: Hangup", "corecall-main&corecall-dev", "a/b", "a@b", "a,b", "",
     None, "corecall main", "corecall-mäin", "Main_Trunk", "corecall-"],
)  # fmt: skip
def test_unsafe_endpoint_names_are_refused(endpoint):
    with pytest.raises(UnsafeValueError):
        build_originate(request(), endpoint=endpoint, context="corecall-bridge")


@pytest.mark.parametrize(
    "context", ["corecall-bridge\r\nAction: x", "a,b", "a b", "", "a/b", "brïdge", "Bridge"]
)
def test_unsafe_context_is_refused(context):
    with pytest.raises(UnsafeValueError):
        build_originate(request(), endpoint=ENDPOINT, context=context)


@pytest.mark.parametrize(
    "call_id", [CALL_ID.upper(), CALL_ID[:-1], CALL_ID + "\r\n", "x" * 32, CALL_ID[:31] + ","]
)
def test_unsafe_call_id_is_refused(call_id):
    with pytest.raises(UnsafeValueError):
        build_originate(request(call_id=call_id), endpoint=ENDPOINT, context="corecall-bridge")


@pytest.mark.parametrize("timeout", [0, -1, 10**6, True, "30", 2.5])
def test_timeouts_must_be_sane_integers(timeout):
    with pytest.raises(UnsafeValueError):
        build_originate(
            request(agent_ring_timeout=timeout), endpoint=ENDPOINT, context="corecall-bridge"
        )
    with pytest.raises(UnsafeValueError):
        build_originate(
            request(target_ring_timeout=timeout), endpoint=ENDPOINT, context="corecall-bridge"
        )


@pytest.mark.parametrize(
    ("name", "value"),
    [("Channel", "x\r\nAction: Originate"), ("Channel", "x\ny"), ("Channel", "x\ry"),
     ("Channel", "x\0"), ("Bad Name", "x"), ("X\r\nY", "x"), ("Channel", 5)],
)  # fmt: skip
def test_every_header_is_checked(name, value):
    with pytest.raises(UnsafeValueError):
        check_header(name, value)
    with pytest.raises(UnsafeValueError):
        action_bytes([("Action", "Hangup"), (name, value)])


async def test_driver_hangup_refuses_a_crafted_call_id(telephony):
    t = await telephony(ami_sections({"pbx1": server_of(port=1)}), start=False)
    with pytest.raises(UnsafeValueError):
        await t.driver.hangup(CALL_ID + "\r\nAction: Originate")


# ------------------------------------------------------------------------ connection handling


async def test_login_ping_and_originate_against_a_fake_ami(telephony):
    async with FakeAmi() as ami:
        t = await telephony(ami_sections({"pbx1": server_of(port=ami.port, ping_interval=0.1)}))
        call = await t.place(HOLDS, TARGET)
        assert call.state is CallState.DIALING_AGENT
        await asyncio.sleep(0.35)
        assert len(ami.named("Ping")) >= 2  # our own ping runs
        login = ami.named("Login")[0]
        assert (login["Username"], login["Secret"], login["Events"]) == (
            "corecall", "s3cret-s3cret", "on",
        )  # fmt: skip
        (originate,) = ami.named("Originate")
        assert originate["ChannelId"] == f"{call.id}-a"
        assert originate["ActionID"] == f"{call.id}-o"


async def test_no_call_goes_out_before_fully_booted(telephony):
    """Asterisk accepts AMI logins before it is FullyBooted; an Originate sent then fails
    ("Extension does not exist"). A /call in that window is held a few seconds, then refused
    with the "starting" text: nothing is sent, nothing recorded."""
    async with FakeAmi() as ami:
        ami.fully_booted = False
        t = await telephony(ami_sections({"pbx1": server_of(port=ami.port)}))
        assert t.link().is_up and t.link().starting
        t.driver.boot_hold = 0.2
        with pytest.raises(RefusedError) as err:
            await t.place(HOLDS, TARGET)
        assert err.value.reason == "pbx_starting"
        assert err.value.message == "The phone system is starting, try again in a moment."
        assert ami.named("Originate") == [] and t.app.store.recent_calls() == []

        # Held, not refused, when FullyBooted comes within the hold: then it goes out.
        t.driver.boot_hold = 5
        placing = asyncio.create_task(t.place(HOLDS, TARGET))
        await asyncio.sleep(0.3)
        assert ami.named("Originate") == []  # still held
        ami.send_event(FULLY_BOOTED.decode())
        call = await placing
        assert t.link().ready
        (originate,) = ami.named("Originate")
        assert originate["ChannelId"] == f"{call.id}-a"


async def test_wrong_secret_fails_calls_as_trunk_unavailable_and_keeps_retrying(telephony):
    async with FakeAmi() as ami:
        t = await telephony(ami_sections({"pbx1": server_of(port=ami.port, secret="wrong-one")}))
        call = await t.place(HOLDS, TARGET)
        final = await t.final(call, 5)
        assert final.reason is EndReason.TRUNK_UNAVAILABLE
        assert "login" in final.detail and "refused" in final.detail
        assert ami.named("Originate") == []
        attempts = ami.connections
        await asyncio.sleep(0.6)
        assert ami.connections > attempts  # still trying, with backoff
        gaps = [b - a for a, b in zip(ami.connect_times, ami.connect_times[1:], strict=False)]
        assert max(gaps) <= AmiLink.reconnect_max * 1.1 + 0.3  # capped


async def test_backoff_grows_then_caps(telephony, monkeypatch):
    monkeypatch.setattr(AmiLink, "reconnect_initial", 0.02)
    monkeypatch.setattr(AmiLink, "reconnect_max", 0.16)
    async with FakeAmi() as ami:
        await telephony(ami_sections({"pbx1": server_of(port=ami.port, secret="wrong-one")}))
        await asyncio.sleep(1.2)
    gaps = [b - a for a, b in zip(ami.connect_times, ami.connect_times[1:], strict=False)]
    assert gaps[0] < 0.08, gaps  # starts fast
    assert all(0.13 < g < 0.4 for g in gaps[4:]), gaps  # then waits the cap, no more


async def test_login_that_never_answers_times_out(telephony):
    async with FakeAmi() as ami:
        ami.answer_login = False
        t = await telephony(ami_sections({"pbx1": server_of(port=ami.port, action_timeout=0.3)}))
        assert not t.link().is_up
        assert "timed out" in t.link().last_error
        call = await t.place(HOLDS, TARGET)
        final = await t.final(call, 5)
        assert final.reason is EndReason.TRUNK_UNAVAILABLE
        assert "not connected" in final.detail


async def test_half_open_connection_is_found_by_ping_and_replaced(telephony):
    async with FakeAmi() as ami:
        sections = ami_sections(
            {"pbx1": server_of(port=ami.port, ping_interval=0.1, action_timeout=0.3)}
        )
        t = await telephony(sections)
        assert ami.connections == 1
        ami.answer_pings = False  # the peer is gone but the socket stays open
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(150):
            if ami.connections >= 2:
                break
            await asyncio.sleep(0.02)
        assert ami.connections == 2, "dead connection not detected"
        assert loop.time() - start < 2.0  # ping interval + pong timeout + backoff, roughly
        ami.answer_pings = True
        await asyncio.wait_for(t.link().connected.wait(), 2)
        assert t.link().is_up


async def test_plain_panoramisk_resends_an_unanswered_originate_after_reconnect():
    """The trap this driver defends against, shown with panoramisk itself (1.4)."""
    from panoramisk import Manager

    async with FakeAmi() as ami:
        ami.originate_modes = ["close"]  # the link drops with the Originate in flight
        manager = Manager(
            host="127.0.0.1", port=ami.port, username="corecall", secret="s3cret-s3cret",
            loop=asyncio.get_running_loop(), reconnect_timeout=0, ping_delay=3600,
        )  # fmt: skip
        await manager.connect()
        await asyncio.sleep(0.1)
        manager.send_action({"Action": "Originate", "Channel": "PJSIP/+1@x", "Async": "true"})
        await asyncio.sleep(1.0)
        manager.close()
    # panoramisk placed the same call a second time on the new connection.
    assert ami.connections >= 2
    assert [n for n, a in ami.actions if a["Action"] == "Originate"] == [1, 2]


async def test_driver_never_resends_an_originate_whose_link_dropped(telephony):
    async with FakeAmi() as ami:
        ami.originate_modes = ["close"]  # the link drops with the Originate in flight
        t = await telephony(ami_sections({"pbx1": server_of(port=ami.port)}))
        call = await t.place(HOLDS, TARGET)
        final = await t.final(call, 5)
        await asyncio.sleep(0.3)  # any re-send would have happened by now
        assert ami.connections >= 2  # it did reconnect
        assert len(ami.named("Originate")) == 1
        assert ami.named("Status"), "did not ask Asterisk about the call"
        assert final.reason is EndReason.UNKNOWN
        assert "in flight" in final.detail and "never re-sent" in final.detail


async def test_call_in_flight_at_the_drop_is_tracked_when_asterisk_has_it(telephony):
    async with FakeAmi() as ami:
        ami.originate_modes = ["close"]
        t = await telephony(ami_sections({"pbx1": server_of(port=ami.port)}))
        call = await t.place(HOLDS, TARGET)
        uid = f"{call.id}-a"
        ami.channels = [
            {"Channel": "PJSIP/corecall-main-00000001", "ChannelState": "6", "Uniqueid": uid,
             "Linkedid": uid, "Application": "Dial", "BridgeID": "b1"},
        ]  # fmt: skip
        record = await t.reach(call, CallState.CONNECTED)
        assert record.state is CallState.CONNECTED
        assert len(ami.named("Originate")) == 1
        # Its events keep coming on the new connection, correlated by Linkedid.
        ami.send_event(
            f"Event: UserEvent\r\nChannel: PJSIP/corecall-main-00000001\r\nUniqueid: {uid}\r\n"
            f"Linkedid: {uid}\r\nUserEvent: CorecallEnd\r\nCallId: {call.id}\r\nReason: ok\r\n"
            "DialStatus: ANSWER\r\nHangupCause: 16\r\n\r\n"
        )
        final = await t.final(call, 5)
        assert final.reason is EndReason.COMPLETED


async def test_originate_without_reply_is_not_resent_and_ends_on_record(telephony, monkeypatch):
    from corecall import calls

    monkeypatch.setattr(calls, "WATCHDOG_GRACE", 0.5)
    async with FakeAmi() as ami:
        ami.on_originate = "silence"
        sections = ami_sections({"pbx1": server_of(port=ami.port, action_timeout=0.3)})
        sections["calls"] = {"agent_ring_timeout": 1, "target_ring_timeout": 1}
        t = await telephony(sections)
        call = await t.place(HOLDS, TARGET)
        final = await t.final(call, 6)
        assert final.reason is EndReason.UNKNOWN
        assert len(ami.named("Originate")) == 1


async def test_unfinished_calls_from_a_previous_run_are_reconciled(telephony):
    async with FakeAmi() as ami:
        sections = ami_sections({"pbx1": server_of(port=ami.port)})
        first = await telephony(sections)
        up = await first.place(HOLDS, TARGET)
        gone = await first.place(HOLDS, TARGET)
        await first.manager.stop()  # corecall stops; both records stay unfinished
        uid = f"{up.id}-a"
        ami.channels = [
            {"Channel": "PJSIP/corecall-main-00000007", "ChannelState": "6", "Uniqueid": uid,
             "Linkedid": uid, "Application": "Dial", "BridgeID": ""},
        ]  # fmt: skip
        second = await telephony(sections)
        ended = await second.final(gone, 5)
        assert ended.reason is EndReason.UNKNOWN
        assert "ended while corecall was down" in ended.detail
        still = second.manager.live_calls()
        assert [c.id for c in still] == [up.id]
        assert still[0].state is CallState.DIALING_TARGET
        assert await second.manager.hangup(up.id)
        assert ami.named("Hangup")[-1]["Channel"] == "PJSIP/corecall-main-00000007"
        assert len(ami.named("Originate")) == 2  # nothing re-placed by the reconcile


async def test_asterisk_check_says_asterisk_is_still_starting(tmp_path):
    """`corecall asterisk check` in the restart window (logged in, no FullyBooted yet) says
    Asterisk is still starting instead of reporting a missing bridge context."""
    from corecall_asterisk.check import check_server
    from corecall_asterisk.options import AmiServerConfig, AmiServerOptions

    async with FakeAmi() as ami:
        ami.fully_booted = False
        options = AmiServerOptions(port=ami.port, secret="s3cret-s3cret")
        server = AmiServerConfig.of("pbx1", options)
        results = await check_server(server, {"corecall-main": "M"})
    starting = [r for r in results if "still starting" in r.what]
    assert len(starting) == 1 and not starting[0].ok
    assert "FullyBooted" in starting[0].fix and "read=" in starting[0].fix
    assert not any("context" in r.what or "endpoint" in r.what for r in results)
