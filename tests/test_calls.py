"""The call state machine and call placement, driven by the simulated PBX and by scripted
drivers registered at the trunk-driver hook (the same seam third-party drivers use)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from corecall_testing import AGENT_ON_ROUTE_M

from corecall import hookimpl
from corecall.agents import AgentAdmin
from corecall.domain import CallState, EndReason
from corecall.errors import RefusedError, TelephonyError
from corecall.telephony.driver import TrunkDriver

AGENT = AGENT_ON_ROUTE_M
ANSWERING_TARGET = "+12125550123"


class ScriptedDriver(TrunkDriver):
    """Records what it was asked to dial; the test drives progress by hand."""

    NAME = "scripted"
    instances: list[ScriptedDriver] = []

    def __init__(self, config):
        super().__init__(config)
        self.originated = []
        self.hangups = []
        self.progress = None
        self.fail_with: Exception | None = None
        ScriptedDriver.instances.append(self)

    async def originate(self, request, progress):
        if self.fail_with:
            raise self.fail_with
        self.originated.append(request)
        self.progress = progress

    async def hangup(self, call_id):
        self.hangups.append(call_id)
        return True


class ScriptedDriverPlugin:
    @hookimpl
    def corecall_register_trunk_drivers(self, registry):
        registry.register(ScriptedDriver)


class Recorder:
    """A listener plugin: what corecall_call_state_changed announced, in order."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def corecall_call_state_changed(self, call, previous):
        self.seen.append((call.id, previous, call.state, call.reason))


class Exploding:
    @hookimpl
    def corecall_call_state_changed(self, call, previous):
        raise RuntimeError("listener bug")


@pytest.fixture
def setup(started_calls):
    """An app with an authorized agent on route M, and a running CallManager."""

    async def build(driver="simulated", extra=(), **config_sections):
        ScriptedDriver.instances.clear()
        if driver == "scripted":
            config_sections.setdefault(
                "trunks", {"main": {"driver": "scripted"}, "dev": {"driver": "scripted"}}
            )
        recorder = Recorder()
        plugins = [("scripted_driver", ScriptedDriverPlugin()), ("recorder", recorder), *extra]
        app, manager = await started_calls(extra_plugins=plugins, **config_sections)
        return app, manager, recorder

    return build


async def test_completed_call_walks_every_state_and_is_on_record(setup):
    app, manager, recorder = await setup()
    call = await manager.place(AGENT, "(212) 555-0123")
    states = [r.state async for r in manager.watch(call.id)]
    assert states[-1] is CallState.ENDED
    final = app.store.get_call(call.id)
    assert final.reason is EndReason.COMPLETED
    assert (final.agent_id, final.target, final.route_code, final.caller_id) == (
        AGENT, ANSWERING_TARGET, "M", "+12125550100",
    )  # fmt: skip
    stamps = [
        final.dialing_agent_at,
        final.agent_ringing_at,
        final.agent_answered_at,
        final.dialing_target_at,
        final.target_ringing_at,
        final.connected_at,
        final.ended_at,
    ]
    assert all(stamps) and stamps == sorted(stamps)
    assert final.talk_seconds > 0 and final.ring_seconds > 0
    announced = [s for cid, _, s, _ in recorder.seen if cid == call.id]
    assert announced == [
        CallState.QUEUED, CallState.DIALING_AGENT, CallState.AGENT_RINGING,
        CallState.AGENT_ANSWERED, CallState.AWAITING_CONFIRMATION, CallState.DIALING_TARGET,
        CallState.TARGET_RINGING, CallState.CONNECTED, CallState.ENDED,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("agent_phone", "target", "reason"),
    [
        ("+12125550486", ANSWERING_TARGET, EndReason.AGENT_BUSY),
        ("+12125550408", ANSWERING_TARGET, EndReason.AGENT_NO_ANSWER),
        ("+12125550403", ANSWERING_TARGET, EndReason.AGENT_REJECTED),
        ("+12125550183", ANSWERING_TARGET, EndReason.AGENT_NO_ANSWER),  # early media only
        ("+12125550777", ANSWERING_TARGET, EndReason.AGENT_NOT_CONFIRMED),  # voicemail
        ("+12125550778", ANSWERING_TARGET, EndReason.AGENT_NOT_CONFIRMED),  # wrong key
        ("+12125550111", "+12125550486", EndReason.TARGET_BUSY),
        ("+12125550111", "+12125550408", EndReason.TARGET_NO_ANSWER),
        ("+12125550111", "+12125550503", EndReason.TARGET_UNREACHABLE),
    ],
)
async def test_simulated_failures_reach_their_final_reason(setup, agent_phone, target, reason):
    app, manager, _ = await setup()
    AgentAdmin(app).set_phone(AGENT, agent_phone, actor="test")
    call = await manager.place(AGENT, target)
    final = await manager.wait_final(call.id, timeout=5)
    assert (final.state, final.reason) == (CallState.ENDED, reason)
    assert app.store.get_call(call.id).reason is reason
    assert final.connected_at is None


