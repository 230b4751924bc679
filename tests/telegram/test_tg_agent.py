"""Agent commands over a real TelegramClient: /start, /help, /settings and route selection
(the seed's exact texts), /route, /history, and what strangers are told."""

from __future__ import annotations

from corecall_testing.bot_under_test import AGENT_ID, STRANGER_ID
from corecall_testing.telegram_harness import buttons_of, data_of, labels_of
from telethon.tl import functions, types

from corecall.domain import CallState, EndReason

SEED_CONFIRM_D = (
    "Are you sure you want to switch to the Development route?\n"
    "All outbound calls will now go through this route."
)
SEED_CHANGED_D = "✅ Your route has been successfully changed to [Development]!"


def _audit(bot, action: str) -> list:
    return [e for e in bot.store.audit_log(100) if e.action == action]


# ---------------------------------------------------------------------------- /start, /help


async def test_start_for_an_agent_says_who_they_are_and_does_not_announce_the_route(make_bot):
    bot = await make_bot(agent_route="D")
    (request,) = await bot.say(bot.alice, "/start")
    assert isinstance(request, functions.messages.SendMessageRequest)
    assert request.peer == types.InputPeerUser(AGENT_ID, AGENT_ID * 7 + 1)
    assert request.message == (
        "👋 Hi Alice! You're an authorized agent.\n"
        "Your phone: +12125550111 (I ring it first, then the number you call).\n"
        "Send /call <number> to place a call, /settings for your caller ID and route, "
        "/help for everything."
    )
    assert "[D]" not in request.message and "Development" not in request.message
    assert not request.entities  # plain text: nothing parsed as Markdown


async def test_start_for_a_stranger_gives_their_numeric_id_and_what_to_tell_the_admin(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.stranger, "/start") == (
        "You're not authorized to use this bot yet.\n"
        f"Your Telegram id is {STRANGER_ID}. Send it to your admin and ask them to authorize "
        "you (they will also need your phone number)."
    )


async def test_start_for_a_new_agent_without_route_points_to_settings(make_bot):
    bot = await make_bot(agent_route=None)
    text = await bot.reply(bot.alice, "/start")
    assert text.endswith("Before your first call, choose a route in /settings.")


async def test_help_lists_agent_commands_and_limits_but_not_admin_ones(make_bot):
    bot = await make_bot(limits={"calls_per_minute": 4})
    text = await bot.reply(bot.alice, "/help")
    assert "/call <number>" in text and "/route M or /route D — switch route directly" in text
    assert "(M = Main, D = Development)" in text
    assert "Limits: 1 live call at a time, 4 calls per minute." in text
    assert "/authorize" not in text


async def test_help_for_an_admin_lists_admin_commands(make_bot):
    bot = await make_bot()
    text = await bot.reply(bot.admin, "/help")
    assert text.startswith("Admin commands:")
    assert "/authorize <id> <phone> [name]" in text and "/callerid <id>" in text


async def test_unknown_command_and_plain_text(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.alice, "/dance") == (
        "I don't know that command. Send /help to see what I can do."
    )
    assert await bot.reply(bot.alice, "hello") == (
        "I only understand commands. To place a call, send /call <number>; /help lists all."
    )


async def test_commands_match_the_whole_text(make_bot):
    bot = await make_bot()
    # A prefix match would take these for /start and /settings.
    assert await bot.reply(bot.alice, "/startnow") == (
        "I don't know that command. Send /help to see what I can do."
    )
    assert await bot.reply(bot.alice, "/settings now") == (
        "/settings takes nothing after it: send just /settings."
    )


# ---------------------------------------------------------------------------- /settings


async def test_settings_menu_shows_caller_id_with_route_tag_and_select_route_button(make_bot):
    bot = await make_bot(agent_route="D")
    (request,) = await bot.say(bot.alice, "/settings")
    assert request.message == ("⚙️ Settings\nYour phone: +12125550111\nCaller ID: +12125550199 [D]")
    assert buttons_of(request) == [[("Select Route 🌐", b"1:rs:501")]]


