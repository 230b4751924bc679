"""The operations hooks, through the real paths that fire them: background services
(corecall_register_services), refusals, store write timings, trunk-driver links, chat edits
and FloodWaits."""

from __future__ import annotations

import asyncio

import pytest
from corecall_testing.fakes import RecordingPort

from corecall import hookimpl
from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.conversation import Conversation
from corecall.conversation.ports import RateLimited
from corecall.domain import CallState
from corecall.errors import RefusedError
from corecall.services import Service

AGENT = 601


class Heard:
    """A plugin module stand-in hearing every notification hook."""

    def __init__(self) -> None:
        self.refused: list[tuple[int, str]] = []
        self.writes: list[tuple[str, float]] = []
        self.links: list[tuple[str, str, bool]] = []
        self.edits: list[int] = []
        self.limited: list[tuple[int, float]] = []

    @hookimpl
    def corecall_call_refused(self, agent_id, reason):
        self.refused.append((agent_id, reason))

    @hookimpl
    def corecall_store_write(self, operation, seconds):
        self.writes.append((operation, seconds))

    @hookimpl
    def corecall_link_state_changed(self, driver, link, up):
        self.links.append((driver, link, up))

    @hookimpl
    def corecall_chat_edit_sent(self, chat_id):
        self.edits.append(chat_id)

    @hookimpl
    def corecall_chat_rate_limited(self, chat_id, seconds):
        self.limited.append((chat_id, seconds))


class Exploding:
    @hookimpl
    def corecall_call_refused(self, agent_id, reason):
        raise RuntimeError("listener bug")


class CallCounter(Service):
    NAME = "call_counter"
    events: list[str] = []

    async def start(self):
        CallCounter.events.append("start")

    async def stop(self):
        CallCounter.events.append("stop")

    @hookimpl
    def corecall_call_state_changed(self, call, previous):
        CallCounter.events.append(call.state.value)


class BrokenService(Service):
    NAME = "broken_service"

    async def start(self):
        raise RuntimeError("cannot start")


class ServicePlugin:
    @hookimpl
    def corecall_register_services(self, registry):
        registry.register(CallCounter)
        registry.register(BrokenService)


@pytest.fixture
def app(make_config):
    heard = Heard()
    app = App(make_config(), extra_plugins=[("heard", heard), ("exploding", Exploding()),
                                            ("services", ServicePlugin())])  # fmt: skip
    admin = AgentAdmin(app)
    admin.add(AGENT, "+12125550111", "Ann", authorized=True, actor="test")
    admin.set_route(AGENT, "M", actor="test")
    app.heard = heard
    yield app
    app.close()


async def test_services_run_with_the_calls_and_hear_state_changes(app, caplog):
    CallCounter.events.clear()
    manager = app.call_manager(services=True)
    await manager.start()
    service = manager.services.get("call_counter")
    assert service is not None and app.plugins.pm.is_registered(service)
    assert manager.services.get("broken_service") is None
    assert "service 'broken_service' of plugin 'services' failed to start" in caplog.text
    call = await manager.place(AGENT, "+12125550123")
    await manager.wait_final(call.id, timeout=5)
    await manager.stop()
    states = [s.value for s in CallState]
    assert CallCounter.events == ["start", *states, "stop"]
    assert not app.plugins.pm.is_registered(service)  # stopped: it hears nothing more
    assert app.plugins.services.get("call_counter").plugin == "services"


class HangingService(Service):
    """A start() that never returns (a connect to a host that does not answer)."""

    NAME = "hanging_service"
    stopped = 0

    async def start(self):
        await asyncio.sleep(3600)

    async def stop(self):
        HangingService.stopped += 1


class BrokenButStoppable(BrokenService):
    NAME = "broken_but_stoppable"
    stopped = 0

    async def stop(self):
        BrokenButStoppable.stopped += 1


