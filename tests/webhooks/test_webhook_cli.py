"""Webhooks end to end with real processes: `corecall console` processes configured with
``[plugins.webhooks]``, a real receiver on 127.0.0.1, and `corecall webhooks list|test|
redeliver`."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from unittest import mock

from corecall_testing import config_dict, write_toml
from corecall_webhooks.signing import verify

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config
from corecall.domain import CallState

#: 20 simulated calls, one event per state each (press-1 step included).
EVENTS = 20 * len(CallState)

SECRET = "cli-test-secret"


def setup(tmp_path, receiver) -> tuple:
    raw = config_dict(tmp_path, limits={"calls_per_minute": 1000, "live_calls_per_agent": 50})
    raw["plugins"]["webhooks"] = {"urls": [receiver.url], "poll_interval": 0.2,
                                  "first_backoff": 0.1, "max_backoff": 0.5}  # fmt: skip
    config = write_toml(tmp_path / "config.toml", raw)
    env = {**os.environ, "CORECALL_PLUGINS_WEBHOOKS_SECRET": SECRET}
    with mock.patch.dict(os.environ, env):  # the secret comes from the environment only
        app = App(parse_config(raw, path=None))
        AgentAdmin(app).authorize(501, actor="test", phone="+12125550111", name="Alice")
        app.store.set_route(501, "D", actor="test")
        app.close()
    return config, env


def corecall(config, env, *args, input=None, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "corecall", "--config", str(config), *args],
        input=input, capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip


def test_receiver_down_for_20_calls_across_a_restart_then_everything_arrives(tmp_path, receiver):
    """The issue's acceptance case with real processes: two console runs (a restart in
    between) place 10 calls each while the receiver is down; a third run finds it up and
    delivers all 20 × len(CallState) events, each id once, in order per call."""
    config, env = setup(tmp_path, receiver)
    calls = "".join("/call +12125550123\n" for _ in range(10))
    for _run in range(2):
        done = corecall(config, env, "console", "--as", "501", "--wait", "20", input=calls)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("Call ended") == 10, done.stdout
    assert receiver.accepted == []
    listed = corecall(config, env, "webhooks", "list", "--pending", "--json", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    pending = json.loads(listed.stdout)
    assert len(pending) == EVENTS  # newest first
    oldest = pending[-1]
    assert oldest["attempts"] >= 1 and "ConnectError" in oldest["last_error"], oldest

    receiver.up()
    idle = subprocess.Popen(
        [sys.executable, "-m", "corecall", "--config", str(config), "console", "--as", "501"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        text=True,
    )  # fmt: skip
    try:
        events = receiver.wait_for(EVENTS, timeout=120)
    finally:
        idle.stdin.close()
        idle.wait(60)
    time.sleep(0.5)
    events = receiver.events()
    assert len(events) == EVENTS and len({e["id"] for e in events}) == EVENTS
    by_call = collections.defaultdict(list)
    for event in events:
        by_call[event["data"]["call_id"]].append(event["sequence"])
    assert len(by_call) == 20
    for seqs in by_call.values():
        assert seqs == sorted(seqs) and seqs[-1] == CallState.ENDED.order
    for headers, body in receiver.accepted:
        assert verify(SECRET, headers["Corecall-Signature"], body)
    summary = corecall(config, env, "webhooks", "list", "--limit", "0")
    assert f"{receiver.url}: 0 pending, {EVENTS} delivered" in summary.stdout


def test_webhooks_test_and_redeliver(tmp_path, receiver):
    config, env = setup(tmp_path, receiver)
    down = corecall(config, env, "webhooks", "test")
    assert down.returncode == 1 and f"FAILED  {receiver.url}  ConnectError" in down.stdout
    receiver.up()
    ok = corecall(config, env, "webhooks", "test")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ok  {receiver.url}  HTTP 200 OK" in ok.stdout
    [event] = receiver.events()
    assert event["type"] == "webhook.test"
    headers, body = receiver.accepted[0]
    assert verify(SECRET, headers["Corecall-Signature"], body)

    app = App(parse_config(config_dict(tmp_path), path=None))
    from corecall.domain import OutboxMessage

    app.store.outbox_add([OutboxMessage(receiver.url, "audit-1", "admin.action", "{}")])
    app.store.outbox_mark_delivered([app.store.outbox_pending(receiver.url)[0].seq],
                                    app.store.outbox_list()[0].created_at)  # fmt: skip
    app.close()
    again = corecall(config, env, "webhooks", "redeliver", "audit-1")
    assert again.returncode == 0 and "1 deliveries queued again" in again.stdout
    unknown = corecall(config, env, "webhooks", "redeliver", "nope")
    assert unknown.returncode == 1 and "not in the outbox: 'nope'" in unknown.stderr
    assert unknown.stdout == ""  # a refusal prints no success line
    mixed = corecall(config, env, "webhooks", "redeliver", "audit-1", "nope")
    assert mixed.returncode == 1 and "nothing was queued again" in mixed.stderr
    listed = corecall(config, env, "webhooks", "list")
    assert "audit-1  admin.action" in listed.stdout and "pending" in listed.stdout


def test_without_urls_each_command_says_so_with_exit_1_not_a_usage_error(
    tmp_path, monkeypatch, capsys
):
    """Exit code 2 means the command line was wrong (click's usage errors); a configuration
    with no receiver is not that: exit 1, one line naming what to set, nothing sent or
    changed."""
    from corecall.cli import main

    monkeypatch.setenv(
        "CORECALL_CONFIG", str(write_toml(tmp_path / "c.toml", config_dict(tmp_path)))
    )
    monkeypatch.delenv("CORECALL_PLUGINS_WEBHOOKS_URLS", raising=False)

    def run(*args):
        capsys.readouterr()
        code = main(list(args))
        return (code, *capsys.readouterr())

    code, out, err = run("webhooks", "test")
    assert code == 1 and out == ""
    assert "no webhook URLs are configured" in err and "[plugins.webhooks]" in err
    assert "nothing was sent" in err and "Usage" not in err
    code, out, err = run("webhooks", "redeliver", "audit-1", "--url", "http://127.0.0.1:9/x")
    assert code == 1 and "not a configured receiver" in err and "no webhook URLs" in err
    code, out, err = run("webhooks", "list")
    assert code == 0 and "no webhook URLs are configured" in out
    # an unknown id: one error line, no success-shaped summary, nothing queued
    code, out, err = run("webhooks", "redeliver", "nope")
    assert (code, out) == (1, "") and "not in the outbox: 'nope'" in err
    assert "nothing was queued" in err
    # a real usage error keeps exit code 2
    assert run("webhooks", "test", "--no-such-flag")[0] == 2
    assert run("webhooks", "redeliver")[0] == 2


def test_redeliver_to_a_url_that_is_not_configured_changes_nothing(tmp_path, receiver):
    config, env = setup(tmp_path, receiver)
    app = App(parse_config(config_dict(tmp_path), path=None))
    from corecall.domain import OutboxMessage

    app.store.outbox_add([OutboxMessage(receiver.url, "audit-1", "admin.action", "{}")])
    app.close()
    other = corecall(
        config, env, "webhooks", "redeliver", "audit-1", "--url", "http://127.0.0.1:9/"
    )
    assert other.returncode == 1 and f"configured: {receiver.url}" in other.stderr


def test_a_receivers_own_words_never_reach_the_terminal_raw(
    tmp_path, receiver, monkeypatch, capsys
):
    """The reason phrase is the receiver's text: an escape sequence in it (a colour, a
    window-title change) is replaced in `webhooks test`, in the outbox's last error and so
    in `webhooks list` and the logs."""
    import httpx
    from corecall_webhooks.service import answer_text, failure_text

    from corecall.cli import main

    config, _env = setup(tmp_path, receiver)
    monkeypatch.setenv("CORECALL_PLUGINS_WEBHOOKS_SECRET", SECRET)
    receiver.status, receiver.reason = 503, "\x1b[31mPWNED\x1b]0;title\x07 now"
    receiver.up()
    assert main(["--config", str(config), "webhooks", "test"]) == 1
    out = capsys.readouterr().out
    assert "HTTP 503 \ufffd[31mPWNED\ufffd]0;title\ufffd now" in out
    assert "\x1b" not in out and "\x07" not in out
    # the deliverer keeps the same words as the outbox's last error
    answer = httpx.Response(503, extensions={"reason_phrase": b"\x1b[2Jgone"})
    assert answer_text(answer) == "HTTP 503 \ufffd[2Jgone"
    assert (
        failure_text(httpx.ConnectError("refused \x1b[31m")) == "ConnectError: refused \ufffd[31m"
    )


def test_the_timeout_bounds_the_whole_request_not_each_read(tmp_path, monkeypatch, capsys):
    """A receiver that answers 200 and then sends one byte every half second kept
    `webhooks test` (timeout = 1) hanging for as long as it liked (httpx's timeout is per
    read); the deliverer shares the same bounded POST (service.post_within)."""
    import socket
    import threading

    from corecall.cli import main

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while not stop.wait(0.5):
                try:
                    conn.sendall(b"1\r\nx\r\n")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/slow"
    raw = config_dict(tmp_path)
    raw["plugins"]["webhooks"] = {"urls": [url], "timeout": 1.0}
    config = write_toml(tmp_path / "config.toml", raw)
    monkeypatch.setenv("CORECALL_PLUGINS_WEBHOOKS_SECRET", SECRET)
    started = time.monotonic()
    try:
        assert main(["--config", str(config), "webhooks", "test"]) == 1
    finally:
        stop.set()
        server.close()
    assert time.monotonic() - started < 10
    assert f"FAILED  {url}  timed out after 1 s (the whole request)" in capsys.readouterr().out
