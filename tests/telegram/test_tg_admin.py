"""Admin commands over a real TelegramClient: by a super admin (changes made and audited
with the admin as actor) and by anyone else (a plain refusal, nothing changed)."""

from __future__ import annotations

import re

import pytest
from corecall_testing.bot_under_test import ADMIN_ID, AGENT_ID, TARGET
from corecall_testing.telegram_harness import buttons_of
from telethon.tl import functions

ADMIN_ACTOR = f"telegram:{ADMIN_ID}"


def audit(bot, action: str) -> list:
    return [e for e in bot.store.audit_log(200) if e.action == action]


@pytest.mark.parametrize(
    "command",
    ["/authorize 600 +12125550177 Bob", "/revoke 501", "/agents", "/setphone 501 +12125550155",
     "/callerid 501"],
)  # fmt: skip
async def test_non_admins_get_a_plain_refusal_and_nothing_changes(make_bot, command):
    bot = await make_bot()
    before = bot.store.list_agents()
    name = command.split()[0]
    for user in (bot.alice, bot.stranger):  # an agent, a stranger
        assert await bot.reply(user, command) == (
            f"{name} is for super admins only. Send /help to see what you can do."
        )
    assert bot.store.list_agents() == before
    denied = audit(bot, "admin.denied")
    assert [(e.actor, e.subject) for e in denied] == [
        ("telegram:777", name), (f"telegram:{AGENT_ID}", name),
    ]  # fmt: skip


async def test_authorize_adds_an_agent_who_can_then_use_the_bot(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.admin, "/authorize 600 (212) 555-0177 Bob  Smith") == (
        "✅ Agent 600 (Bob Smith) is authorized. Phone: +12125550177. They have no route yet: "
        "they choose one in /settings."
    )
    agent = bot.store.get_agent(600)
    assert (agent.authorized, agent.phone, agent.name) == (True, "+12125550177", "Bob Smith")
    (entry,) = audit(bot, "agent.add")[:1]
    assert (entry.actor, entry.subject) == (ADMIN_ACTOR, "600")
    bob = bot.client.user(600, "Bob")
    assert (await bot.reply(bob, "/start")).startswith(
        "👋 Hi Bob Smith! You're an authorized agent."
    )


@pytest.mark.parametrize(
    "pasted",
    [
        "+1 (212) 555\u20110177",  # NON-BREAKING HYPHEN
        "\u202a+1 (212) 555-0177\u202c",  # a contact card's LRE ... PDF wrappers
        "+1\u00a0(212)\u00a0555-0177",  # NO-BREAK SPACEs
    ],
)
async def test_authorize_reads_a_number_pasted_from_a_contact_card(make_bot, pasted):
    """'/authorize 124 +1 (212) 555‑0132 Bob' answered 'That is a short code…' and the
    contact card's copy the usage text: the name was split off before the number was read
    as /call reads it (fix6, tester5)."""
    bot = await make_bot()
    assert (await bot.reply(bot.admin, f"/authorize 600 {pasted} Bob")).startswith(
        "✅ Agent 600 (Bob) is authorized. Phone: +12125550177."
    )
    agent = bot.store.get_agent(600)
    assert (agent.phone, agent.name) == ("+12125550177", "Bob")


async def test_authorize_refusals_say_what_works(make_bot):
    bot = await make_bot()
    usage = (
        "Usage: /authorize <telegram id> <phone> [name], e.g. /authorize 123456789 "
        "+12125550123 Alice"
    )
    assert await bot.reply(bot.admin, "/authorize 600") == usage
    assert await bot.reply(bot.admin, "/authorize bob +12125550177") == usage
    assert await bot.reply(bot.admin, "/authorize 601 911") == (
        "Agent phone: That is an emergency number, so it can't be an agent's phone. Give the "
        "agent's own full phone number. Use a full number like +12125550123 or (212) 555-0123."
    )
    assert bot.store.get_agent(600) is None and bot.store.get_agent(601) is None


async def test_revoke_stops_the_agent_at_once(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.admin, "/revoke 501") == (
        "🚫 Agent 501 (Alice) is revoked: they can no longer place calls."
    )
    assert bot.store.get_agent(AGENT_ID).authorized is False
    assert audit(bot, "agent.revoke")[0].actor == ADMIN_ACTOR
    assert (await bot.reply(bot.alice, f"/call {TARGET}")).startswith(
        "⛔ Not dialed. You are not authorized to place calls."
    )
    assert bot.board.originated == []
    assert await bot.reply(bot.admin, "/revoke 999") == (
        "There is no agent with Telegram id 999. Add one with /authorize 999 <phone> [name]."
    )
    assert (
        await bot.reply(bot.admin, "/revoke")
        == "Usage: /revoke <telegram id>, e.g. /revoke 123456789"
    )