async def test_route_selection_flow_with_the_seed_texts(make_bot):
    bot = await make_bot(agent_route="M")
    (menu,) = await bot.say(bot.alice, "/settings")
    assert "Caller ID: +12125550100 [M]" in menu.message
    menu_id = bot.client.message_id(menu)

    (edit,) = [r for r in await bot.press(bot.alice, menu_id, b"1:rs:501") if hasattr(r, "id")]
    assert edit.id == menu_id
    assert edit.message == "Choose a route for your outbound calls:"
    token = data_of(edit, "[Main Route]  🌍").split(b":")[3]
    assert buttons_of(edit) == [
        [("[Main Route]  🌍", b"1:rp:501:" + token + b":M")],
        [("[Development Route]  🛠️", b"1:rp:501:" + token + b":D")],
    ]

    requests = await bot.press(bot.alice, menu_id, data_of(edit, "[Development Route]  🛠️"))
    (confirm,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert confirm.message == SEED_CONFIRM_D
    yes = data_of(confirm, "✅ Yes, Switch Route")
    token2 = yes.split(b":")[3]
    assert token2 != token
    assert buttons_of(confirm) == [
        [("✅ Yes, Switch Route", b"1:ry:501:" + token2)],
        [("❌ Cancel", b"1:rn:501:" + token2)],
    ]
    assert bot.store.get_agent(AGENT_ID).route_code == "M"  # not yet

    requests = await bot.press(bot.alice, menu_id, yes)
    (done,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert done.message == SEED_CHANGED_D
    assert done.reply_markup is None
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    (entry,) = _audit(bot, "agent.set_route")[:1]
    assert entry.actor == f"telegram:{AGENT_ID}"
    # Every button press was answered, with no toast.
    assert [a.message for a in bot.client.answers()] == [None, None, None]

    # The tag next to the caller ID follows the route in every menu showing it.
    (menu2,) = await bot.say(bot.alice, "/settings")
    assert "Caller ID: +12125550199 [D]" in menu2.message


async def open_confirmation(bot, menu_id: int, route_label: str):
    """Settings menu -> Select Route -> ``route_label``: the confirmation edit."""
    (routes,) = [r for r in await bot.press(bot.alice, menu_id, b"1:rs:501") if hasattr(r, "id")]
    requests = await bot.press(bot.alice, menu_id, data_of(routes, route_label))
    (confirm,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    return confirm


async def test_cancel_keeps_the_route(make_bot):
    bot = await make_bot(agent_route="M")
    (menu,) = await bot.say(bot.alice, "/settings")
    menu_id = bot.client.message_id(menu)
    confirm = await open_confirmation(bot, menu_id, "[Development Route]  🛠️")
    requests = await bot.press(bot.alice, menu_id, data_of(confirm, "❌ Cancel"))
    (edit,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert edit.message == "❌ Route change cancelled.\nCaller ID: +12125550100 [M]"
    assert bot.store.get_agent(AGENT_ID).route_code == "M"


async def test_picking_the_current_route_says_so(make_bot):
    bot = await make_bot(agent_route="D")
    (menu,) = await bot.say(bot.alice, "/settings")
    menu_id = bot.client.message_id(menu)
    (routes,) = [r for r in await bot.press(bot.alice, menu_id, b"1:rs:501") if hasattr(r, "id")]
    requests = await bot.press(bot.alice, menu_id, data_of(routes, "[Development Route]  🛠️"))
    (edit,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert edit.message == ("You're already on the Development route.\nCaller ID: +12125550199 [D]")


async def test_only_enabled_route_plugins_are_offered(make_bot):
    bot = await make_bot(agent_route=None, disabled_plugins=("route_dev",))
    (menu,) = await bot.say(bot.alice, "/settings")
    requests = await bot.press(bot.alice, bot.client.message_id(menu), b"1:rs:501")
    (edit,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert labels_of(edit) == ["[Main Route]  🌍"]
    # A stale or forged button for the disabled route does nothing.
    token = data_of(edit, "[Main Route]  🌍").split(b":")[3]
    requests = await bot.press(bot.alice, 9, b"1:rp:501:" + token + b":D")
    (edit,) = [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]
    assert edit.message == (
        "That route is not available any more. Send /settings to see the routes you can use."
    )
    requests = await bot.press(bot.alice, 9, b"1:ry:501:" + token)
    assert requests[0].message.startswith("This menu is closed")
    assert bot.store.get_agent(AGENT_ID).route_code is None
    assert await bot.reply(bot.alice, "/route D") == (
        "There is no route 'D' to switch to. Use /route M (Main)."
    )


# ---------------------------------------------------------------------------- /route


async def test_route_command_switches_directly_and_persists(make_bot):
    bot = await make_bot(agent_route=None)
    assert await bot.reply(bot.alice, "/route D") == SEED_CHANGED_D
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    assert await bot.reply(bot.alice, "/route m") == (
        "✅ Your route has been successfully changed to [Main]!"
    )
    agent = bot.store.get_agent(AGENT_ID)
    assert agent.route_code == "M"
    actors = {e.actor for e in _audit(bot, "agent.set_route")}
    assert actors == {f"telegram:{AGENT_ID}"}


async def test_route_command_refusals_say_what_works(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.alice, "/route X") == (
        "There is no route 'X' to switch to. Use /route M (Main) or /route D (Development)."
    )
    assert await bot.reply(bot.alice, "/route M D") == (
        "There is no route 'M D' to switch to. Use /route M (Main) or /route D (Development)."
    )
    (request,) = await bot.say(bot.alice, "/route")
    assert request.message == (
        "Tell me which route: /route M (Main) or /route D (Development). Or choose one below."
    )
    assert labels_of(request) == ["[Main Route]  🌍", "[Development Route]  🛠️"]
    assert bot.store.get_agent(AGENT_ID).route_code == "D"


# ---------------------------------------------------------------------------- /history


async def test_history_lists_last_calls_with_result_and_duration(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.alice, "/history") == (
        "You haven't placed any calls yet. Send /call <number> to place one."
    )
    await bot.say(bot.alice, "/call +12125550123")
    for state in (CallState.AGENT_RINGING, CallState.AGENT_ANSWERED, CallState.CONNECTED):
        bot.board.move(state)
    bot.wall.advance(75)
    bot.board.move(CallState.ENDED, EndReason.COMPLETED)
    await bot.conversation.wait_idle(timeout=3)
    await bot.say(bot.alice, "/call (212) 555-0486")
    bot.board.move(CallState.ENDED, EndReason.TARGET_BUSY)
    await bot.calls.wait_final(bot.board.last_call_id, timeout=3)  # written to the store

    text = await bot.reply(bot.alice, "/history")
    day = bot.wall.now.strftime("%Y-%m-%d %H:%M UTC")
    assert text.split("\n")[0] == "Your last 2 calls, newest first:"
    first, second = text.split("\n")[1:]
    assert second.endswith("· +12125550123 · [D] · ✅ completed, talked 1:15")
    assert first.endswith("· +12125550486 · [D] · ❌ busy")
    assert first.startswith(day[:10])


async def test_revoked_agent_is_refused_everywhere(make_bot):
    bot = await make_bot()
    bot.store.set_authorized(AGENT_ID, False, actor="test")
    refusal = (
        "You're not authorized to use this bot yet.\n"
        f"Your Telegram id is {AGENT_ID}. Send it to your admin and ask them to authorize you "
        "(they will also need your phone number)."
    )
    for command in ("/settings", "/history", "/route M"):
        assert await bot.reply(bot.alice, command) == refusal
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    # Authorization is re-read on every button press too.
    requests = await bot.press(bot.alice, 3, b"1:rs:501")
    assert not bot.client.edits()
    assert requests[-1].message == (
        "You're not authorized to do this. Send /start to see your Telegram id."
    )
    assert bot.store.get_agent(AGENT_ID).route_code == "D"


async def test_start_for_an_admin_who_is_not_an_agent(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.admin, "/start") == (
        "👋 Hi! You're a super admin (Telegram id 1000). You aren't an agent, so you can't place "
        "calls yourself; to become one, send /authorize 1000 <your phone>.\n"
        "Send /help for the admin commands."
    )
