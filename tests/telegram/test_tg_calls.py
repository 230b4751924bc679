"""/call over a real TelegramClient: the ONE status message and its edits, hang-up, refusals
(expired, bad numbers, limits, no route, groups), forged and foreign buttons, FloodWait and
coalescing. Trunks are a scripted driver registered at the trunk-driver hook (precise
control) or the simulated PBX."""

from __future__ import annotations

from corecall_testing.bot_under_test import AGENT_ID, AGENT_PHONE, TARGET
from corecall_testing.telegram_harness import buttons_of, data_of, labels_of
from telethon import errors
from telethon.tl import functions, types

from corecall.agents import AgentAdmin
from corecall.domain import CallState, EndReason
from corecall.errors import TelephonyError

HEADER = "📞 Call to +12125550123\nCaller ID: +12125550199 [D]\n"
CALLING = HEADER + "⏳ Calling your phone +12125550111…"
AGENT_RINGING = HEADER + "🔔 Your phone +12125550111 is ringing: answer it to continue."
ANSWERED = HEADER + "✅ You answered. Dialing +12125550123…"
PRESS_1 = HEADER + "📲 Answered: press 1 on your phone to connect"
NOT_CONFIRMED = HEADER + (
    "❌ Not connected: your phone +12125550111 was answered but nobody pressed 1 (voicemail?), "
    "so +12125550123 was not dialed. Answer it yourself and press 1 when it tells you whom "
    "you are calling."
)
TARGET_RINGING = HEADER + "🔔 Ringing +12125550123…"
CONNECTED = HEADER + "🟢 Connected: you're talking to +12125550123."
EXAMPLE = "Use a full number like +12125550123 or (212) 555-0123."


def hang_up_data(call_id: str) -> bytes:
    return f"1:hu:{AGENT_ID}:{call_id}".encode()


async def place(bot, text: str = f"/call {TARGET}"):
    """Send a /call; the status message request and the call id."""
    (status,) = await bot.say(bot.alice, text)
    return status, bot.board.last_call_id


async def test_status_message_is_edited_through_every_stage_of_a_call(make_bot):
    bot = await make_bot()
    status, call_id = await place(bot)
    assert status.message == CALLING
    assert buttons_of(status) == [[("📴 Hang up", hang_up_data(call_id))]]
    (dialed,) = bot.board.originated
    assert (dialed.agent_phone, dialed.target, dialed.caller_id, dialed.trunk.name) == (
        AGENT_PHONE, TARGET, "+12125550199", "dev",
    )  # fmt: skip
    message_id = bot.client.message_id(status)

    expected = [AGENT_RINGING, ANSWERED, PRESS_1, ANSWERED, TARGET_RINGING, CONNECTED]
    states = [
        CallState.AGENT_RINGING, CallState.AGENT_ANSWERED, CallState.AWAITING_CONFIRMATION,
        CallState.DIALING_TARGET, CallState.TARGET_RINGING, CallState.CONNECTED,
    ]  # fmt: skip
    for state, text in zip(states, expected, strict=True):
        bot.board.move(state)
        await bot.until(lambda t=text: [e.message for e in bot.client.edits()][-1:] == [t])
        await bot.conversation.flush_edits(timeout=2)
    bot.wall.advance(42)
    bot.board.move(CallState.ENDED, EndReason.COMPLETED)
    await bot.conversation.wait_idle(timeout=3)

    edits = bot.client.edits()
    assert [e.message for e in edits] == [
        AGENT_RINGING,
        ANSWERED,
        PRESS_1,
        ANSWERED,
        TARGET_RINGING,
        CONNECTED,
        HEADER + "☎️ Call ended. Duration 0:42.",
    ]
    assert {e.id for e in edits} == {message_id}
    assert all(buttons_of(e) == [[("📴 Hang up", hang_up_data(call_id))]] for e in edits[:-1])
    # no hang-up button once the call is over; the customer was on the line, so the agent
    # may put the number on the do-not-call list (tests/telegram/test_tg_dnc.py)
    assert buttons_of(edits[-1]) == [
        [("🚫 Do not call again", f"1:dn:{AGENT_ID}:{call_id}".encode())]
    ]
    assert len(bot.client.sent()) == 1  # ONE status message
    record = bot.store.get_call(call_id)
    assert (record.state, record.reason, record.talk_seconds) == (
        CallState.ENDED, EndReason.COMPLETED, 42.0,
    )  # fmt: skip


