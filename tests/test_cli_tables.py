"""Tables never cut data: through a pipe (TSV), in an 80-column terminal (a pty) and in a
very narrow one; plugin toggles in the audit log; audit JSON as data."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pty
import pwd
import re
import struct
import subprocess
import sys
import termios

import pytest
from corecall_testing import config_dict, write_toml

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CORECALL = [sys.executable, "-m", "corecall"]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    path = write_toml(tmp / "corecall.toml", config_dict(tmp))
    env = clean_env(path)
    for args in (
        ["agents", "add", "--telegram-id", "123456789", "--phone", "+12125550111",
         "--name", "Alexandra Longname-Smith"],
        ["call", "--route", "M", "--agent-phone", "+12125550111", "--target", "+12125550408"],
        ["call", "--route", "D", "--agent-phone", "+12125550111", "--target", "+12125550123"],
        ["plugins", "disable", "route_dev"],
        ["plugins", "enable", "route_dev"],
    ):  # fmt: skip
        subprocess.run(CORECALL + args, env=env, capture_output=True, timeout=90)
    return path


def clean_env(config_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["CORECALL_CONFIG"] = str(config_path)
    env["TERM"] = "xterm"
    return env


def piped(config, *args) -> str:
    proc = subprocess.run(CORECALL + list(args), env=clean_env(config), capture_output=True,
                          text=True, timeout=90)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def in_terminal(config, *args, columns: int = 80) -> str:
    """Run with stdout on a pseudo-terminal of ``columns`` columns; its screen text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(CORECALL + list(args), stdin=slave, stdout=slave, stderr=slave,
                            env=clean_env(config), close_fds=True)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=90) == 0
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def test_calls_list_through_a_pipe_is_tsv_with_every_value_whole(config):
    out = piped(config, "calls", "list")
    lines = out.splitlines()
    assert lines[0].split("\t") == [
        "started", "agent", "agent phone", "target", "route", "caller id", "state", "talk",
        "reason",
    ]  # fmt: skip
    matching = [line for line in lines if "0408" in line]  # `calls list | grep 0408`
    assert len(matching) == 1
    row = matching[0].split("\t")
    assert row[2:6] == ["+12125550111", "+12125550408", "M", "+12125550100"]
    assert row[1] == "operator"  # agent id 0 explained
    assert row[8].startswith("target_no_answer")


@pytest.mark.parametrize("columns", [80, 100])
def test_calls_list_in_a_terminal_keeps_numbers_whole(config, columns):
    screen = in_terminal(config, "calls", "list", columns=columns)
    for number in ("+12125550408", "+12125550111", "+12125550100", "+12125550199"):
        assert number in screen, screen
    assert max(len(line) for line in screen.splitlines()) <= columns
    assert "…" not in screen


def test_a_wide_terminal_gets_a_table_with_every_value_whole(config):
    screen = in_terminal(config, "calls", "list", columns=140)
    header = next(line for line in screen.splitlines() if "started" in line)
    assert "agent phone" in header and "caller id" in header
    row = next(line for line in screen.splitlines() if "+12125550408" in line)
    assert "+12125550111" in row and "+12125550100" in row
    assert max(len(line) for line in screen.splitlines()) <= 140


def test_a_very_narrow_terminal_gets_one_block_per_row(config):
    screen = in_terminal(config, "calls", "list", columns=40)
    assert "     target: +12125550408" in screen
    assert "agent phone: +12125550111" in screen
    assert "…" not in screen


def test_plugins_list_never_cuts_the_names_you_type(config):
    for screen in (in_terminal(config, "plugins", "list", columns=80),
                   piped(config, "plugins", "list")):  # fmt: skip
        for name in ("route_main", "route_dev", "store_sqlite", "store_postgres",
                     "policy_calling_hours", "corecall-trunk-asterisk",
                     "corecall-store-postgres"):  # fmt: skip
            assert name in screen, screen
        assert "…" not in screen


def test_agents_list_keeps_names_whole_at_80_columns(config):
    screen = in_terminal(config, "agents", "list", columns=80)
    assert "Alexandra Longname-Smith" in screen and "123456789" in screen


def test_plugin_toggles_are_audited_with_the_os_user(config):
    entries = json.loads(piped(config, "audit", "--json"))
    toggles = [e for e in entries if e["action"].startswith("plugin.")]
    assert [(e["action"], e["subject"]) for e in toggles] == [
        ("plugin.enable", "route_dev"), ("plugin.disable", "route_dev"),
    ]  # fmt: skip
    account = pwd.getpwuid(os.getuid()).pw_name  # the OS account, not $USER
    assert all(e["actor"].startswith(f"cli:{account}") for e in toggles)
    assert toggles[1]["detail"]["changed"] is True


def test_audit_json_has_iso_times_and_structured_detail(config):
    entries = json.loads(piped(config, "audit", "--json"))
    for entry in entries:
        assert dt.datetime.fromisoformat(entry["at"]).tzinfo is not None
        assert "T" in entry["at"]
    add = next(e for e in entries if e["action"] == "agent.add")
    assert add["detail"] == {"authorized": False, "name": "Alexandra Longname-Smith",
                             "phone": "+12125550111"}  # fmt: skip
    calls = json.loads(piped(config, "calls", "list", "--json"))
    assert "T" in calls[0]["created_at"]


def test_audit_in_a_terminal_shows_the_whole_action(config):
    screen = in_terminal(config, "audit", columns=80)
    for action in ("plugin.disable", "plugin.enable", "agent.add", "call.operator"):
        assert action in screen
    assert "…" not in screen
