"""``corecall calls live`` as a subprocess: one plain snapshot when piped, JSON with --json,
a refreshing table in a terminal (a real pseudo-terminal) until Ctrl-C."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest
from corecall_testing import config_dict, write_toml

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config
from corecall.domain import CallRecord, CallState, EndReason, utcnow


@pytest.fixture
def config_path(tmp_path):
    """A store with two live calls (Alice ringing, an operator call connected) and today's
    ended calls: 2 completed, 1 target busy."""
    path = write_toml(tmp_path / "config.toml", config_dict(tmp_path))
    app = App(parse_config(config_dict(tmp_path), path=None))
    AgentAdmin(app).authorize(501, actor="test", phone="+12125550111", name="Alice")
    now = utcnow()

    def call(agent_id, route, *states, reason=None, ago=30):
        record = CallRecord(
            id=uuid.uuid4().hex, agent_id=agent_id, agent_phone="+12125550111",
            target="+12125550123", route_code=route, trunk="main",
            caller_id="+12125550100", created_at=now - dt.timedelta(seconds=ago),
        )  # fmt: skip
        app.store.create_call(record)
        for state in states:
            extra = {"reason": reason} if state is CallState.ENDED else {}
            app.store.record_transition(record.id, state, now, **extra)

    call(501, "M", CallState.DIALING_AGENT, CallState.AGENT_RINGING, ago=75)
    call(0, "D", CallState.CONNECTED, ago=3700)
    for reason in (EndReason.COMPLETED, EndReason.COMPLETED, EndReason.TARGET_BUSY):
        call(501, "M", CallState.CONNECTED, CallState.ENDED, reason=reason)
    app.close()
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "corecall", *args]


def test_piped_prints_one_plain_snapshot(config_path):
    result = subprocess.run(cli("--config", str(config_path), "calls", "live"),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("📡 Live calls at ") and lines[0].endswith("UTC: 2")
    # durations since the call was placed (75 s and about an hour ago, plus start-up time)
    assert any(re.fullmatch(r"• Alice \[M\] agent's phone ringing, [1-9]:\d\d", x) for x in lines)
    assert any(re.fullmatch(r"• operator \[D\] connected, 1:0\d:\d\d", x) for x in lines)
    assert "Today (UTC): 5 calls" in lines
    assert "  completed: 2" in lines and "  target busy: 1" in lines and "  live: 2" in lines
    assert "\x1b[" not in result.stdout  # plain: no terminal control codes


def test_json_snapshot(config_path):
    result = subprocess.run(cli("--config", str(config_path), "calls", "live", "--json"),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["today"] == {"completed": 2, "target_busy": 1}
    assert data["today_total"] == 3 + len(data["live"])  # the text view's "Today: N calls"
    assert sorted((c["agent"], c["route"], c["state"]) for c in data["live"]) == [
        ("Alice", "M", "agent_ringing"), ("operator", "D", "connected"),
    ]  # fmt: skip


def test_in_a_terminal_the_table_refreshes_until_ctrl_c(config_path):
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm"}
    proc = subprocess.Popen(
        cli("--config", str(config_path), "calls", "live", "--refresh", "0.3"),
        stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    try:
        deadline = time.monotonic() + 90
        while output.count(b"Live calls at") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    output += os.read(primary, 65536)
                except OSError:
                    break
        assert output.count(b"Live calls at") >= 3, output[-2000:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    text = output.decode("utf-8", "replace")
    assert "Alice" in text and "agent's phone ringing" in text and "operator" in text
    assert "Today (UTC): 5 calls - completed 2, target busy 1, live 2" in text
    assert "\x1b[" in text  # redrawn in place, a real terminal table
