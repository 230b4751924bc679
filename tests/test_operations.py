"""Operations: sd_notify over a real datagram socket, the health command, the systemd unit
(verified by systemd-analyze), and JSON logs where every line about a call carries its id."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from corecall_testing import config_dict, write_toml

from corecall import systemd
from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "corecall.service"
CORECALL = [sys.executable, "-m", "corecall"]


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def test_notify_sends_one_datagram_to_the_socket(notify_socket):
    sock, path = notify_socket
    assert systemd.notify("READY=1", "STATUS=serving", environ={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_to_an_abstract_socket():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"corecall-test-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert systemd.notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"
    finally:
        sock.close()


def test_notify_without_systemd_or_with_a_dead_socket_never_raises(tmp_path, caplog):
    assert systemd.notify("READY=1", environ={}) is False
    gone = str(tmp_path / "gone.sock")
    assert systemd.notify("READY=1", environ={"NOTIFY_SOCKET": gone}) is False
    assert "could not notify systemd (READY=1)" in caplog.text


# --------------------------------------------------------------------------- health


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout=60):
    return subprocess.run(
        [*CORECALL, *args], capture_output=True, text=True, timeout=timeout, input=input,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_health_command_reads_the_running_bots_report(tmp_path):
    env = {"CORECALL_DATA_DIR": str(tmp_path)}
    missing = run_cli("health", env=env)
    assert missing.returncode == 1
    assert "UNHEALTHY" in missing.stdout and "corecall run is not running" in missing.stdout

    path = systemd.health_path(tmp_path)
    parts = {"telegram": True, "store": True, "link asterisk_ami/pbx1": True}
    systemd.write_health(path, {"parts": parts, "problems": []})
    ok = run_cli("health", "--max-age", "600", env=env)  # a busy test machine starts slowly
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == ("healthy: telegram up; store up; link asterisk_ami/pbx1 up")

    down = {**parts, "link asterisk_ami/pbx1": False}
    systemd.write_health(path, {"parts": down, "problems": ["link asterisk_ami/pbx1 is down"]})
    bad = run_cli("health", "--json", "--max-age", "600", env=env)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["healthy"] is False and report["parts"]["link asterisk_ami/pbx1"] is False

    # a report nobody rewrote for a while: the bot is gone or stuck
    stale = json.loads(path.read_text())
    stale["updated_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    path.write_text(json.dumps(stale))
    healthy, report = systemd.read_health(path)
    assert not healthy and "300 s old" in report["problems"][0]
    # ... or one dated ahead of the clock (written before the clock was set back)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    ahead = {"parts": parts, "problems": [], "updated_at": later}  # all up, never rewritten
    path.write_text(json.dumps(ahead))
    future = run_cli("health", env=env)
    assert future.returncode == 1 and re.search(r"dated 7\d\d\d s in the future", future.stdout)


# --------------------------------------------------------------------------- the unit


def test_systemd_unit_verifies():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (scripts/test installs the systemd package)")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    text = UNIT.read_text()
    exec_start = re.search(r"^ExecStart=(\S+) ", text, re.MULTILINE)[1]
    assert exec_start == "/usr/local/bin/corecall"
    corecall = Path(sys.executable).with_name("corecall")
    assert corecall.exists()
    # The only change: ExecStart names this test venv's corecall (verify insists the
    # executable exists). Everything else is verified exactly as shipped.
    with_venv = text.replace(f"ExecStart={exec_start} ", f"ExecStart={corecall} ", 1)
    unit = Path(os.environ.get("TMPDIR", "/tmp")) / f"corecall-verify-{os.getpid()}.service"
    unit.write_text(with_venv)
    try:
        result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                                timeout=60)  # fmt: skip
    finally:
        unit.unlink()
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # not even a warning
    needed = ["Type=notify", "User=corecall", "Restart=on-failure", "NoNewPrivileges=yes",
              "ProtectSystem=strict", "KillSignal=SIGTERM", "--log-format json run"]  # fmt: skip
    assert [n for n in needed if n not in text] == []


# --------------------------------------------------------------------------- JSON logs


def test_json_logs_carry_the_call_id_on_every_line_about_a_call(tmp_path):
    config = write_toml(tmp_path / "config.toml", config_dict(tmp_path))
    app = App(parse_config(config_dict(tmp_path), path=None))
    AgentAdmin(app).authorize(501, actor="test", phone="+12125550111", name="Alice")
    app.store.set_route(501, "M", actor="test")
    app.close()
    result = run_cli(
        "--config", str(config), "--log-format", "json", "-v", "console", "--as", "501",
        "--wait", "10", input="/call +12125550123\n/call +1 900 200 0000\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no log lines"
    for line in lines:
        assert {"time", "level", "logger", "message", "call_id", "agent_id"} <= set(line)
    [call_id] = {m for line in lines for m in re.findall(r"\b[0-9a-f]{32}\b", line["message"])}
    about_the_call = [line for line in lines if call_id in line["message"]]
    states = [line["message"].split(": ", 1)[1] for line in about_the_call]
    assert states[0] == "dialing_agent" and states[-1].startswith("ended (completed")
    for line in about_the_call:
        assert line["call_id"] == call_id and line["agent_id"] == 501, line
    refused = [line for line in lines if line["message"].startswith("call refused")]
    assert refused and refused[0]["agent_id"] == 501 and refused[0]["call_id"] is None
    # the readable default says the same with [call=… agent=…]
    text = run_cli("--config", str(config), "-v", "console", "--as", "501", "--wait", "10",
                   input="/call +12125550123\n")  # fmt: skip
    assert re.search(r"\[call=[0-9a-f]{32} agent=501\]: call [0-9a-f]{32}: connected", text.stderr)


def test_the_admin_wrapper_sees_what_the_service_sees():
    """Operator commands on a service host (docs/operations.md) must act on the service's
    data: deploy/corecall-admin uses the unit's config file, data directory, secrets file
    and user, and the install steps put it in place."""
    wrapper = UNIT.with_name("corecall-admin")
    script = wrapper.read_text()
    unit = UNIT.read_text()
    assert subprocess.run(["sh", "-n", str(wrapper)]).returncode == 0
    assert os.access(wrapper, os.X_OK)
    config = re.search(r"^ExecStart=\S+ --config (\S+) ", unit, re.MULTILINE)[1]
    data_dir = re.search(r"^Environment=CORECALL_DATA_DIR=(\S+)$", unit, re.MULTILINE)[1]
    secrets = re.search(r"^EnvironmentFile=-(\S+)$", unit, re.MULTILINE)[1]
    user = re.search(r"^User=(\S+)$", unit, re.MULTILINE)[1]
    assert f"--config {config} " in script
    assert f"export CORECALL_DATA_DIR={data_dir}\n" in script
    assert f". {secrets}\n" in script
    assert f"runuser -u {user} -- " in script
    doc = (UNIT.parents[1] / "docs" / "operations.md").read_text()
    assert "deploy/corecall-admin /usr/local/sbin/corecall-admin" in doc