async def test_hang_up_button_ends_the_call(make_bot):
    bot = await make_bot()
    status, call_id = await place(bot)
    bot.board.move(CallState.AGENT_RINGING)
    await bot.until(lambda: len(bot.client.edits()) == 1)

    requests = await bot.press(bot.alice, bot.client.message_id(status), hang_up_data(call_id))
    await bot.conversation.wait_idle(timeout=3)

    (answer,) = [
        r for r in requests if isinstance(r, functions.messages.SetBotCallbackAnswerRequest)
    ]
    assert answer.message == "Hanging up…"
    assert bot.board.hangups == [call_id]
    final = bot.client.edits()[-1]
    assert final.message == HEADER + "📴 You hung up before the call connected."
    assert final.reply_markup is None
    assert bot.store.get_call(call_id).reason is EndReason.CANCELLED

    # Pressing it again: the call is over, nothing is sent to the PBX.
    requests = await bot.press(bot.alice, bot.client.message_id(status), hang_up_data(call_id))
    assert requests[-1].message == "This call has already ended."
    assert bot.board.hangups == [call_id]


async def test_a_button_pressed_by_someone_else_does_nothing(make_bot):
    bot = await make_bot()
    status, call_id = await place(bot)
    message_id = bot.client.message_id(status)

    # Alice's own button, pressed by a stranger.
    requests = await bot.press(bot.stranger, message_id, hang_up_data(call_id))
    assert [type(r).__name__ for r in requests] == ["SetBotCallbackAnswerRequest"]
    assert requests[0].message == "This button isn't for you."
    # Forged: the stranger's own id with Alice's call id.
    requests = await bot.press(bot.stranger, message_id, f"1:hu:777:{call_id}".encode())
    assert requests[0].message == "This button isn't for you."
    # An admin pressing Alice's route buttons.
    requests = await bot.press(bot.admin, 5, b"1:ry:501:0123abcd")
    assert requests[0].message == "This button isn't for you."

    assert bot.board.hangups == []
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    assert bot.client.edits() == []
    assert bot.calls.live_calls(AGENT_ID)[0].id == call_id


async def test_forged_button_data_does_nothing(make_bot):
    bot = await make_bot()
    forged = [
        b"1:ry:501:M:extra",  # trailing junk (a prefix match would accept it)
        b"x1:ry:501:M",
        b"2:ry:501:M",  # unknown version
        b"1:ry:501:m",  # lower-case code
        b"1:ry:0501:M",  # id with a leading zero
        b"1:zz:501",  # unknown action
        b"1:hu:501:" + b"g" * 32,  # not a call id
        b"1:ry:501:M" + b" " * 60,  # longer than Telegram allows
        b"\xff\xfe",
        b"",
    ]
    for data in forged:
        requests = await bot.press(bot.alice, 5, data)
        assert [r.message for r in requests] == [
            "This button doesn't work any more. Send the command again."
        ], data
    assert bot.store.get_agent(AGENT_ID).route_code == "D"
    assert bot.client.edits() == [] and bot.board.hangups == []


async def test_call_without_route_asks_to_choose_one_then_calls(make_bot):
    bot = await make_bot(agent_route=None)
    (request,) = await bot.say(bot.alice, f"/call {TARGET}")
    assert request.message == (
        "You haven't chosen a route yet, so I can't place calls for you. "
        "Choose one below, then send your /call again."
    )
    assert labels_of(request) == ["[Main Route]  🌍", "[Development Route]  🛠️"]
    assert bot.board.originated == [] and bot.store.recent_calls(AGENT_ID) == []

    message_id = bot.client.message_id(request)
    await bot.press(bot.alice, message_id, data_of(request, "[Main Route]  🌍"))
    assert bot.client.edits()[-1].message == (
        "Are you sure you want to switch to the Main route?\n"
        "All outbound calls will now go through this route."
    )
    await bot.press(bot.alice, message_id, data_of(bot.client.edits()[-1], "✅ Yes, Switch Route"))
    assert bot.client.edits()[-1].message == (
        "✅ Your route has been successfully changed to [Main]!"
    )
    status, _call_id = await place(bot)
    assert status.message.split("\n")[1] == "Caller ID: +12125550100 [M]"
    assert bot.board.originated[0].trunk.name == "main"


