"""/live over a real TelegramClient (offline harness): one message, edited in place within
the edit budget, showing live calls and today's totals; it stops on its button or after its
time, and only super admins may open it."""

from __future__ import annotations

import itertools

from corecall_testing.bot_under_test import ADMIN_ID, AGENT_ID, TARGET
from corecall_testing.telegram_harness import buttons_of
from telethon.tl import functions

from corecall.conversation import callbacks as cb
from corecall.conversation.live_view import DURATION_SECONDS, REFRESH_SECONDS
from corecall.domain import CallState


async def open_live(bot):
    [sent] = [
        r for r in await bot.say(bot.admin, "/live") if type(r).__name__ == "SendMessageRequest"
    ]
    return sent, bot.client.message_id(sent)


def answer_of(requests) -> str:
    [answer] = [
        r for r in requests if isinstance(r, functions.messages.SetBotCallbackAnswerRequest)
    ]
    return answer.message


def edits_of(bot, message_id):
    return [e for e in bot.client.edits() if e.id == message_id]


async def test_live_view_follows_calls_and_stops_on_its_button(make_bot):
    bot = await make_bot(edit_interval=1.0, manual_time=True)
    sent, message_id = await open_live(bot)
    assert sent.message.startswith("📡 Live calls at ")
    assert "No call is live." in sent.message and "Today (UTC): 0 calls" in sent.message
    [[(label, data)]] = buttons_of(sent)
    assert label == "⏹ Stop" and cb.parse(data) == cb.CallbackData(cb.STOP_LIVE, ADMIN_ID)

    await bot.say(bot.alice, f"/call {TARGET}")
    call_id = bot.board.last_call_id
    bot.board.move(CallState.AGENT_RINGING)
    await bot.until(
        lambda: bot.store.get_call(call_id).state is CallState.AGENT_RINGING,
        what="the ringing state on record (the view reads the store)",
    )
    await bot.time.advance(REFRESH_SECONDS)
    await bot.until(lambda: edits_of(bot, message_id), what="the live view's first refresh")
    text = edits_of(bot, message_id)[-1].message
    assert "Live calls at" in text and ": 1" in text.splitlines()[0]
    assert "• Alice [D] agent's phone ringing, 0:0" in text
    assert "live: 1" in text

    # the call ends: the next refresh shows it in today's totals
    bot.board.move(CallState.ENDED)
    await bot.calls.wait_final(call_id, timeout=2)
    before = len(edits_of(bot, message_id))
    await bot.time.advance(REFRESH_SECONDS)
    await bot.until(lambda: len(edits_of(bot, message_id)) > before, what="a refresh")
    text = edits_of(bot, message_id)[-1].message
    assert "No call is live." in text and "Today (UTC): 1 calls" in text

    # Stop: the message says so, loses its button, and is never edited again
    requests = await bot.press(bot.admin, message_id, data)
    [answer] = [
        r for r in requests if isinstance(r, functions.messages.SetBotCallbackAnswerRequest)
    ]
    assert answer.message == "Live view stopped."
    await bot.time.advance(1.0)  # the chat's edit budget: one per second
    await bot.conversation.flush_edits(timeout=2)
    final = edits_of(bot, message_id)[-1]
    assert final.message.endswith("⏹ Stopped. /live to start again.")
    assert final.reply_markup is None
    count = len(edits_of(bot, message_id))
    for _ in range(5):
        await bot.time.advance(REFRESH_SECONDS)
    await bot.conversation.flush_edits(timeout=2)
    assert len(edits_of(bot, message_id)) == count
    # pressing it again only says it has stopped
    requests = await bot.press(bot.admin, message_id, data)
    await bot.time.advance(1.0)
    assert (
        "already stopped"
        in next(
            r for r in requests if isinstance(r, functions.messages.SetBotCallbackAnswerRequest)
        ).message
    )


async def test_live_view_stops_by_itself_within_the_edit_budget(make_bot):
    bot = await make_bot(edit_interval=1.0, manual_time=True)
    _sent, message_id = await open_live(bot)
    edit_times = []
    default = bot.client.default_response

    def timed(request):
        if request.id == message_id:  # the live view's edits (not Alice's call status)
            edit_times.append(bot.time.now)
        return default(request)

    bot.client.responders[functions.messages.EditMessageRequest] = timed
    await bot.say(bot.alice, f"/call {TARGET}")  # live all along: the text changes each time
    bot.board.move(CallState.CONNECTED)
    elapsed = 0.0
    while bot.conversation.live_views.is_open(ADMIN_ID):
        assert elapsed <= DURATION_SECONDS + 3 * REFRESH_SECONDS, "the view never stopped"
        bot.wall.advance(REFRESH_SECONDS)  # the call's duration grows: every refresh differs
        await bot.time.advance(REFRESH_SECONDS)
        # the view waits for its next refresh, or it has just stopped (its last refresh)
        await bot.until(  # real time: a refresh reads the store on its thread (slow under load)
            lambda: bot.time.sleeping or not bot.conversation.live_views.is_open(ADMIN_ID),
            timeout=15.0,
            what="the view to wait again or stop",
        )
        elapsed += REFRESH_SECONDS
    assert elapsed >= DURATION_SECONDS
    await bot.time.advance(1.0)
    await bot.conversation.flush_edits(timeout=2)
    final = edits_of(bot, message_id)[-1]
    assert "Stopped updating after 10 min" in final.message and final.reply_markup is None
    # never more than one edit per second in the chat, about one per refresh, then none
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(edit_times))
    assert len(edits_of(bot, message_id)) <= DURATION_SECONDS / REFRESH_SECONDS + 2
    assert not bot.conversation.live_views.is_open(ADMIN_ID)


async def test_a_new_live_view_replaces_the_old_one(make_bot):
    bot = await make_bot()
    _first, first_id = await open_live(bot)
    _second, second_id = await open_live(bot)
    await bot.conversation.flush_edits(timeout=2)
    assert edits_of(bot, first_id)[-1].message.endswith("⏹ Replaced by a newer /live.")
    assert bot.conversation.live_views.is_open(ADMIN_ID) and second_id != first_id


async def test_only_super_admins_get_a_live_view(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.alice, "/live") == (
        "/live is for super admins only. Send /help to see what you can do."
    )
    # a forged Stop button from an agent does nothing
    forged = cb.make(cb.STOP_LIVE, AGENT_ID)
    requests = await bot.press(bot.alice, 1, forged)
    [answer] = [
        r for r in requests if isinstance(r, functions.messages.SetBotCallbackAnswerRequest)
    ]
    assert answer.message == "Only super admins can do this."
    assert "/live — live calls" in await bot.reply(bot.admin, "/help")
