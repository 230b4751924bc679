"""One process serves a store's calls at a time (tester5: a console started beside a
serving process ended that process's live call on record as 'outcome unknown after restart'
while it went on, and three consoles each placed a call for an agent limited to one)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from corecall_testing import config_dict, write_toml

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import load_config
from corecall.domain import CallState
from corecall.serving import StoreServedElsewhere
from corecall.telegram.runner import start_calls


@pytest.fixture
def config_path(tmp_path):
    slow = {"trunks": {"main": {"driver": "simulated", "answer_seconds": 0.05,
                                "talk_seconds": 30}}}  # fmt: skip
    return write_toml(tmp_path / "c.toml", config_dict(tmp_path, **slow))


async def test_a_second_serving_process_is_refused_and_the_live_call_left_alone(config_path):
    first = App(load_config(config_path))
    AgentAdmin(first).add(77, "+12125550177", "Ann", authorized=True, actor="test")
    AgentAdmin(first).set_route(77, "M", actor="test")
    manager = await start_calls(first, "run")
    try:
        call = await manager.place(77, "+12125550123")
        second = App(load_config(config_path))
        with pytest.raises(StoreServedElsewhere) as refused:
            await start_calls(second, "console")
        second.close()
        message = str(refused.value)
        assert f"corecall run (pid {os.getpid()}, since " in message
        assert "already serves the calls of the sqlite store" in message
        assert "CORECALL_DATA_DIR" in message
        # From another process too, and with nothing changed on record.
        env = {**os.environ, "CORECALL_CONFIG": str(config_path)}
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "corecall", "console", "--as", "77", "--wait", "0"],
            input="/start\n", capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "already serves the calls of" in proc.stderr and "Traceback" not in proc.stderr
        assert first.store.get_call(call.id).state is not CallState.ENDED
    finally:
        await manager.stop()
        first.close()
    # Once the first is gone, the next may serve (and reconcile what it left open).
    third = App(load_config(config_path))
    manager = await start_calls(third, "console")
    await manager.stop()
    third.close()


def test_the_holder_name_fits_in_a_postgresql_application_name():
    from corecall.serving import HOLDER_MAX, holder_name

    assert holder_name("run", pid=812, host="pbx1") == "corecall run (pid 812 on pbx1)"
    long = holder_name("console", pid=4194304, host="h" * 100)
    assert long == f"corecall console (pid 4194304 on {'h' * 28}~)"
    assert len(long) == HOLDER_MAX == 63