async def test_a_call_older_than_the_max_age_is_expired_and_not_dialed(make_bot):
    bot = await make_bot()
    text = (await bot.say(bot.alice, f"/call {TARGET}", age=60))[0].message
    assert text == (
        "⌛ Expired: this /call reached me 60 seconds after you sent it (I was offline), so I "
        "did not dial it. Send /call again if you still want the call."
    )
    assert bot.board.originated == [] and bot.store.recent_calls(AGENT_ID) == []
    # Within the age it is dialed.
    await bot.say(bot.alice, f"/call {TARGET}", age=20)
    assert len(bot.board.originated) == 1


async def test_the_max_age_is_configurable(make_bot):
    bot = await make_bot(bot={"max_command_age": 5})
    (request,) = await bot.say(bot.alice, f"/call {TARGET}", age=12)
    assert request.message.startswith("⌛ Expired: this /call reached me 12 seconds")
    assert bot.board.originated == []


async def test_bad_numbers_get_their_specific_refusal_and_nothing_is_dialed(make_bot):
    bot = await make_bot()
    cases = {
        "911": "911 is an emergency or crisis number. corecall never dials emergency services: "
        "in an emergency, call them directly from a phone.",
        "+1 900 200 0000": "+19002000000 is a premium-rate number; corecall never dials "
        "premium-rate numbers.",
        "call-me": "That isn't a phone number: it has no digits.",
        # The whole argument is checked: a prefix match would have dialed 123.
        "123abc": 'Phone numbers can\'t contain letters (found "a"); type the digits (for a '
        "number like 1-800-FLOWERS, use the digits from a phone keypad).",
        "+12125550123 ext 5": "Extensions, pauses and star codes can't be dialed: send just the "
        "phone number, then key in the extension yourself once the call connects.",
    }
    about_the_number = ("911", "+1 900 200 0000")  # no "Use a full number like" after these
    for number, message in cases.items():
        tail = "" if number in about_the_number else f" {EXAMPLE}"
        assert await bot.reply(bot.alice, f"/call {number}") == (
            f"⛔ Not dialed. {message}{tail}"
        ), number
    assert await bot.reply(bot.alice, "/call") == (
        "Send the number after /call, e.g. /call +12125550123 or /call (212) 555-0123."
    )
    assert bot.board.originated == [] and bot.store.recent_calls(AGENT_ID) == []


async def test_us_formats_are_dialed_as_e164(make_bot):
    bot = await make_bot(limits={"live_calls_per_agent": 5})
    for text in ("(212) 555-0123", "212-555-0123", "1 212 555 0123", "+12125550123"):
        await bot.say(bot.alice, f"/call {text}")
    assert [r.target for r in bot.board.originated] == [TARGET] * 4


async def test_one_live_call_per_agent(make_bot):
    bot = await make_bot()
    await place(bot)
    assert await bot.reply(bot.alice, "/call +12125550124") == (
        "⛔ Not dialed. You already have 1 live call (limit 1). Hang up or wait for it to end, "
        "then try again."
    )
    assert len(bot.board.originated) == 1


async def test_calls_per_minute_cap(make_bot):
    bot = await make_bot(limits={"calls_per_minute": 2, "live_calls_per_agent": 5})
    await place(bot)
    await place(bot)
    assert await bot.reply(bot.alice, "/call +12125550124") == (
        "⛔ Not dialed. You placed 2 calls in the last minute (limit 2). Wait a minute, then try "
        "again."
    )
    assert len(bot.board.originated) == 2


async def test_strangers_cannot_call(make_bot):
    bot = await make_bot()
    assert await bot.reply(bot.stranger, f"/call {TARGET}") == (
        "⛔ Not dialed. You are not authorized to place calls. Ask your admin to authorize "
        "Telegram id 777."
    )
    assert bot.board.originated == []


async def test_group_chats_are_refused_and_nothing_is_dialed(make_bot):
    bot = await make_bot()
    await bot.client.feed(bot.client.group_text(bot.alice, 4242, f"/call {TARGET}"))
    await bot.client.feed(bot.client.group_text(bot.alice, 4242, "hello all"))
    (request,) = bot.client.requests
    assert request.peer == types.InputPeerChat(4242)
    assert request.message == (
        "I only work in a private chat. Open a private chat with me and send /start there."
    )
    requests = await bot.press(bot.alice, 9, b"1:ry:501:M", peer=types.PeerChat(4242))
    assert requests[0].message == "This only works in a private chat with me."
    assert bot.board.originated == []
    assert bot.store.get_agent(AGENT_ID).route_code == "D"