async def test_voicemail_agent_is_never_bridged_and_the_target_never_dialed(setup):
    app, manager, recorder = await setup()
    AgentAdmin(app).set_phone(AGENT, "+12125550777", actor="test")
    call = await manager.place(AGENT, ANSWERING_TARGET)
    final = await manager.wait_final(call.id, timeout=5)
    assert final.reason is EndReason.AGENT_NOT_CONFIRMED
    announced = [s for cid, _, s, _ in recorder.seen if cid == call.id]
    assert CallState.AWAITING_CONFIRMATION in announced
    assert CallState.DIALING_TARGET not in announced and final.dialing_target_at is None
    assert app.store.get_call(call.id).reason is EndReason.AGENT_NOT_CONFIRMED


async def test_route_without_confirmation_dials_the_target_on_answer(setup, tmp_path):
    routes = {
        "M": {"trunk": "main", "caller_ids": ["+12125550100"], "confirm": "none"},
        "D": {"trunk": "dev", "caller_ids": ["+12125550199"]},
    }
    _app, manager, recorder = await setup(routes=routes)
    call = await manager.place(AGENT, ANSWERING_TARGET)
    final = await manager.wait_final(call.id, timeout=5)
    assert final.reason is EndReason.COMPLETED
    announced = [s for cid, _, s, _ in recorder.seen if cid == call.id]
    assert CallState.AWAITING_CONFIRMATION not in announced
    assert CallState.DIALING_TARGET in announced


@pytest.mark.parametrize(
    ("route_options", "confirm", "timeout", "agent_caller_id"),
    [
        ({}, "key", 10, "+12125550100"),
        ({"confirm": "none"}, "none", 10, "+12125550100"),
        ({"confirm_timeout": 4, "agent_leg_caller_id": "route"}, "key", 4, "+12125550100"),
    ],
)
async def test_route_options_reach_the_driver(
    setup, route_options, confirm, timeout, agent_caller_id
):
    routes = {
        "M": {"trunk": "main", "caller_ids": ["+12125550100"], **route_options},
        "D": {"trunk": "dev", "caller_ids": ["+12125550199"]},
    }
    _app, manager, _ = await setup(driver="scripted", routes=routes)
    await manager.place(AGENT, ANSWERING_TARGET)
    (request,) = ScriptedDriver.instances[0].originated
    assert (request.confirm, request.confirm_timeout) == (confirm, timeout)
    assert (request.caller_id, request.agent_caller_id) == ("+12125550100", agent_caller_id)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("911", "emergency"), ("+19002000000", "premium_rate"), ("hello", "not_a_number"),
     ("+1 809 555 0123", "country_not_allowed"), ("", "empty")],
)  # fmt: skip
async def test_refused_numbers_dial_nothing_and_record_nothing(setup, text, reason):
    app, manager, _ = await setup(driver="scripted")
    with pytest.raises(RefusedError) as err:
        await manager.place(AGENT, text)
    assert err.value.reason == reason
    assert ScriptedDriver.instances[0].originated == []
    assert app.store.recent_calls(AGENT) == []


