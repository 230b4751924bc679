"""Admin commands over a real TelegramClient: a hint names the command that was typed (for
the agent it was typed about), a command is applied whole or not at all, and a change to
what is already true writes nothing, audits nothing and says so (tester5)."""

from __future__ import annotations

import pytest
from corecall_testing.bot_under_test import ADMIN_ID, AGENT_ID
from corecall_testing.telegram_harness import buttons_of
from telethon.tl import functions

ADMIN_ACTOR = f"telegram:{ADMIN_ID}"


def audit_count(bot) -> int:
    return len(bot.store.audit_log(500))


def edited(requests) -> str:
    (edit,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    return edit.message


# --------------------------------------------------------------------------- hints


async def test_setroute_with_an_unknown_route_hints_setroute_for_that_agent(make_bot):
    """'/setroute 123 X' told the admin to send /route M, which changes the admin's own
    route, not agent 123's."""
    bot = await make_bot(agent_route="D")
    for typed, shown in (("X", "X"), ("m d", "m d"), ("Main", "Main")):
        assert await bot.reply(bot.admin, f"/setroute 501 {typed}") == (
            f"There is no route {shown!r} to set. Use /setroute 501 M (Main) or "
            "/setroute 501 D (Development)."
        )
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    # The agent's own command keeps its own hint.
    assert await bot.reply(bot.alice, "/route X") == (
        "There is no route 'X' to switch to. Use /route M (Main) or /route D (Development)."
    )


async def test_a_caller_id_menu_outdated_by_a_route_change_says_what_works(make_bot):
    bot = await make_bot(agent_route="M")
    (menu,) = await bot.say(bot.admin, "/callerid 501")
    await bot.reply(bot.alice, "/route D")  # the agent moves on before the admin presses
    before = audit_count(bot)
    requests = await bot.press(bot.admin, bot.client.message_id(menu), buttons_of(menu)[1][0][1])
    assert edited(requests) == (
        "Nothing was changed: +12125550101 is not one of the Development route's caller IDs "
        "(agent 501 (Alice) is on the Development route now). Send /callerid 501 again to "
        "choose among them."
    )
    assert bot.store.get_agent(AGENT_ID).caller_id is None
    assert audit_count(bot) == before


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("/revoke@OtherBot 501", "/revoke 501"), ("/Call@OtherBot +12125550123",
      "/Call +12125550123"), ("/start@OtherBot", "/start")],
)  # fmt: skip
async def test_a_command_for_another_bot_is_shown_back_without_the_at_part(
    make_bot, typed, suggested
):
    bot = await make_bot()
    bot.conversation.bot_username = ""  # unknown (the console, the demo): every @ is another bot
    assert await bot.reply(bot.admin, typed) == (
        "That command is addressed to @OtherBot, another bot, so I did nothing. To ask me, "
        f"send it without the @ part: {suggested}"
    )
    bot.conversation.bot_username = "corecall_bot"
    assert await bot.reply(bot.admin, typed) == (
        "That command is addressed to @OtherBot, another bot, so I did nothing. I'm "
        f"@corecall_bot: to ask me, send it without the @ part: {suggested}"
    )


# --------------------------------------------------------------------------- applied whole


