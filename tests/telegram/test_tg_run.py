"""``corecall run``: credentials, the session file, an unreachable PBX, and SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import stat
import time

import pytest
from corecall_testing import config_dict, write_toml
from corecall_testing.bot_under_test import AGENT_ID, AGENT_PHONE, TARGET
from corecall_testing.fakes import Switchboard
from corecall_testing.telegram_harness import OfflineTelegram

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.cli import main
from corecall.config import parse_config
from corecall.conversation import Conversation
from corecall.domain import CallState
from corecall.errors import CorecallError, TelephonyError
from corecall.telegram.runner import _run, prepare_session_file, serve, start_calls


def one_line(text: str) -> str:
    return " ".join(text.split())  # the CLI's console wraps long lines


def scripted_app(tmp_path, board: Switchboard, **sections) -> App:
    raw = config_dict(tmp_path, **sections)
    raw["trunks"] = {"main": {"driver": "scripted"}, "dev": {"driver": "scripted"}}
    return App(parse_config(raw, path=None), extra_plugins=[("test_driver", board.plugin())])


def test_missing_credentials_are_named_with_how_to_fix_them(tmp_path, capsys):
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    assert main(["--config", str(path), "run"]) == 1
    err = one_line(capsys.readouterr().err)
    assert err == one_line(
        "error: cannot start the Telegram bot: missing the bot token (CORECALL_BOT_TOKEN or "
        "[bot] token; from @BotFather); the api id (CORECALL_API_ID or [bot] api_id; from "
        "my.telegram.org); the api hash (CORECALL_API_HASH or [bot] api_hash; from "
        f"my.telegram.org). Set the environment variables or the keys in {path}. To try "
        "corecall without Telegram, run `corecall demo`."
    )


def test_only_the_missing_credential_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CORECALL_BOT_TOKEN", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0")
    monkeypatch.setenv("CORECALL_API_ID", "12345")
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    assert main(["--config", str(path), "run"]) == 1
    err = one_line(capsys.readouterr().err)
    assert "missing the api hash (CORECALL_API_HASH or [bot] api_hash" in err
    assert "bot token" not in err and "api id" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("token", "api_hash", "says"),
    [
        ("abc", "f" * 32, "is 3 characters long, with no colon"),
        ("SECRETMARKER123", "f" * 32, "is 15 characters long, with no colon"),
        ("123:abc", "f" * 32, "is 7 characters long"),
        ("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PAL saw0", "f" * 32, "is 45 characters long"),
        ("bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0", "f" * 32, "bot token"),
        ("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0", "SECRETMARKERx", "api hash"),
    ],
)
def test_a_malformed_token_or_api_hash_is_refused_before_connecting(
    tmp_path, capsys, monkeypatch, token, api_hash, says
):
    """The shape is checked before anything reaches Telegram (which may not be reachable to
    refuse it): one line saying what a token or api hash looks like, never the value."""
    monkeypatch.setenv("CORECALL_BOT_TOKEN", token)
    monkeypatch.setenv("CORECALL_API_ID", "12345")
    monkeypatch.setenv("CORECALL_API_HASH", api_hash)
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    assert main(["--config", str(path), "run"]) == 1
    out, err = capsys.readouterr()
    err = one_line(err)
    assert err.startswith("error: cannot start the Telegram bot: ") and says in err
    assert "nothing was sent to Telegram" in err and "aborted" not in err.lower()
    for secret in (token, api_hash, "MARKER", "abc"):
        assert secret not in out + err
    assert not list(tmp_path.rglob("*.session"))  # no Telegram client was even created


def test_the_token_shape_check_and_its_message_agree():
    """What the message says is accepted is what is accepted: 30 to 64 characters after
    the colon (35 today)."""
    from corecall.telegram.runner import credential_shape_problems

    for suffix in (30, 35, 64):
        assert credential_shape_problems("123456789:" + "A" * suffix, "f" * 32) == []
    for suffix in (29, 65):
        (problem,) = credential_shape_problems("123456789:" + "A" * suffix, "f" * 32)
        assert "then 30 to 64 letters, digits, '_' or '-'" in problem
        assert f"is {10 + suffix} characters long" in problem


def test_the_session_file_is_readable_by_its_owner_only(tmp_path):
    path = prepare_session_file(tmp_path / "private" / "bot")
    assert path == tmp_path / "private" / "bot.session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loose = tmp_path / "loose.session"
    loose.write_text("")
    loose.chmod(0o644)
    prepare_session_file(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


async def test_an_unreachable_pbx_is_a_clear_error_before_telegram_is_touched(
    tmp_path, monkeypatch
):
    for name, value in (
        ("TOKEN", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"),
        ("API_ID", "12345"),
        ("API_HASH", "f" * 32),
    ):
        monkeypatch.setenv(f"CORECALL_BOT_{name}" if name == "TOKEN" else f"CORECALL_{name}",
                           value)  # fmt: skip
    board = Switchboard()
    board.start_error = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5038)")
    app = scripted_app(tmp_path, board)
    with pytest.raises(TelephonyError) as caught:
        await _run(app)
    assert str(caught.value) == (
        "trunk driver 'scripted' (plugin 'test_driver') failed to start: "
        "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 5038); "
        "trunk(s) dev, main cannot place calls until corecall restarts. "
        "Fix the trunks' PBX connection (driver 'scripted'), or set the trunks' driver to "
        '"simulated" to run without a PBX.'
    )
    app.close()


def test_corecall_run_with_asterisk_unreachable_is_a_clear_error(tmp_path, capsys, monkeypatch):
    for name, value in (
        ("BOT_TOKEN", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"),
        ("API_ID", "12345"),
        ("API_HASH", "f" * 32),
    ):
        monkeypatch.setenv(f"CORECALL_{name}", value)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    raw = config_dict(
        tmp_path,
        plugins={
            "asterisk_ami": {
                "servers": {
                    "pbx1": {"port": port, "secret": "s3cret-s3cret", "action_timeout": 0.3},
                }
            }
        },
        trunks={"main": {"driver": "asterisk_ami", "server": "pbx1", "endpoint": "corecall-main"}},
    )
    path = write_toml(tmp_path / "corecall.toml", raw)
    assert main(["--config", str(path), "run"]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"error: cannot reach Asterisk 'pbx1' (AMI 127.0.0.1:{port}): ")
    # The Asterisk plugin says how to fix its own connection; the core adds only the
    # driver-neutral way out.
    assert err.endswith(
        f"Check that Asterisk is running and its AMI is reachable "
        f"([plugins.asterisk_ami.servers.pbx1] 127.0.0.1:{port}) and the AMI username and "
        "secret (CORECALL_AMI_SECRET_PBX1 or CORECALL_AMI_SECRET). Fix the trunks' PBX "
        "connection (driver 'asterisk_ami'), or set the trunks' driver to \"simulated\" to run "
        "without a PBX."
    )
    assert "Traceback" not in err


async def test_sigterm_stops_intake_and_leaves_live_calls_to_the_pbx(tmp_path):
    board = Switchboard()
    app = scripted_app(tmp_path, board)
    AgentAdmin(app).authorize(AGENT_ID, actor="test", phone=AGENT_PHONE, name="Alice")
    AgentAdmin(app).set_route(AGENT_ID, "D", actor="test")
    calls = await start_calls(app)
    client = OfflineTelegram()
    alice = client.user(AGENT_ID, "Alice")

    def unthrottled(app, calls):
        return Conversation(app, calls, edit_interval=0.0)

    serving = asyncio.create_task(serve(app, client, calls, conversation_factory=unthrottled))

    async def until(predicate):
        deadline = time.monotonic() + 3
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.005)

    await until(lambda: client.list_event_handlers())
    # The start-up heap is out of the collector's way while serving (a full collection on
    # the event loop would walk it: tens of ms with every /call waiting), given back after.
    assert gc.get_freeze_count() > 10_000
    await client.feed(client.private_text(alice, f"/call {TARGET}"))
    call_id = board.last_call_id
    board.move(CallState.AGENT_RINGING)
    await until(lambda: client.edits())

    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(serving, 5)
    assert gc.get_freeze_count() == 0

    final = client.edits()[-1]
    assert final.message == (
        "📞 Call to +12125550123\nCaller ID: +12125550199 [D]\n"
        "⏸ The bot is restarting. Your call goes on; its result will be in /history."
    )
    assert final.reply_markup is None
    assert board.hangups == [] and board.stopped == 1  # the call was left to the PBX
    record = app.store.get_call(call_id)
    assert record.state is CallState.AGENT_RINGING  # kept, not ended
    assert not client.is_connected()

    # No intake any more: a late /call is not dialed.
    await client.feed(client.private_text(alice, "/call +12125550124"))
    assert client.sent()[-1].message == (
        "The bot is restarting, so nothing was done. Send your command again in a minute."
    )
    assert len(board.originated) == 1
    await client.aclose()
    app.close()


async def test_a_background_task_that_fails_for_good_stops_the_bot_with_its_name(tmp_path):
    """Nothing dies silently: a supervised task that keeps crashing stops `corecall run`
    with an error naming it, after the usual orderly shutdown."""
    board = Switchboard()
    app = scripted_app(tmp_path, board)
    calls = await start_calls(app)
    client = OfflineTelegram()
    serving = asyncio.create_task(serve(app, client, calls))

    async def broken_link():
        raise ConnectionResetError("the PBX link's reader broke")

    calls.supervisor.start("corecall-test-link", broken_link, max_restarts=1, window=60)
    with pytest.raises(CorecallError) as err:
        await asyncio.wait_for(serving, 10)
    assert str(err.value) == (
        "corecall stopped: background task 'corecall-test-link' crashed after 1 restart(s): "
        "ConnectionResetError: the PBX link's reader broke"
    )
    assert board.stopped == 1  # the drivers were stopped as on SIGTERM
