"""The lab itself: two Asterisk instances side by side, Asterisk restarts, the command line
(`corecall-lab up/status/down`), and nothing left running afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest
from corecall_testing.lab import (
    CALLER_ID,
    DEV_CALLER_ID,
    AmiSession,
    free_udp,
    labmod,
    make_lab,
    new_call_id,
    originate_action,
    wait_until,
)

pytestmark = pytest.mark.lab


def _pids(lab) -> dict[str, int]:
    return {key: info["pid"] for key, info in lab._procs.items()}


def _all_dead(pids) -> bool:
    return not any(labmod._alive(pid) for pid in pids)


async def _place_call(lab, agent: str, target: str, trunk: str) -> str:
    async with AmiSession(lab) as ami:
        call_id = new_call_id()
        result = await ami.send(originate_action(call_id, agent, target, trunk=trunk))
        assert result[-1].get("Response") == "Success", result
        await wait_until(lambda: ami.end_event(call_id))
        await ami.wait_call_over(call_id)
    return call_id


@pytest.mark.asyncio
async def test_two_instances_run_side_by_side_and_restart(fresh_lab):
    second = make_lab(f"pytest-{os.getpid()}-b", hosts=("127.0.0.4", "127.0.0.5"))
    second.start()
    try:
        assert second.ami_port != fresh_lab.ami_port
        await asyncio.gather(
            _place_call(fresh_lab, "+15550000999", "+15557654321", "corecall-main"),
            _place_call(second, "+15550000999", "+15557650001", "corecall-dev"),
        )
        assert fresh_lab.invites("corecall-main") == [
            ("+15550000999", CALLER_ID),
            ("+15557654321", CALLER_ID),
        ]
        assert fresh_lab.invites("corecall-dev") == []
        assert second.invites("corecall-dev") == [
            ("+15550000999", DEV_CALLER_ID),
            ("+15557650001", DEV_CALLER_ID),
        ]
        assert second.invites("corecall-main") == []

        # Restarting one Asterisk leaves its carriers and the other instance alone. Restart
        # from a short-lived thread: the new Asterisk must outlive that thread.
        before = _pids(second)
        thread = threading.Thread(target=second.restart_asterisk)
        thread.start()
        await asyncio.to_thread(thread.join)
        await asyncio.sleep(0.3)
        after = _pids(second)
        assert labmod._alive(after["asterisk"])
        assert after["asterisk"] != before["asterisk"]
        assert not labmod._alive(before["asterisk"])
        assert {k: v for k, v in after.items() if k != "asterisk"} == {
            k: v for k, v in before.items() if k != "asterisk"
        }
        second.clear_invites()
        await _place_call(second, "+15550000999", "+15557650002", "corecall-main")
        assert [r for r, _ in second.invites("corecall-main")] == ["+15550000999", "+15557650002"]

        # A stopped Asterisk refuses AMI connections; the carriers keep running.
        second.stop_asterisk()
        with pytest.raises(OSError):
            await asyncio.open_connection(second.ami_host, second.ami_port)
        second.start_asterisk()
        async with AmiSession(second):
            pass
    finally:
        pids = _pids(second)
        second.stop()
    assert _all_dead(pids.values())
    assert not second.dir.exists()


def test_command_line_up_status_down(lab_environment, tmp_path):
    instance = f"cli-{os.getpid()}"
    ports = {"ami": labmod.free_port(), "sip": free_udp("127.0.0.1")}
    carriers = {"corecall-main": "127.0.0.6", "corecall-dev": "127.0.0.7"}
    args = [
        "--instance", instance,
        "--ami-port", str(ports["ami"]),
        "--sip-port", str(ports["sip"]),
        "--secret", "cli-test-secret-123",
    ]  # fmt: skip
    for name, host in carriers.items():
        args += ["--carrier", f"{name}={host}:{free_udp(host)}"]

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corecall_lab", *command, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    config = tmp_path / "lab.toml"
    up = run("up", "--corecall-config", str(config))
    try:
        assert up.returncode == 0, up.stderr
        assert f"127.0.0.1:{ports['ami']}" in up.stdout
        # no secret is ever printed: where to read it instead (a 0600 file)
        assert "cli-test-secret-123" not in up.stdout + up.stderr
        secret_file = labmod.Lab.from_state(instance).state_file
        assert f"secret in {secret_file}" in up.stdout and secret_file.stat().st_mode & 0o077 == 0
        assert str(config) in up.stdout and config.stat().st_mode & 0o077 == 0

        # A newcomer places a real call through the lab with the written configuration:
        # both routes on the real driver, presenting the numbers the carriers accept.
        call = subprocess.run(
            [sys.executable, "-m", "corecall", "--config", str(config), "call", "--route", "D",
             "--agent-phone", "+12125550111", "--target", "+12125550123"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert call.returncode == 0, call.stdout + call.stderr
        assert "ended: completed" in call.stdout
        started_lab = labmod.Lab.from_state(instance)
        assert started_lab.invites("corecall-dev") == [
            ("+12125550111", "+12125550199"),
            ("+12125550123", "+12125550199"),
        ]
        started = labmod.Lab.from_state(instance)
        pids = _pids(started)
        assert set(pids) == {"asterisk", "carrier:corecall-main", "carrier:corecall-dev"}
        assert not _all_dead(pids.values())

        again = run("up")  # idempotent
        assert again.returncode == 0 and "already up" in again.stdout

        status = run("status")
        assert status.returncode == 0 and instance in status.stdout
        assert "DEAD" not in status.stdout and status.stdout.count("running") == 3
        assert f"secret in {secret_file}" in status.stdout
        for shown in (again, status):
            assert "cli-test-secret-123" not in shown.stdout + shown.stderr
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert _all_dead(pids.values())
    assert not started.state_file.exists()
    assert not started.dir.exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", f"corecall-lab/{instance}/"], capture_output=True, text=True
    )
    assert leftovers.stdout == ""


def test_ports_stay_reserved_while_asterisk_is_stopped(lab_environment):
    """Port choice is race-free across lab instances: a port is reserved (in the instance's
    state file, under a machine-wide lock) from the moment it is chosen until the instance
    stops, so a second instance never takes the AMI port of an Asterisk being restarted."""
    first = make_lab(f"pytest-{os.getpid()}-r1", hosts=("127.0.0.6", "127.0.0.7"))
    first.start()
    try:
        low, high = labmod.PORT_RANGE
        assert low <= first.ami_port <= high and low <= first.sip_port <= high
        first.stop_asterisk()
        reserved = labmod.reserved_ports()
        assert (first.ami_host, first.ami_port) in reserved
        assert set(first.carriers.values()) <= reserved
        clash = make_lab(
            f"pytest-{os.getpid()}-r2", hosts=("127.0.0.8", "127.0.0.9"), ami_port=first.ami_port
        )
        with pytest.raises(labmod.LabError, match="in use"):
            clash.start()
        assert not clash.state_file.exists()
        first.start_asterisk()
    finally:
        first.stop()
    assert (first.ami_host, first.ami_port) not in labmod.reserved_ports()