async def test_agents_lists_everyone_with_caller_id_and_route_tag(make_bot):
    bot = await make_bot(agent_route="D")
    await bot.reply(bot.admin, "/authorize 600 +12125550177 Bob")
    await bot.reply(bot.admin, "/revoke 600")
    assert await bot.reply(bot.admin, "/agents") == (
        "Agents (2):\n"
        "✅ 501 (Alice) · phone +12125550111 · Caller ID: +12125550199 [D]\n"
        "🚫 600 (Bob) · phone +12125550177 · Caller ID: none yet [no route]"
    )
    assert audit(bot, "agents.list")[0].actor == ADMIN_ACTOR


async def test_setphone_changes_the_phone_rung_first(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.admin, "/setphone 501 212.555.0155") == (
        "✅ Agent 501 (Alice) will now be rung on +12125550155."
    )
    assert audit(bot, "agent.set_phone")[0].actor == ADMIN_ACTOR
    await bot.say(bot.alice, f"/call {TARGET}")
    assert bot.board.originated[0].agent_phone == "+12125550155"
    assert await bot.reply(bot.admin, "/setphone 501") == (
        "Usage: /setphone <telegram id> <phone>, e.g. /setphone 123456789 +12125550123"
    )


async def test_callerid_offers_the_routes_own_numbers_as_buttons(make_bot):
    bot = await make_bot(agent_route="M")
    (menu,) = await bot.say(bot.admin, "/callerid 501")
    assert menu.message == (
        "Choose the caller ID for agent 501 (Alice) on the Main route.\nCaller ID: +12125550100 [M]"
    )
    (first, second) = buttons_of(menu)
    token = first[0][1].split(b":")[3]
    assert re.fullmatch(rb"[0-9a-f]{8}", token)
    assert [first, second] == [
        [("+12125550100 ✓", b"1:ci:1000:" + token + b":0")],
        [("+12125550101", b"1:ci:1000:" + token + b":1")],
    ]
    menu_id = bot.client.message_id(menu)

    # Alice can't use the admin's button, nor forge one with her own id.
    requests = await bot.press(bot.alice, menu_id, second[0][1])
    assert requests[0].message == "This button isn't for you."
    requests = await bot.press(bot.alice, menu_id, b"1:ci:501:" + token + b":1")
    assert requests[0].message == "Only super admins can do this."
    assert bot.store.get_agent(AGENT_ID).caller_id is None

    requests = await bot.press(bot.admin, menu_id, second[0][1])
    (edit,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert edit.message == "✅ Agent 501 (Alice) now calls with\nCaller ID: +12125550101 [M]"
    assert bot.store.get_agent(AGENT_ID).caller_id == "+12125550101"
    assert audit(bot, "agent.set_caller_id")[0].actor == ADMIN_ACTOR
    await bot.say(bot.alice, f"/call {TARGET}")
    assert bot.board.originated[0].caller_id == "+12125550101"

    # The menu was answered: its buttons are single-use; a forged choice does nothing either.
    for data in (first[0][1], b"1:ci:1000:" + token + b":7"):
        requests = await bot.press(bot.admin, menu_id, data)
        assert requests[0].message.startswith("This menu is closed")
    # A newer menu replaces the older one (whose buttons are removed); its choices are
    # indexes into the route's own numbers, so a number can't be forged.
    (menu2,) = await bot.say(bot.admin, "/callerid 501")
    await bot.say(bot.admin, "/callerid 501")
    await bot.conversation.flush_edits(timeout=2)
    assert bot.client.edits()[-1].message == "This menu was replaced by a newer one."
    assert bot.client.edits()[-1].id == bot.client.message_id(menu2)
    requests = await bot.press(bot.admin, bot.client.message_id(menu2), buttons_of(menu2)[0][0][1])
    assert requests[0].message.startswith("This menu is closed")
    assert bot.store.get_agent(AGENT_ID).caller_id == "+12125550101"


async def test_callerid_for_an_agent_without_route(make_bot):
    bot = await make_bot(agent_route=None)
    assert await bot.reply(bot.admin, "/callerid 501") == (
        "Agent 501 (Alice) has no route yet, and a caller ID belongs to a route. Set one with "
        "/setroute 501 M (Main) or /setroute 501 D (Development) (or they choose one in "
        "/settings), then send /callerid 501 again."
    )
    assert await bot.reply(bot.admin, "/callerid 42") == (
        "There is no agent with Telegram id 42. Add one with /authorize 42 <phone> [name]."
    )