async def test_an_answered_phone_that_never_presses_1_is_not_connected(make_bot):
    bot = await make_bot()
    _status, call_id = await place(bot)
    (dialed,) = bot.board.originated
    assert (dialed.confirm, dialed.agent_caller_id) == ("key", "+12125550199")
    for state in (CallState.AGENT_RINGING, CallState.AGENT_ANSWERED):
        bot.board.move(state)
    bot.board.move(CallState.AWAITING_CONFIRMATION)
    await bot.until(lambda: [e.message for e in bot.client.edits()][-1:] == [PRESS_1])
    await bot.conversation.flush_edits(timeout=2)
    bot.board.move(CallState.ENDED, EndReason.AGENT_NOT_CONFIRMED)
    await bot.conversation.wait_idle(timeout=3)
    final = bot.client.edits()[-1]
    assert final.message == NOT_CONFIRMED and final.reply_markup is None
    assert bot.store.get_call(call_id).reason is EndReason.AGENT_NOT_CONFIRMED
    (history,) = await bot.say(bot.alice, "/history")
    assert "+12125550123 · [D] · ❌ nobody pressed 1" in history.message


async def test_simulated_voicemail_agent_is_told_nobody_pressed_1(make_bot):
    bot = await make_bot(driver="simulated")
    AgentAdmin(bot.app).set_phone(AGENT_ID, "+12125550777", actor="test")  # a voicemail box
    await bot.say(bot.alice, f"/call {TARGET}")
    await bot.conversation.wait_idle(timeout=5)
    messages = [e.message for e in bot.client.edits()]
    assert any(m.endswith("📲 Answered: press 1 on your phone to connect") for m in messages)
    assert messages[-1].endswith(
        "❌ Not connected: your phone +12125550777 was answered but nobody pressed 1 "
        "(voicemail?), so +12125550123 was not dialed. Answer it yourself and press 1 when it "
        "tells you whom you are calling."
    )
    assert [c.reason for c in bot.store.recent_calls(AGENT_ID)] == [EndReason.AGENT_NOT_CONFIRMED]


async def test_trunk_failure_is_reported_without_failover(make_bot):
    bot = await make_bot()
    bot.board.originate_error = TelephonyError("AMI connection lost")
    (status,) = await bot.say(bot.alice, f"/call {TARGET}")
    await bot.conversation.wait_idle(timeout=3)
    assert status.message == HEADER + (
        "❌ Not connected: the Development route's phone line is not working right now. "
        "Tell your admin."
    )
    assert status.reply_markup is None
    assert bot.client.edits() == []


async def test_simulated_pbx_end_to_end(make_bot):
    bot = await make_bot(driver="simulated")
    await bot.say(bot.alice, f"/call {TARGET}")
    await bot.conversation.wait_idle(timeout=5)
    final = bot.client.edits()[-1]
    assert final.message == HEADER + "☎️ Call ended. Duration 0:00."
    # The simulated carrier's rules: a number ending 0486 is busy.
    bot.wall.advance(5)
    (status,) = await bot.say(bot.alice, "/call +12125550486")
    await bot.conversation.wait_idle(timeout=5)
    assert bot.client.edits()[-1].message == (
        "📞 Call to +12125550486\nCaller ID: +12125550199 [D]\n"
        "❌ Not connected: +12125550486 was busy. Try again later."
    )
    assert bot.client.edits()[-1].id == bot.client.message_id(status)
    reasons = [c.reason for c in bot.store.recent_calls(AGENT_ID)]
    assert reasons == [EndReason.TARGET_BUSY, EndReason.COMPLETED]


# ---------------------------------------------------------------------------- rate of edits


