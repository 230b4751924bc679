"""One limit per stored field at every entry point, and replies within Telegram's limits
(issue #7, finding 4). The harness answers like Telegram: MESSAGE_TOO_LONG above 4,096
UTF-16 code units (and so on), so a reply over a limit fails these tests as it would fail
in production."""

from __future__ import annotations

import pytest
from corecall_testing import config_dict, write_toml
from corecall_testing.bot_under_test import ADMIN_ID, AGENT_ID, TARGET
from telethon import errors
from telethon.tl import functions

from corecall import fields
from corecall.agents import AgentAdmin
from corecall.cli import main
from corecall.errors import RefusedError, StoreError

LONG_NAME = "N" * 5000


def test_the_cli_refuses_an_oversize_name_and_stores_nothing(tmp_path, monkeypatch, capsys):
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    monkeypatch.setenv("CORECALL_CONFIG", str(path))
    code = main(["agents", "add", "--telegram-id", "651", "--phone", "+12125552002",
                 "--name", LONG_NAME])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert "The name is 5000 characters long; names can be at most 64 characters" in err
    assert "Traceback" not in err and LONG_NAME not in out + err
    assert main(["agents", "list", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


@pytest.mark.parametrize(
    "name",
    [
        "x" * 65, "Ali\nce", "Ali\rce", "tab\there", "evil\u202etxt.exe", "a\u2028b", "\x00",
        # invisible: a second "Alice" would look the same in /agents, calls live, the audit
        "Al\u061cice", "Ali\u200bce", "\ufeffAlice", "Ali\u00adce", "Alice\U000e0001",
        "Ali\U0001d173ce", "\u115fAlice", "Ali\u3164ce", "Ali\u200dce", "\u200d😀",
    ],
)  # fmt: skip
def test_every_entry_point_uses_the_same_name_rule(tmp_path, name):
    from corecall.app import App
    from corecall.config import parse_config

    app = App(parse_config(config_dict(tmp_path), path=None))
    try:
        with pytest.raises(RefusedError) as refused:
            AgentAdmin(app).add(651, "+12125552002", name, actor="test")
        assert refused.value.reason == "bad_name"
        assert app.store.get_agent(651) is None
        if len(name) > fields.NAME_MAX_CHARS:  # the store itself is the last line
            with pytest.raises(StoreError, match="at most 64"):
                app.store.add_agent(651, "+12125552002", name, actor="test")
    finally:
        app.close()
    assert fields.check_agent_name(" Zoë 😀👩‍💻 O'Brien ") == "Zoë 😀👩‍💻 O'Brien"


async def test_telegram_authorize_refuses_the_same_name_instead_of_cutting_it(make_bot):
    bot = await make_bot()
    text = await bot.reply(bot.admin, "/authorize 651 +12125552002 " + "N" * 100)
    assert text == (
        "The name is 100 characters long; names can be at most 64 characters (e.g. Alice Smith)."
    )
    assert bot.store.get_agent(651) is None


async def test_oversize_stored_values_still_give_replies_that_fit(make_bot):
    """A name longer than today's limit (written by an older version or by hand) must not
    turn replies into errors: /start, /revoke, /callerid and /agents answer, and the revoke
    is reported as done; the name is shown cut to its field's limit."""
    bot = await make_bot(agent_route="M")
    bot.store.database.execute_sql(
        "UPDATE agents SET name = ? WHERE telegram_id = ?", (LONG_NAME, AGENT_ID)
    )
    for user, command in (
        (bot.alice, "/start"), (bot.admin, "/agents"), (bot.admin, f"/callerid {AGENT_ID}"),
        (bot.admin, f"/revoke {AGENT_ID}"),
    ):  # fmt: skip
        requests = await bot.say(user, command)  # the harness raises MESSAGE_TOO_LONG
        assert requests and all(len(r.message) <= 4096 for r in requests), command
    assert bot.client.sent()[-1].message.endswith("is revoked: they can no longer place calls.")
    assert bot.store.get_agent(AGENT_ID).authorized is False
    # Templates show stored values within their field's limit: nothing had to be cut at the
    # last line (which would have logged an error and failed the harness's feed()).


@pytest.mark.parametrize(
    "command",
    ["/call", "/route", "/authorize 651 +12125552002", "/setphone 501", "/revoke",
     "/callerid", "/settings", "/history", "/start", "/nosuchcommand", "", "/agents"],
)  # fmt: skip
async def test_every_command_with_a_message_sized_argument_gets_a_reply_that_fits(
    make_bot, command
):
    bot = await make_bot()
    text = (command + " " + "9" * 4096)[:4096] if command else "x" * 4096
    for user in (bot.alice, bot.admin, bot.stranger):
        requests = await bot.say(user, text)
        assert [type(r).__name__ for r in requests].count("SendMessageRequest") >= 1
    assert bot.board.originated == []
    assert not bot.client.errors.records  # nothing needed cutting: the templates fit


async def test_the_harness_answers_like_telegram(make_bot):
    bot = await make_bot()
    with pytest.raises(errors.MessageTooLongError):
        await bot.client.send_message(ADMIN_ID, "x" * 4097)
    with pytest.raises(errors.MessageTooLongError):
        await bot.client.send_message(ADMIN_ID, "😀" * 2049)  # 4,098 UTF-16 code units
    await bot.client.send_message(ADMIN_ID, "😀" * 2048)
    with pytest.raises(errors.MessageEmptyError):
        await bot.client.send_message(ADMIN_ID, "  ", parse_mode=None)
    with pytest.raises(errors.MessageTooLongError):
        await bot.client(
            functions.messages.SetBotCallbackAnswerRequest(
                query_id=1, cache_time=0, message="x" * 201
            )
        )
    with pytest.raises(errors.ReplyMarkupTooLongError):
        from telethon import Button

        await bot.client.send_message(
            ADMIN_ID, "menu", buttons=[[Button.inline(str(i), b"x")] for i in range(101)]
        )
    await bot.say(bot.alice, f"/call {TARGET}")  # and ordinary use is unaffected