async def test_a_service_that_never_starts_is_left_out_in_time(make_config, monkeypatch, caplog):
    """The bot answers nothing before the services started: a start() that never returned
    kept it silent for ever (tester5). It is given SERVICE_START_TIMEOUT, named, stopped
    once (like one whose start raised), reported by health, and the others run."""
    import corecall.services

    monkeypatch.setattr(corecall.services, "SERVICE_START_TIMEOUT", 0.3)
    HangingService.stopped = BrokenButStoppable.stopped = 0
    CallCounter.events.clear()

    class Plugin:
        @hookimpl
        def corecall_register_services(self, registry):
            registry.register(HangingService)
            registry.register(BrokenButStoppable)
            registry.register(CallCounter)

    app = App(make_config(), extra_plugins=[("slow_plugin", Plugin())])
    manager = app.call_manager(services=True)
    try:
        async with asyncio.timeout(5):
            await manager.start()
        assert "service 'hanging_service' of plugin 'slow_plugin' did not start within" in (
            caplog.text
        )
        assert HangingService.stopped == 1 and BrokenButStoppable.stopped == 1
        assert manager.services.get("call_counter") is not None
        assert manager.services.get("hanging_service") is None
        problems = manager.services.problems()
        assert any("'hanging_service' is off (did not start within" in p for p in problems)
        assert any("'broken_but_stoppable' is off (failed to start" in p for p in problems)
    finally:
        await manager.stop()
        app.close()
    assert HangingService.stopped == 1 and BrokenButStoppable.stopped == 1  # once each
    assert CallCounter.events == ["start", "stop"]


async def test_short_lived_commands_start_no_service(app):
    CallCounter.events.clear()
    manager = app.call_manager()
    await manager.start()
    await manager.stop()
    assert CallCounter.events == []


async def test_an_operator_s_refused_test_call_is_told_with_agent_id_0(app):
    """docs/plugin_hooks.md: agent_id is 0 for an operator's `corecall call`; those
    refusals never reached the hook (nor the metrics' refusal counter; tester5)."""
    manager = app.call_manager()
    await manager.start()
    try:
        app.store.dnc_add("+12125550170", reason="asked", actor="test")
        for route, agent_phone, target, reason in [
            ("M", "+12125550111", "911", "emergency"),
            ("M", "+12125550111", "+12125550170", "do_not_call"),
            ("M", "911", "+12125550123", "agent_phone_invalid"),
            ("X", "+12125550111", "+12125550123", "no_route"),
        ]:
            with pytest.raises(RefusedError):
                await manager.place_operator_call(route, agent_phone, target, actor="cli:ops")
            assert app.heard.refused[-1] == (0, reason)
    finally:
        await manager.stop()


async def test_refusals_and_store_writes_are_told(app, caplog):
    manager = app.call_manager()
    await manager.start()
    try:
        for text, reason in [("+1 900 200 0000", "premium_rate"), ("911", "emergency")]:
            with pytest.raises(RefusedError):
                await manager.place(AGENT, text)
            assert app.heard.refused[-1] == (AGENT, reason)
        with pytest.raises(RefusedError):
            await manager.place(999, "+12125550123")
        assert app.heard.refused[-1] == (999, "not_authorized")
        assert "plugin 'exploding' failed in corecall_call_refused" in caplog.text
        call = await manager.place(AGENT, "+12125550123")
        await manager.wait_final(call.id, timeout=5)
    finally:
        await manager.stop()
    operations = {op for op, _ in app.heard.writes}
    assert operations == {"create_call", "save_progress"}
    assert all(0 <= seconds < 5 for _, seconds in app.heard.writes)


def test_drivers_report_their_links(app):
    drivers = app.build_drivers()
    driver = drivers["simulated"]
    driver.link_state_changed("pbx1", False)
    driver.link_state_changed("pbx1", True)
    assert app.heard.links == [("simulated", "pbx1", False), ("simulated", "pbx1", True)]


class FloodOnce(RecordingPort):
    def __init__(self) -> None:
        super().__init__()
        self.flooded = False

    async def edit(self, chat_id, message_id, text, buttons=()):
        if not self.flooded:
            self.flooded = True
            raise RateLimited(0.05)
        await super().edit(chat_id, message_id, text, buttons)


async def test_chat_edits_and_flood_waits_are_told(app):
    manager = app.call_manager()
    await manager.start()
    port = FloodOnce()
    conversation = Conversation(app, manager, port=port, edit_interval=0.0)
    try:
        conversation.edits.edit(AGENT, 1, "first", ())
        await conversation.edits.flush(timeout=5)
        conversation.edits.edit(AGENT, 1, "second", ())
        await conversation.edits.flush(timeout=5)
    finally:
        await conversation.shutdown(timeout=1, announce=False)
        await manager.stop()
    assert app.heard.limited == [(AGENT, 0.05)]
    assert app.heard.edits == [AGENT, AGENT]
    await asyncio.sleep(0)