async def test_unauthorized_and_routeless_agents_are_refused(setup):
    app, manager, _ = await setup(driver="scripted")
    with pytest.raises(RefusedError, match="Telegram id 999") as err:
        await manager.place(999, ANSWERING_TARGET)
    assert err.value.reason == "not_authorized"
    AgentAdmin(app).revoke(AGENT, actor="test")
    with pytest.raises(RefusedError) as err:
        await manager.place(AGENT, ANSWERING_TARGET)
    assert err.value.reason == "not_authorized"
    AgentAdmin(app).add(600, "+12125550112", authorized=True, actor="test")
    with pytest.raises(RefusedError, match="Choose a route") as err:
        await manager.place(600, ANSWERING_TARGET)
    assert err.value.reason == "no_route"
    # A route chosen, then withdrawn (its plugin disabled, [routes.Z] removed): not "first".
    db = sqlite3.connect(app.store.path)
    db.execute("UPDATE agents SET route_code = 'Z' WHERE telegram_id = 600")
    db.commit()
    db.close()
    with pytest.raises(RefusedError) as err:
        await manager.place(600, ANSWERING_TARGET)
    names = " or ".join(r.name for r in app.routes().values())
    assert (err.value.reason, err.value.message) == (
        "no_route",
        f"Your route [Z] is no longer offered. Choose another ({names}), then call again.",
    )
    assert ScriptedDriver.instances[0].originated == []


async def test_tampered_phone_in_store_never_reaches_the_driver(setup):
    app, manager, _ = await setup(driver="scripted")
    db = sqlite3.connect(app.store.path)
    db.execute("UPDATE agents SET phone = ? WHERE telegram_id = ?",
               ("+12125550111\r\nAction: Originate", AGENT))  # fmt: skip
    db.commit()
    db.close()
    with pytest.raises(RefusedError) as err:
        await manager.place(AGENT, ANSWERING_TARGET)
    assert err.value.reason == "agent_phone_invalid"
    assert ScriptedDriver.instances[0].originated == []


async def test_one_live_call_per_agent_and_rate_cap(setup):
    _app, manager, _ = await setup(driver="scripted", limits={"calls_per_minute": 2})
    driver = ScriptedDriver.instances[0]
    first = await manager.place(AGENT, ANSWERING_TARGET)
    with pytest.raises(RefusedError, match="already have 1 live call") as err:
        await manager.place(AGENT, ANSWERING_TARGET)
    assert err.value.reason == "call_in_progress"
    driver.progress(first.id, CallState.ENDED, EndReason.AGENT_BUSY)
    await manager.wait_final(first.id, timeout=2)
    second = await manager.place(AGENT, ANSWERING_TARGET)
    driver.progress(second.id, CallState.ENDED, EndReason.AGENT_BUSY)
    await manager.wait_final(second.id, timeout=2)
    with pytest.raises(RefusedError, match="2 calls in the last minute") as err:
        await manager.place(AGENT, ANSWERING_TARGET)
    assert err.value.reason == "rate_limited"
    assert len(driver.originated) == 2


