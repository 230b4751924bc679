"""An agent's call record is written only under the agent's current state (issue 7, finding 2).

``corecall agents revoke`` (or ``set-phone``) in another process while ``corecall run`` is up
used to leave a window: place() read the agent (authorized), the CLI committed the revoke and
printed "revoked", and the call was still recorded and dialed a few milliseconds later. The
store now re-checks the agent (authorized, same phone) in the transaction that writes the
record (``create_call(..., check_agent=True)`` and its batch and event-loop variants), and
place() turns a refusal into the ordinary "not authorized" answer. Both backends, with the
change made through another connection and through another process (the real CLI).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from corecall_testing import config_dict, write_toml

from corecall import hookimpl
from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config
from corecall.domain import CallRecord
from corecall.errors import AgentChangedError, RefusedError
from corecall.store import Store
from corecall.telephony.driver import TrunkDriver

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AGENT = 7_000_000_001
PHONE = "+12125550100"
NEW_PHONE = "+12125550155"
ADMIN = "cli:alice"


def make_call(agent_id: int = AGENT, phone: str = PHONE) -> CallRecord:
    return CallRecord(
        id=uuid.uuid4().hex, agent_id=agent_id, agent_phone=phone, target="+14155550123",
        route_code="M", trunk="main", caller_id="+12125550199", created_at=T0,
    )  # fmt: skip


def write_one(store: Store, how: str, call: CallRecord, *, check_agent: bool = True):
    """Write ``call`` the way ``how`` names: the store thread's single and batch writes, or
    the event loop's (falling back to the store thread where the backend cannot, as place()
    does). Returns the record or raises what the store raised."""
    if how == "single":
        return store.create_call(call, check_agent=check_agent)
    if how == "batch":
        (outcome,) = store.create_calls([call], check_agent=check_agent)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    written = store.create_call_nowait(call, check_agent=check_agent)
    return written if written is not None else store.create_call(call, check_agent=check_agent)


WAYS = ["single", "batch", "nowait"]


@pytest.mark.parametrize("how", WAYS)
def test_a_call_is_written_only_for_the_agent_as_it_is_now(store: Store, target, how):
    store.add_agent(AGENT, PHONE, "Alice", authorized=True, actor=ADMIN)
    first = write_one(store, how, make_call())
    assert store.get_call(first.id) == first
    other = target.open_store()  # another process's connection: the CLI
    audit_before = len(store.audit_log(1000))

    other.set_authorized(AGENT, False, actor=ADMIN)
    revoked = make_call()
    with pytest.raises(AgentChangedError, match=f"agent {AGENT} was revoked") as err:
        write_one(store, how, revoked)
    assert err.value.agent.authorized is False
    assert store.get_call(revoked.id) is None

    other.set_authorized(AGENT, True, actor=ADMIN)
    other.set_phone(AGENT, NEW_PHONE, actor=ADMIN)
    old_phone = make_call(phone=PHONE)
    with pytest.raises(AgentChangedError, match="has another phone now") as err:
        write_one(store, how, old_phone)
    assert err.value.agent.phone == NEW_PHONE
    assert store.get_call(old_phone.id) is None
    assert write_one(store, how, make_call(phone=NEW_PHONE)).agent_phone == NEW_PHONE

    other.remove_agent(AGENT, actor=ADMIN)
    with pytest.raises(AgentChangedError, match="was removed") as err:
        write_one(store, how, make_call(phone=NEW_PHONE))
    assert err.value.agent is None
    with pytest.raises(AgentChangedError, match="was removed"):
        write_one(store, how, make_call(agent_id=AGENT + 1))  # never an agent
    # A refusal writes nothing, not even an audit entry; the calls written stand.
    assert len(store.audit_log(1000)) == audit_before + 4  # the four admin changes
    assert store.count_calls_since(AGENT, T0) == 2
    # Without the check (operator test calls, history): written whatever the agents table says.
    assert write_one(store, how, make_call(agent_id=0), check_agent=False).agent_id == 0


def test_a_burst_refuses_only_the_records_of_the_changed_agent(store: Store):
    for tid in (1, 2, 3):
        store.add_agent(tid, PHONE, authorized=True, actor=ADMIN)
    store.set_authorized(2, False, actor=ADMIN)
    store.set_phone(3, NEW_PHONE, actor=ADMIN)
    burst = [make_call(1), make_call(2), make_call(3), make_call(3, NEW_PHONE), make_call(1)]
    outcomes = store.create_calls(burst, check_agent=True)
    assert [type(o).__name__ for o in outcomes] == [
        "CallRecord", "AgentChangedError", "AgentChangedError", "CallRecord", "CallRecord",
    ]  # fmt: skip
    assert "was revoked" in str(outcomes[1]) and "another phone" in str(outcomes[2])
    assert [c.id for c in burst if store.get_call(c.id)] == [
        burst[0].id, burst[3].id, burst[4].id,
    ]  # fmt: skip


def test_a_revoke_in_flight_on_another_connection_is_waited_for_and_seen(store: Store, target):
    """The revoke's transaction has changed the agent row but not committed when the record
    is written: the write waits for it (PostgreSQL: the agent row's lock; SQLite: the write
    lock) and then refuses the call. Without the lock, PostgreSQL's statement snapshot would
    still see the agent authorized and write the call under a revoke about to be announced."""
    store.add_agent(AGENT, PHONE, authorized=True, actor=ADMIN)
    conn = target.raw()
    cur = conn.cursor()
    begin = "BEGIN IMMEDIATE" if target.backend == "sqlite" else "BEGIN"
    false = "0" if target.backend == "sqlite" else "FALSE"
    cur.execute(begin)
    cur.execute(f"UPDATE agents SET authorized = {false} WHERE telegram_id = {AGENT}")
    outcome: list = []

    def place_record():
        try:
            outcome.append(store.create_call(make_call(), check_agent=True))
        except Exception as exc:  # handed to the test thread below
            outcome.append(exc)

    writer = threading.Thread(target=place_record)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive(), f"the record was written past an uncommitted revoke: {outcome}"
    cur.execute("COMMIT")
    writer.join(10)
    conn.close()
    assert len(outcome) == 1 and isinstance(outcome[0], AgentChangedError), outcome
    assert store.count_calls_since(AGENT, T0) == 0


# --------------------------------------------------------------------------- place()


class HeldDriver(TrunkDriver):
    """A trunk driver that runs ``before_record`` while place() waits for the trunk to be
    ready: after the agent was checked and before the call is recorded, the window the CLI
    revoke used to fall into. Records what it dialed."""

    NAME = "held"
    instances: list[HeldDriver] = []

    def __init__(self, config):
        super().__init__(config)
        self.originated = []
        self.before_record = None
        HeldDriver.instances.append(self)

    async def wait_ready(self, trunk):
        if self.before_record is not None:
            step, self.before_record = self.before_record, None
            await step()
        return None

    async def originate(self, request, progress):
        self.originated.append(request)

    async def hangup(self, call_id):
        return True


class HeldDriverPlugin:
    @hookimpl
    def corecall_register_trunk_drivers(self, registry):
        registry.register(HeldDriver)


def _cli(config_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CORECALL_CONFIG": str(config_path)}
    return subprocess.run(
        [sys.executable, "-m", "corecall", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "reason"),
    [(("agents", "revoke", str(AGENT)), "not_authorized"),
     (("agents", "set-phone", str(AGENT), NEW_PHONE), "agent_changed")],
    ids=["revoke", "set-phone"],
)  # fmt: skip
async def test_a_cli_change_in_another_process_mid_call_is_never_dialed(
    target, tmp_path, change, reason
):
    store_section = (
        {"backend": "sqlite", "sqlite_path": target.location}
        if target.backend == "sqlite"
        else {"backend": "postgres", "postgres_dsn": target.location}
    )
    raw = config_dict(tmp_path, trunks={"main": {"driver": "held"}, "dev": {"driver": "held"}})
    raw["store"] = store_section
    config_path = write_toml(tmp_path / "corecall.toml", raw)
    HeldDriver.instances.clear()
    config = parse_config(raw, path=config_path)
    app = App(config, extra_plugins=[("held_driver", HeldDriverPlugin())])
    admin = AgentAdmin(app)
    admin.add(AGENT, PHONE, "Ann", authorized=True, actor="test")
    admin.set_route(AGENT, "M", actor="test")
    manager = app.call_manager()
    await manager.start()
    try:
        driver = next(d for d in HeldDriver.instances if d in manager.drivers.values())
        acknowledged: list[float] = []

        async def change_in_another_process():
            done = await asyncio.to_thread(_cli, config_path, *change)
            assert done.returncode == 0, done.stderr
            acknowledged.append(time.monotonic())

        driver.before_record = change_in_another_process
        with pytest.raises(RefusedError) as err:
            await manager.place(AGENT, "+12125550123")
        assert acknowledged, "the change did not run inside the window"
        assert err.value.reason == reason, err.value
        assert driver.originated == []
        assert app.store.recent_calls(AGENT) == []
        # The next request reads the new state and behaves by it.
        if reason == "agent_changed":
            placed = await manager.place(AGENT, "+12125550123")
            assert placed.agent_phone == NEW_PHONE
            assert [r.agent_phone for r in driver.originated] == [NEW_PHONE]
        else:
            with pytest.raises(RefusedError, match="not authorized"):
                await manager.place(AGENT, "+12125550123")
            assert driver.originated == []
    finally:
        await manager.stop()
        app.close()