async def test_edits_are_coalesced_to_one_per_second_and_the_final_state_is_kept(make_bot):
    bot = await make_bot(edit_interval=1.0, manual_time=True)
    status, _call_id = await place(bot)
    message_id = bot.client.message_id(status)
    edit_times: list[float] = []
    default = bot.client.default_response

    def timed(request):
        edit_times.append(bot.time.now)
        return default(request)

    bot.client.responders[functions.messages.EditMessageRequest] = timed
    pending = bot.conversation.edits.pending_content

    for state in (CallState.AGENT_RINGING, CallState.AGENT_ANSWERED, CallState.TARGET_RINGING):
        bot.board.move(state)
    await bot.until(lambda: (pending(AGENT_ID, message_id) or ("",))[0] == TARGET_RINGING)
    assert bot.client.edits() == []  # less than a second after the status message was sent
    await bot.time.advance(1.0)
    await bot.until(lambda: len(bot.client.edits()) == 1)

    bot.board.move(CallState.CONNECTED)
    bot.board.move(CallState.ENDED, EndReason.COMPLETED)
    await bot.until(lambda: (pending(AGENT_ID, message_id) or ("",))[0].endswith("0:00."))
    await bot.time.advance(0.5)
    assert len(bot.client.edits()) == 1
    await bot.time.advance(0.5)
    await bot.conversation.wait_idle(timeout=3)

    assert [e.message for e in bot.client.edits()] == [
        TARGET_RINGING,
        HEADER + "☎️ Call ended. Duration 0:00.",
    ]  # 5 transitions, 2 edits, a second apart, ending with the final state
    assert edit_times == [1.0, 2.0]


async def test_a_short_ring_of_the_agents_phone_costs_no_edit_and_a_long_one_is_shown(make_bot):
    """Issue 11: the agent's own phone usually rings for a moment (they pick it up), so its
    "ringing" status settles for two edit intervals before it is sent; the next status
    ("press 1") replaces it unsent. A normal call then takes 6 Telegram requests, not 7. A
    ring that lasts longer is shown, and every later state still is."""
    bot = await make_bot(edit_interval=1.0, manual_time=True)
    status, _call_id = await place(bot)
    message_id = bot.client.message_id(status)
    edit_times: list[float] = []
    default = bot.client.default_response

    def timed(request):
        edit_times.append(bot.time.now)
        return default(request)

    bot.client.responders[functions.messages.EditMessageRequest] = timed
    pending = bot.conversation.edits.pending_content
    bot.board.move(CallState.AGENT_RINGING)
    await bot.until(lambda: pending(AGENT_ID, message_id) is not None)
    await bot.time.advance(1.5)  # rate allows an edit after 1 s, but the ring is settling
    assert bot.client.edits() == []
    bot.board.move(CallState.AWAITING_CONFIRMATION)  # picked up at 1.5 s
    await bot.until(lambda: len(bot.client.edits()) == 1)
    for state, text in ((CallState.DIALING_TARGET, ANSWERED),
                        (CallState.TARGET_RINGING, TARGET_RINGING),
                        (CallState.CONNECTED, CONNECTED)):  # fmt: skip
        await bot.time.advance(1.0)
        bot.board.move(state)
        await bot.until(lambda t=text: [e.message for e in bot.client.edits()][-1:] == [t])
    await bot.time.advance(1.0)
    bot.board.move(CallState.ENDED, EndReason.COMPLETED)
    await bot.until(lambda: bot.client.edits()[-1].message.endswith("Duration 0:00."))
    assert [e.message for e in bot.client.edits()] == [
        PRESS_1, ANSWERED, TARGET_RINGING, CONNECTED, HEADER + "☎️ Call ended. Duration 0:00.",
    ]  # fmt: skip
    assert len(bot.client.sent()) + len(bot.client.edits()) == 6
    assert edit_times == [1.5, 2.5, 3.5, 4.5, 5.5]

    # A phone that keeps ringing: shown once it has rung for the settle time, and the
    # outcome after it.
    await bot.conversation.wait_idle(timeout=3)
    await bot.time.advance(1.0)
    status, _call_id = await place(bot)
    message_id = bot.client.message_id(status)
    before = len(bot.client.edits())
    bot.board.move(CallState.AGENT_RINGING)
    await bot.until(lambda: pending(AGENT_ID, message_id) is not None)
    await bot.time.advance(1.9)
    assert len(bot.client.edits()) == before
    await bot.time.advance(0.1)
    await bot.until(lambda: len(bot.client.edits()) == before + 1)
    assert bot.client.edits()[-1].message == AGENT_RINGING
    bot.board.move(CallState.ENDED, EndReason.AGENT_NO_ANSWER)
    await bot.time.advance(1.0)
    await bot.conversation.wait_idle(timeout=3)
    assert "you didn't answer your phone" in bot.client.edits()[-1].message