async def test_concurrent_requests_place_only_one_call(setup):
    _app, manager, _ = await setup(driver="scripted")
    results = await asyncio.gather(
        *(manager.place(AGENT, ANSWERING_TARGET) for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert len(ScriptedDriver.instances[0].originated) == 1


async def test_state_machine_ignores_repeats_and_backward_moves(setup):
    app, manager, recorder = await setup(driver="scripted")
    driver = ScriptedDriver.instances[0]
    call = await manager.place(AGENT, ANSWERING_TARGET)
    p = driver.progress
    p(call.id, CallState.AGENT_ANSWERED)
    p(call.id, CallState.AGENT_RINGING)  # late event: ignored
    p(call.id, CallState.AGENT_ANSWERED)  # repeat: ignored
    p(call.id, CallState.CONNECTED)
    p(call.id, CallState.ENDED, EndReason.COMPLETED)
    p(call.id, CallState.ENDED, EndReason.TARGET_BUSY)  # final is final
    p(call.id, CallState.CONNECTED)
    final = await manager.wait_final(call.id, timeout=2)
    assert final.reason is EndReason.COMPLETED
    assert app.store.get_call(call.id).reason is EndReason.COMPLETED
    states = [s for cid, _, s, _ in recorder.seen if cid == call.id]
    assert states == [CallState.QUEUED, CallState.DIALING_AGENT, CallState.AGENT_ANSWERED,
                      CallState.CONNECTED, CallState.ENDED]  # fmt: skip


async def test_a_watcher_is_shown_only_states_already_on_record(setup):
    """A watcher that arrives while transitions still wait in the writer's queue starts from
    the state on record and sees the rest as each is written: what the agent's status message
    shows can always be read back (a DNC button pressed on "connected" finds the call
    connected in the store)."""
    app, manager, _ = await setup(driver="scripted")
    driver = ScriptedDriver.instances[0]
    call = await manager.place(AGENT, ANSWERING_TARGET)
    driver.progress(call.id, CallState.AGENT_ANSWERED)
    driver.progress(call.id, CallState.CONNECTED)  # both only in memory so far
    seen = []
    async for record in manager.watch(call.id):
        on_record = app.store.get_call(call.id)
        assert on_record.state.order >= record.state.order, (record.state, on_record.state)
        seen.append(record.state)
        if record.state is CallState.CONNECTED:
            driver.progress(call.id, CallState.ENDED, EndReason.COMPLETED)
    assert seen[-2:] == [CallState.CONNECTED, CallState.ENDED]
    assert seen == sorted(seen, key=lambda state: state.order)


@pytest.mark.parametrize(
    "bad", [("ringing-ish",), (CallState.ENDED, "not-a-reason"), (CallState.ENDED, 17)]
)
async def test_a_driver_report_outside_the_contract_never_strands_the_call(setup, caplog, bad):
    """A third-party driver ending a call with a reason that is not an EndReason made the
    writer fail (the call stayed 'dialing_agent', the agent's message 'Calling your
    phone…' for ever, other plugins crashed on it); a state that is not a CallState raised
    into the driver (tester5). Now: logged naming the driver; a bad state is ignored, a bad
    end reason ends the call as unknown, on record, for everyone."""
    app, manager, recorder = await setup(driver="scripted")
    driver = ScriptedDriver.instances[0]
    call = await manager.place(AGENT, ANSWERING_TARGET)
    driver.progress(call.id, *bad)  # must not raise into the driver
    assert "trunk driver 'scripted' " in caplog.text
    if bad[0] is not CallState.ENDED:
        driver.progress(call.id, CallState.ENDED, EndReason.AGENT_NO_ANSWER)
    final = await manager.wait_final(call.id, timeout=2)
    on_record = app.store.get_call(call.id)
    assert on_record.state is CallState.ENDED and on_record.reason is final.reason
    if bad[0] is CallState.ENDED:
        assert final.reason is EndReason.UNKNOWN
        assert f"invalid end reason {bad[1]!r}" in on_record.detail
    else:
        assert final.reason is EndReason.AGENT_NO_ANSWER
    assert recorder.seen[-1][2:] == (CallState.ENDED, final.reason)
    assert "writing the state" not in caplog.text


async def test_a_far_end_s_text_in_the_end_detail_is_stored_as_one_safe_line(setup):
    """A SIP reason phrase the callee's carrier controls reached `calls list`, the bot and
    the audit with its ESC sequences and line breaks (tester5)."""
    app, manager, _ = await setup(driver="scripted")
    driver = ScriptedDriver.instances[0]
    call = await manager.place(AGENT, ANSWERING_TARGET)
    driver.progress(call.id, CallState.ENDED, EndReason.TARGET_BUSY,
                    "486 Busy \x1b[31mHere\x1b]0;pwned\x07\nline2")  # fmt: skip
    final = await manager.wait_final(call.id, timeout=2)
    stored = app.store.get_call(call.id).detail
    assert final.detail == stored == "486 Busy \ufffd[31mHere\ufffd]0;pwned\ufffd line2"


class ExplodingStart(ScriptedDriver):
    NAME = "exploding_start"

    async def start(self):
        raise RuntimeError("bad_pbx start exploded")


class NeverStarts(ScriptedDriver):
    NAME = "never_starts"

    async def start(self):
        await asyncio.sleep(3600)


class BadDrivers:
    @hookimpl
    def corecall_register_trunk_drivers(self, registry):
        registry.register(ExplodingStart)
        registry.register(NeverStarts)


@pytest.mark.parametrize(
    "driver, said", [("exploding_start", "failed to start: RuntimeError: bad_pbx start "
                      "exploded"), ("never_starts", "did not start within")]
)  # fmt: skip
async def test_a_trunk_driver_that_does_not_start_takes_only_its_trunks_down(
    setup, monkeypatch, caplog, driver, said
):
    """A third-party driver whose start() raised, used by one trunk only, stopped the whole
    process with 'unexpected RuntimeError', naming neither the driver nor its plugin
    (tester5). Its trunks refuse calls; the others serve; health reports it."""
    import corecall.calls

    monkeypatch.setattr(corecall.calls, "DRIVER_START_TIMEOUT", 0.3)
    _app, manager, _ = await setup(
        extra=[("t5_baddriver", BadDrivers())],
        trunks={"dev": {"driver": driver}},
    )
    problem = manager.failed_drivers[driver]
    assert f"trunk driver {driver!r} (plugin 't5_baddriver') {said}" in problem
    assert "trunk(s) dev cannot place calls" in problem and problem in caplog.text
    call = await manager.place(AGENT, ANSWERING_TARGET)  # route M: main, simulated
    assert (await manager.wait_final(call.id, timeout=5)).reason is EndReason.COMPLETED
    AgentAdmin(_app).set_route(AGENT, "D", actor="test")
    with pytest.raises(RefusedError) as refused:
        await manager.place(AGENT, ANSWERING_TARGET)
    assert refused.value.reason == "trunk_unavailable" and driver in refused.value.message


@pytest.mark.parametrize(
    "text, reason, said",
    [
        ("+12125550111", "own_phone", "is your own phone"),
        ("(212) 555-0111", "own_phone", "is your own phone"),
        ("+12125550100", "own_caller_id", "caller IDs of the Main route"),
        ("+12125550199", "own_caller_id", "caller IDs of the Development route"),
    ],
)
async def test_a_call_to_the_agent_s_own_phone_or_a_caller_id_is_refused(setup, text, reason, said):
    """Both were placed: the agent's phone rang twice (tester5)."""
    _app, manager, _ = await setup(driver="scripted")
    with pytest.raises(RefusedError) as refused:
        await manager.place(AGENT, text)
    assert refused.value.reason == reason and said in refused.value.message
    assert ScriptedDriver.instances[0].originated == []
    with pytest.raises(RefusedError) as refused:
        await manager.place_operator_call("M", "+12125550111", text, actor="cli:ops")
    assert refused.value.reason == reason


class HangingOriginate(ScriptedDriver):
    NAME = "hanging_originate"

    async def originate(self, request, progress):
        self.originated.append(request)
        await asyncio.sleep(3600)


class HangingDrivers:
    @hookimpl
    def corecall_register_trunk_drivers(self, registry):
        registry.register(HangingOriginate)


async def test_a_driver_whose_originate_never_returns_does_not_hold_the_agent(
    setup, monkeypatch, caplog
):
    """The agent's lock is held until originate() returns: /call and then /start got no
    answer at all, and the record stayed unfinished (tester5)."""
    import corecall.calls

    monkeypatch.setattr(corecall.calls, "ORIGINATE_TIMEOUT", 0.3)
    app, manager, _ = await setup(
        extra=[("hanging", HangingDrivers())],
        trunks={"main": {"driver": "hanging_originate"}},
    )
    async with asyncio.timeout(5):
        record = await manager.place(AGENT, ANSWERING_TARGET)
    assert record.state is CallState.ENDED and record.reason is EndReason.TRUNK_UNAVAILABLE
    assert "did not answer within 0.3 s" in record.detail
    assert "trunk driver 'hanging_originate' did not return from originate" in caplog.text
    final = await manager.wait_final(record.id, timeout=2)
    assert app.store.get_call(final.id).state is CallState.ENDED
    driver = manager.drivers["hanging_originate"]
    for _ in range(50):  # the best-effort hang-up of the abandoned call
        if driver.hangups:
            break
        await asyncio.sleep(0.02)
    assert driver.hangups == [record.id]
    async with asyncio.timeout(5):  # the agent is free again: the next request is answered
        again = await manager.place(AGENT, ANSWERING_TARGET)
    assert again.reason is EndReason.TRUNK_UNAVAILABLE


async def test_hangup_before_connect_is_cancelled_after_connect_completed(setup):
    _app, manager, _ = await setup(driver="scripted")
    driver = ScriptedDriver.instances[0]
    call = await manager.place(AGENT, ANSWERING_TARGET)
    driver.progress(call.id, CallState.TARGET_RINGING)
    assert await manager.hangup(call.id) is True
    assert driver.hangups == [call.id]
    driver.progress(call.id, CallState.ENDED, EndReason.TARGET_NO_ANSWER)  # what the PBX saw
    assert (await manager.wait_final(call.id, 2)).reason is EndReason.CANCELLED

    call = await manager.place(AGENT, ANSWERING_TARGET)
    driver.progress(call.id, CallState.CONNECTED)
    await manager.hangup(call.id)
    driver.progress(call.id, CallState.ENDED, EndReason.UNKNOWN)
    assert (await manager.wait_final(call.id, 2)).reason is EndReason.COMPLETED
    assert await manager.hangup(call.id) is False  # no longer live


async def test_driver_failure_ends_call_as_trunk_unavailable(setup):
    _app, manager, _ = await setup(driver="scripted")
    ScriptedDriver.instances[0].fail_with = TelephonyError("AMI login failed on pbx1")
    call = await manager.place(AGENT, ANSWERING_TARGET)
    final = await manager.wait_final(call.id, 2)
    assert final.reason is EndReason.TRUNK_UNAVAILABLE and "AMI login failed" in final.detail
    ScriptedDriver.instances[0].fail_with = ZeroDivisionError()
    call = await manager.place(AGENT, ANSWERING_TARGET)
    assert (await manager.wait_final(call.id, 2)).reason is EndReason.TRUNK_UNAVAILABLE


async def test_a_failing_listener_does_not_stop_the_call_or_other_listeners(setup, caplog):
    _app, manager, recorder = await setup(extra=[("exploding", Exploding())])
    call = await manager.place(AGENT, ANSWERING_TARGET)
    final = await manager.wait_final(call.id, 5)
    assert final.reason is EndReason.COMPLETED
    assert [s for cid, _, s, _ in recorder.seen if cid == call.id][-1] is CallState.ENDED
    assert "'exploding' failed in corecall_call_state_changed" in caplog.text


async def test_silent_pbx_is_ended_unknown_by_the_watchdog(setup, monkeypatch):
    monkeypatch.setattr("corecall.calls.WATCHDOG_GRACE", 0.05)
    _app, manager, _ = await setup(driver="scripted", calls={"agent_ring_timeout": 1,
                                                            "target_ring_timeout": 1})  # fmt: skip
    call = await manager.place(AGENT, ANSWERING_TARGET)
    final = await manager.wait_final(call.id, 5)
    assert final.reason is EndReason.UNKNOWN and "no word" in final.detail


async def test_unfinished_calls_from_a_previous_run_are_reconciled(setup):
    app, manager, _ = await setup(driver="scripted")
    call = await manager.place(AGENT, ANSWERING_TARGET)
    ScriptedDriver.instances[0].progress(call.id, CallState.CONNECTED)
    await asyncio.sleep(0.05)
    await manager.stop()  # the process goes away with the call still up
    assert app.store.get_call(call.id).state is CallState.CONNECTED
    again = app.call_manager()
    await again.start()
    try:
        final = await again.wait_final(call.id, 2)
        assert final.reason is EndReason.UNKNOWN  # the base driver cannot know; it says so
        assert app.store.unfinished_calls() == []
    finally:
        await again.stop()
