"""Fixtures for the AMI driver tests.

The lab fixtures come from ``corecall_testing.lab_fixtures``: the same environment check, the same
"skip locally, FAIL when CI is set" rule. This directory runs
its own session instance (``tel-<pid>``): two session instances with the lab conftest's
instance name would collide when the whole suite runs.
"""

from __future__ import annotations

import itertools
import os

import attrs
import pytest
from corecall_asterisk.driver import AsteriskAmiDriver
from corecall_asterisk.link import AmiLink
from corecall_testing import config_dict
from corecall_testing.ami import ami_sections, server_of  # noqa: F401
from corecall_testing.lab import make_lab
from corecall_testing.lab_fixtures import lab_unavailable

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config

_instances = itertools.count(1)


@pytest.fixture(scope="session")
def lab(lab_environment):
    """This directory's running lab: Asterisk + carriers corecall-main (127.0.0.2) and
    corecall-dev (127.0.0.3) on free ports."""
    instance = make_lab(f"tel-{os.getpid()}")
    try:
        instance.start()
    except lab_environment.LabUnavailable as exc:
        lab_unavailable(str(exc))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def own_lab(lab_environment):
    """A private lab instance for tests that restart or stop Asterisk."""
    instances = []

    def make(**kwargs):
        inst = make_lab(f"tel-{os.getpid()}-{next(_instances)}", **kwargs)
        inst.start()
        instances.append(inst)
        return inst

    yield make
    for inst in instances:
        inst.stop()


@pytest.fixture
def fresh_lab(lab):
    lab.clear_invites()
    return lab


@pytest.fixture(autouse=True)
def fast_reconnect(monkeypatch):
    """Reconnect quickly in tests (the production backoff starts at 0.25 s, capped at 15 s)."""
    monkeypatch.setattr(AmiLink, "reconnect_initial", 0.05)
    monkeypatch.setattr(AmiLink, "reconnect_max", 0.5)


@attrs.define
class Telephony:
    """An App with a running CallManager on the AMI driver, and helpers to place calls."""

    app: App
    manager: object
    driver: AsteriskAmiDriver
    admin: AgentAdmin
    _ids: itertools.count = attrs.field(factory=lambda: itertools.count(1000))

    def agent(self, phone: str, route: str = "M") -> int:
        agent_id = next(self._ids)
        self.admin.add(agent_id, phone, authorized=True, actor="test")
        self.admin.set_route(agent_id, route, actor="test")
        return agent_id

    async def place(self, agent_phone: str, target: str, route: str = "M"):
        return await self.manager.place(self.agent(agent_phone, route), target)

    async def final(self, call, timeout: float = 15.0):
        return await self.manager.wait_final(call.id, timeout)

    async def reach(self, call, state, timeout: float = 10.0):
        """Wait until the call's record reaches ``state`` (or later); return the record."""
        async for record in self.manager.watch(call.id):
            if record.state.order >= state.order:
                return record
        raise AssertionError("call ended before reaching " + state.value)

    def link(self, name: str = "pbx1"):
        return self.driver.links[name]


@pytest.fixture
async def telephony(tmp_path):
    """``await telephony(sections)`` builds and starts a Telephony; all are stopped after."""
    built: list[Telephony] = []

    async def build(sections: dict, *, start: bool = True, reconcile: bool = True) -> Telephony:
        raw = config_dict(tmp_path, **sections)
        app = App(parse_config(raw, path=None))
        drivers = app.build_drivers()
        driver = drivers["asterisk_ami"]
        manager = app.call_manager(drivers)
        t = Telephony(app=app, manager=manager, driver=driver, admin=AgentAdmin(app))
        built.append(t)
        if start:
            await manager.start(reconcile=reconcile)
        return t

    yield build
    for t in built:
        await t.manager.stop(drain_timeout=5)
        t.app.close()
