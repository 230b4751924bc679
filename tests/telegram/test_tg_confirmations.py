"""Confirmations are single-use (issue #7, finding 3).

A confirmation dies when its menu is answered, cancelled or replaced: the old "✅ Yes, Switch
Route" data pressed again after ❌ Cancel, two taps racing, the agent's second device, and a
newer menu must all leave the route as it is. The buttons' data is read from the messages the
bot sent, as a Telegram client does.
"""

from __future__ import annotations

import asyncio

from corecall_testing.bot_under_test import AGENT_ID
from corecall_testing.telegram_harness import data_of
from telethon.tl import functions

from corecall.conversation import UserRef

DEV = "[Development Route]  🛠️"
YES = "✅ Yes, Switch Route"
CANCEL = "❌ Cancel"
CLOSED = (
    "This menu is closed (already answered, cancelled or replaced by a newer one). "
    "Send the command again."
)


def _edits(requests) -> list:
    return [r for r in requests if isinstance(r, functions.messages.EditMessageRequest)]


async def _confirmation(bot) -> tuple[int, object]:
    """/settings -> Select Route -> Development: (message id, the confirmation edit)."""
    (menu,) = await bot.say(bot.alice, "/settings")
    menu_id = bot.client.message_id(menu)
    (routes,) = _edits(await bot.press(bot.alice, menu_id, data_of(menu, "Select Route 🌐")))
    (confirm,) = _edits(await bot.press(bot.alice, menu_id, data_of(routes, DEV)))
    assert confirm.message.startswith("Are you sure you want to switch to the Development")
    return menu_id, confirm


async def test_yes_after_cancel_does_nothing(make_bot):
    bot = await make_bot(agent_route="M")
    menu_id, confirm = await _confirmation(bot)
    (cancelled,) = _edits(await bot.press(bot.alice, menu_id, data_of(confirm, CANCEL)))
    assert cancelled.message.startswith("❌ Route change cancelled.")

    requests = await bot.press(bot.alice, menu_id, data_of(confirm, YES))
    assert [r.message for r in requests] == [CLOSED]  # a toast, and the message is left alone
    assert bot.store.get_agent(AGENT_ID).route_code == "M"
    # Cancel again, or the route list's old buttons: closed too.
    for data in (data_of(confirm, CANCEL),):
        assert [r.message for r in await bot.press(bot.alice, menu_id, data)] == [CLOSED]
    assert [e.action for e in bot.store.audit_log(50)].count("agent.set_route") == 1  # set-up


async def test_two_racing_taps_switch_once(make_bot):
    bot = await make_bot(agent_route="M")
    for _round in range(5):
        bot.store.set_route(AGENT_ID, "M", actor="test")
        menu_id, confirm = await _confirmation(bot)
        alice = UserRef(AGENT_ID, AGENT_ID)
        yes, cancel = data_of(confirm, YES), data_of(confirm, CANCEL)
        # Yes and Cancel at the same moment (two fingers, or two devices): exactly one acts.
        toasts = await asyncio.gather(
            bot.conversation.handle_button(alice, menu_id, yes),
            bot.conversation.handle_button(alice, menu_id, cancel),
            bot.conversation.handle_button(alice, menu_id, yes),
        )
        await bot.conversation.flush_edits(timeout=2)
        assert toasts.count(CLOSED) == 2, toasts
        assert bot.store.get_agent(AGENT_ID).route_code == "D"  # the first press won


async def test_second_device_sees_the_menu_closed(make_bot):
    bot = await make_bot(agent_route="M")
    menu_id, confirm = await _confirmation(bot)
    yes = data_of(confirm, YES)
    (done,) = _edits(await bot.press(bot.alice, menu_id, yes))
    assert done.message == "✅ Your route has been successfully changed to [Development]!"
    bot.store.set_route(AGENT_ID, "M", actor="admin")  # changed back meanwhile
    # The phone in the agent's pocket still shows the old confirmation: pressing it does nothing.
    assert [r.message for r in await bot.press(bot.alice, menu_id, yes)] == [CLOSED]
    assert bot.store.get_agent(AGENT_ID).route_code == "M"


async def test_a_newer_menu_replaces_the_old_confirmation(make_bot):
    bot = await make_bot(agent_route="M")
    old_id, old_confirm = await _confirmation(bot)
    # The agent opens /settings again (a new message) and gets as far as the route list.
    (menu,) = await bot.say(bot.alice, "/settings")
    new_id = bot.client.message_id(menu)
    await bot.press(bot.alice, new_id, data_of(menu, "Select Route 🌐"))
    # The old confirmation lost its buttons and its data no longer works.
    replaced = [e for e in bot.client.edits() if e.id == old_id][-1]
    assert replaced.message == "This menu was replaced by a newer one."
    assert replaced.reply_markup is None
    for label in (YES, CANCEL):
        requests = await bot.press(bot.alice, old_id, data_of(old_confirm, label))
        assert [r.message for r in requests] == [CLOSED]
    assert bot.store.get_agent(AGENT_ID).route_code == "M"


async def test_direct_route_command_and_call_menu_replace_it_too(make_bot):
    bot = await make_bot(agent_route="M")
    old_id, old_confirm = await _confirmation(bot)
    await bot.say(bot.alice, "/route")  # sends a new route list
    requests = await bot.press(bot.alice, old_id, data_of(old_confirm, YES))
    answers = [r for r in requests if isinstance(r, functions.messages.SetBotCallbackAnswerRequest)]
    assert [a.message for a in answers] == [CLOSED]
    assert bot.store.get_agent(AGENT_ID).route_code == "M"