async def test_flood_wait_on_an_edit_is_honoured_and_the_final_state_still_delivered(make_bot):
    # The ringing status is the first edit here: shown at once, not settled (see below).
    bot = await make_bot(edit_interval=1.0, ringing_settle=0.0, manual_time=True)
    status, call_id = await place(bot)
    message_id = bot.client.message_id(status)
    default = bot.client.default_response
    flood = []

    def flood_once(request):
        if not flood:
            flood.append(request)
            raise errors.FloodWaitError(request, capture=3)
        return default(request)

    bot.client.responders[functions.messages.EditMessageRequest] = flood_once
    pending = bot.conversation.edits.pending_content

    bot.board.move(CallState.AGENT_RINGING)
    await bot.until(lambda: pending(AGENT_ID, message_id) is not None)
    await bot.time.advance(1.0)  # the edit goes out and Telegram answers FLOOD_WAIT_3
    await bot.until(lambda: bot.time.slept[-1:] == [3])

    for state in (CallState.AGENT_ANSWERED, CallState.TARGET_RINGING, CallState.CONNECTED):
        bot.board.move(state)
    bot.board.move(CallState.ENDED, EndReason.TARGET_BUSY)
    await bot.until(lambda: (pending(AGENT_ID, message_id) or ("",))[0].endswith("later."))
    await bot.time.advance(2.9)
    assert len(bot.client.edits()) == 1  # still waiting as Telegram asked
    await bot.time.advance(0.1)
    await bot.conversation.wait_idle(timeout=3)

    edits = bot.client.edits()
    assert [e.message for e in edits] == [
        AGENT_RINGING,  # answered with FLOOD_WAIT_3
        HEADER + "❌ Not connected: +12125550123 was busy. Try again later.",
    ]  # after the wait only the newest text is sent: the final state
    assert edits[-1].id == message_id
    assert [label for row in buttons_of(edits[-1]) for label, _ in row] == ["🚫 Do not call again"]
    assert bot.store.get_call(call_id).reason is EndReason.TARGET_BUSY


async def test_a_flood_wait_storm_never_drops_the_status_message(make_bot):
    """Found by bench/soak.py: the status message was given up after 5 FloodWaits in a row,
    so the agent never learned the outcome. It now waits out up to SEND_PATIENCE seconds."""
    bot = await make_bot()
    default = bot.client.default_response
    refused = []

    def storm(request):
        if len(refused) < 12:
            refused.append(request)
            raise errors.FloodWaitError(request, capture=0)
        return default(request)

    bot.client.responders[functions.messages.SendMessageRequest] = storm
    await bot.say(bot.alice, f"/call {TARGET}")
    assert len(refused) == 12
    (status,) = [r for r in bot.client.sent() if r not in refused]
    assert status.message.startswith(f"📞 Call to {TARGET}")
    bot.board.move(CallState.ENDED, EndReason.TARGET_BUSY)
    await bot.conversation.wait_idle(timeout=3)
    assert bot.client.edits()[-1].message.endswith("was busy. Try again later.")


async def test_an_unavailable_store_is_said_plainly_and_nothing_is_dialed(make_bot, monkeypatch):
    """Found by bench/soak.py (PostgreSQL restarting): agents read "Sorry, something went
    wrong" as if corecall had a bug. They are now told the database isn't answering."""
    bot = await make_bot()
    from corecall.errors import StoreError

    def down(*_args, **_kwargs):
        raise StoreError("PostgreSQL store 127.0.0.1:5432/corecall: server closed the connection")

    # Both ways place() reads the agent: on the store thread, and on the loop (SQLite).
    monkeypatch.setattr(bot.store, "agent_and_recent_calls", down)
    monkeypatch.setattr(bot.store, "agent_and_recent_calls_nowait", down)
    assert await bot.reply(bot.alice, f"/call {TARGET}") == (
        "⚠️ My database isn't answering right now, so nothing was done (no call was placed). "
        "Try again in a minute; if it keeps happening, tell your admin."
    )
    assert bot.board.originated == []
