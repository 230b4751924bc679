"""Commands addressed to other bots, and the texts issue #10 found wrong (offline harness:
a real TelegramClient)."""

from __future__ import annotations

import pytest
from corecall_testing.bot_under_test import AGENT_ID, TARGET
from telethon.tl import functions

from corecall.domain import CallState


def sent_texts(requests) -> list[str]:
    return [r.message for r in requests if isinstance(r, functions.messages.SendMessageRequest)]


# --------------------------------------------------------------------------- addressing


@pytest.mark.parametrize(
    "text",
    ["/call@SomeOtherBot +12125550123", "/CALL@someotherbot +12125550123",
     "/call@corecall_bot_2 +12125550123", "/start@OtherBot", "/route@OtherBot M"],
)  # fmt: skip
async def test_a_command_for_another_bot_is_never_acted_on_in_a_private_chat(make_bot, text):
    bot = await make_bot(agent_route="D")
    requests = await bot.say(bot.alice, text)
    assert bot.board.originated == [] and bot.store.recent_calls(None, 5) == []
    (reply,) = sent_texts(requests)
    assert "addressed to @" in reply and "another bot" in reply and "did nothing" in reply
    assert bot.store.get_agent(AGENT_ID).route_code == "D"


@pytest.mark.parametrize("text", ["/start@SomeOtherBot", "/call@SomeOtherBot +12125550123",
                                  "/help@OtherBot"])  # fmt: skip
async def test_a_command_for_another_bot_in_a_group_is_ignored_silently(make_bot, text):
    bot = await make_bot()
    before = len(bot.client.requests)
    await bot.client.feed(bot.client.group_text(bot.alice, 4242, text))
    sends = sent_texts(bot.client.requests[before:])
    assert sends == []
    assert bot.board.originated == []


@pytest.mark.parametrize("name", ["corecall_bot", "CoreCall_Bot", "CORECALL_BOT"])
async def test_a_command_addressed_to_us_works_in_any_case(make_bot, name):
    bot = await make_bot(agent_route="D")
    await bot.say(bot.alice, f"/call@{name} {TARGET}")
    await bot.until(lambda: bot.board.originated, what="a call to be placed")
    assert bot.board.originated[0].target == TARGET


async def test_a_command_addressed_to_us_in_a_group_gets_the_private_chat_answer(make_bot):
    bot = await make_bot()
    before = len(bot.client.requests)
    await bot.client.feed(bot.client.group_text(bot.alice, 4242, "/start@corecall_bot"))
    (reply,) = sent_texts(bot.client.requests[before:])
    assert "private chat" in reply


# --------------------------------------------------------------------------- texts


async def test_route_with_no_route_available_says_so_plainly(make_bot):
    bot = await make_bot(agent_route=None, disabled_plugins=("route_main", "route_dev"))
    text = await bot.reply(bot.alice, "/route M")
    assert text == (
        "There is no route 'M' to switch to. No route is available right now, so calls can't "
        "be placed. Tell your admin."
    )
    assert "Use no route" not in text
    text = await bot.reply(bot.alice, "/route")
    assert text == "No route is available right now, so calls can't be placed. Tell your admin."


async def test_route_to_the_current_route_says_already_and_changes_nothing(make_bot):
    bot = await make_bot(agent_route="D")
    audit_before = len(bot.store.audit_log(100))
    text = await bot.reply(bot.alice, "/route D")
    assert text.startswith("You're already on the Development route.")
    assert "successfully changed" not in text
    assert len(bot.store.audit_log(100)) == audit_before


async def test_a_super_admin_who_is_not_an_agent_is_not_told_to_ask_an_admin(make_bot):
    bot = await make_bot()
    for command in ("/call +12125550123", "/settings", "/route D", "/history"):
        text = await bot.reply(bot.admin, command)
        assert "ask your admin" not in text and "Send it to your admin" not in text, command
        assert "super admin" in text and "/authorize 1000 <your phone>" in text
    assert "ask your admin" not in await bot.reply(bot.admin, "hello")