async def test_authorize_with_a_name_it_cannot_apply_changes_nothing(make_bot):
    """'/authorize 123 (212) 555-0131 Alice' for an agent named Alice Smith applied the new
    phone and dropped the name without a word."""
    bot = await make_bot()
    before, audited = bot.store.get_agent(AGENT_ID), audit_count(bot)
    assert await bot.reply(bot.admin, "/authorize 501 (212) 555-0131 Alicia") == (
        "Nothing was changed: agent 501 is named Alice, and a name can only be given when an "
        "agent is added. To authorize them with that phone, send /authorize 501 (212) "
        "555-0131, without the name."
    )
    await bot.reply(bot.admin, "/revoke 501")
    assert await bot.reply(bot.admin, "/authorize 501 +12125550131 Alicia") == (
        "Nothing was changed: agent 501 is named Alice, and a name can only be given when an "
        "agent is added. To authorize them with that phone, send /authorize 501 "
        "+12125550131, without the name."
    )
    assert bot.store.get_agent(AGENT_ID).phone == before.phone
    assert bot.store.get_agent(AGENT_ID).authorized is False
    assert audit_count(bot) == audited + 1  # the revoke only
    # The name they have, typed again, is no change: the rest is applied.
    assert await bot.reply(bot.admin, "/authorize 501 (212) 555-0131 Alice") == (
        "✅ Agent 501 (Alice) is authorized. Phone: +12125550131 (was +12125550111)."
    )
    agent = bot.store.get_agent(AGENT_ID)
    assert (agent.authorized, agent.phone, agent.name) == (True, "+12125550131", "Alice")
    actions = [e.action for e in bot.store.audit_log(3)]
    assert sorted(actions[:2]) == ["agent.authorize", "agent.set_phone"]


async def test_authorize_refuses_a_bad_name_for_an_existing_agent_too(make_bot):
    bot = await make_bot()
    audited = audit_count(bot)
    reply = await bot.reply(bot.admin, "/authorize 501 +12125550131 Al\u202eice")
    assert reply.startswith("The name contains the invisible or control character U+202E")
    assert bot.store.get_agent(AGENT_ID).phone == "+12125550111"
    assert audit_count(bot) == audited


# --------------------------------------------------------------------------- no-ops


async def test_revoke_and_authorize_twice_say_already_and_audit_once(make_bot):
    bot = await make_bot()
    audited = audit_count(bot)
    assert await bot.reply(bot.admin, "/revoke 501") == (
        "🚫 Agent 501 (Alice) is revoked: they can no longer place calls."
    )
    assert await bot.reply(bot.admin, "/revoke 501") == (
        "Agent 501 (Alice) was already revoked; nothing changed."
    )
    assert audit_count(bot) == audited + 1
    assert await bot.reply(bot.admin, "/authorize 501 +12125550111") == (
        "✅ Agent 501 (Alice) is authorized. Phone: +12125550111."
    )
    for typed in ("/authorize 501 +12125550111", "/authorize 501 (212) 555-0111 Alice"):
        assert await bot.reply(bot.admin, typed) == (
            "Agent 501 (Alice) was already authorized with phone +12125550111; nothing changed."
        )
    assert audit_count(bot) == audited + 2
    assert [e.action for e in bot.store.audit_log(2)] == ["agent.authorize", "agent.revoke"]


async def test_setphone_and_setroute_to_what_they_have_say_already(make_bot):
    bot = await make_bot(agent_route="D")
    audited = audit_count(bot)
    assert await bot.reply(bot.admin, "/setphone 501 (212) 555-0111") == (
        "Agent 501 (Alice) is already rung on +12125550111; nothing changed."
    )
    assert audit_count(bot) == audited
    assert await bot.reply(bot.admin, "/setroute 501 d") == (
        "Agent 501 (Alice) is already on the Development route; nothing changed.\n"
        "Caller ID: +12125550199 [D]"
    )
    assert audit_count(bot) == audited


async def test_choosing_the_caller_id_they_have_says_already(make_bot):
    bot = await make_bot(agent_route="M")
    (menu,) = await bot.say(bot.admin, "/callerid 501")
    requests = await bot.press(bot.admin, bot.client.message_id(menu), buttons_of(menu)[1][0][1])
    assert edited(requests) == "✅ Agent 501 (Alice) now calls with\nCaller ID: +12125550101 [M]"
    audited = audit_count(bot)
    (menu,) = await bot.say(bot.admin, "/callerid 501")
    assert buttons_of(menu)[1][0][0] == "+12125550101 ✓"
    requests = await bot.press(bot.admin, bot.client.message_id(menu), buttons_of(menu)[1][0][1])
    assert edited(requests) == (
        "Agent 501 (Alice) already calls with this number; nothing changed.\n"
        "Caller ID: +12125550101 [M]"
    )
    assert audit_count(bot) == audited