async def test_setphone_to_an_emergency_number_speaks_of_the_agent_phone(make_bot):
    bot = await make_bot()
    text = await bot.reply(bot.admin, f"/setphone {AGENT_ID} 911")
    assert "emergency number" in text and "can't be an agent's phone" in text
    assert "in an emergency" not in text
    assert bot.store.get_agent(AGENT_ID).phone == "+12125550111"


@pytest.mark.parametrize("number", ["911", "+1 900 200 0000"])
async def test_emergency_and_premium_refusals_have_no_irrelevant_example(make_bot, number):
    bot = await make_bot(agent_route="D")
    text = await bot.reply(bot.alice, f"/call {number}")
    assert text.startswith("⛔ Not dialed.") and "Use a full number" not in text


async def test_country_refusal_reads_naturally(make_bot):
    bot = await make_bot(agent_route="D")
    text = await bot.reply(bot.alice, "/call +44 20 7946 0000")
    assert "+442079460000 is a United Kingdom (GB) number." in text
    assert "in the region" not in text


async def test_an_admin_sets_an_agents_route_from_telegram(make_bot):
    bot = await make_bot(agent_route=None)
    text = await bot.reply(bot.admin, f"/setroute {AGENT_ID} d")
    assert text == (
        f"✅ Agent {AGENT_ID} (Alice) now uses the Development route.\nCaller ID: +12125550199 [D]"
    )
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    assert next(e.actor for e in bot.store.audit_log(10) if e.action == "agent.set_route") == (
        "telegram:1000"
    )
    assert "already on the Development route" in await bot.reply(
        bot.admin, f"/setroute {AGENT_ID} D"
    )
    assert "There is no route 'Z'" in await bot.reply(bot.admin, f"/setroute {AGENT_ID} Z")
    assert "Usage: /setroute" in await bot.reply(bot.admin, "/setroute")
    assert "no agent with telegram id 42" in (await bot.reply(bot.admin, "/setroute 42 M")).lower()
    assert "super admins only" in await bot.reply(bot.alice, f"/setroute {AGENT_ID} M")
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    assert "/setroute <id> <route>" in await bot.reply(bot.admin, "/help")


async def test_a_live_call_is_unaffected_by_the_addressing_rules(make_bot):
    bot = await make_bot(agent_route="D")
    await bot.say(bot.alice, f"/call {TARGET}")
    await bot.until(lambda: bot.board.originated, what="a call")
    assert bot.calls.live_calls(AGENT_ID)[0].state is not CallState.ENDED


async def test_an_agent_whose_route_was_switched_off_is_told_so_with_the_choices(make_bot):
    """Route D's plugin disabled after Alice chose D: it said "You haven't chosen a route
    yet" (tester). A real TelegramClient reads what the agent reads, buttons included."""
    bot = await make_bot(agent_route=None, disabled_plugins=("route_dev",))
    bot.store.set_route(AGENT_ID, "D", actor="test")  # chosen while route_dev was enabled
    requests = await bot.say(bot.alice, f"/call {TARGET}")
    (sent,) = [r for r in requests if isinstance(r, functions.messages.SendMessageRequest)]
    assert sent.message == (
        "Your route [D] is no longer offered. I can't place calls for you until you choose "
        "another. Choose one below, then send your /call again."
    )
    labels = [b.text for row in sent.reply_markup.rows for b in row.buttons]
    assert labels == ["[Main Route]  🌍"]
    assert bot.board.originated == []
    text = await bot.reply(bot.alice, "/route")
    assert text == (
        "Your route [D] is no longer offered. Tell me which route: /route M (Main). Or choose "
        "one below."
    )
    assert "Your route [D] is no longer offered." in await bot.reply(bot.alice, "/start")
    assert "Caller ID: none [route D is no longer offered]" in await bot.reply(
        bot.alice, "/settings"
    )
