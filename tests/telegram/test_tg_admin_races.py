"""Admin changes racing an agent's /call (issue #7, finding 2).

Once the admin is told a change is done ("…is revoked", "…will now be rung on …", a new
caller ID, a new route), no call that was not yet handed to the PBX is dialed under the old
state. Each round dispatches the admin's command and the agent's /call at the same moment
(with a varying number of event-loop turns between them, so every interleaving of the store
round trips is tried), through the real conversation, the real SQLite store and the real
CallManager; the scripted trunk driver and the Telegram harness write one shared timeline.
"""

from __future__ import annotations

import asyncio

from corecall_testing.bot_under_test import ADMIN_ID, AGENT_ID, AGENT_PHONE, TARGET
from telethon.tl import functions

from corecall.conversation import UserRef
from corecall.domain import CallState, EndReason

ROUNDS = 40
NEW_PHONE = "+12125550155"
LIMITS = {"calls_per_minute": 1000}


def _timeline(bot) -> list[tuple[str, object]]:
    """Every Originate and every message the bot sends, in the order they happen."""
    timeline: list[tuple[str, object]] = []

    def on_originate(request) -> None:
        timeline.append(("originate", request))

    bot.board.on_originate = on_originate

    def on_send(request):
        timeline.append(("send", request.message))
        return bot.client.default_response(request)

    bot.client.responders[functions.messages.SendMessageRequest] = on_send
    return timeline


async def _race(bot, admin_text: str, turns: int, admin_first: bool) -> None:
    admin = UserRef(ADMIN_ID, ADMIN_ID)
    alice = UserRef(AGENT_ID, AGENT_ID)

    async def after(turns_: int, coro):
        for _ in range(turns_):
            await asyncio.sleep(0)
        await coro

    admin_delay, call_delay = (0, turns) if admin_first else (turns, 0)
    await asyncio.gather(
        after(admin_delay, bot.conversation.handle_text(admin, admin_text)),
        after(call_delay, bot.conversation.handle_text(alice, f"/call {TARGET}")),
    )


async def _reset(bot, call_ids: set[str]) -> None:
    for call_id in list(call_ids):
        bot.board.move(CallState.ENDED, EndReason.COMPLETED, call_id=call_id)
    await bot.until(lambda: not bot.calls.live_calls(), what="calls ended")
    bot.app.store.set_authorized(AGENT_ID, True, actor="test")
    bot.app.store.set_phone(AGENT_ID, AGENT_PHONE, actor="test")


def _rounds():
    for n in range(ROUNDS):
        yield n % 8, n % 2 == 0


async def test_no_call_is_dialed_after_the_revoke_is_acknowledged(make_bot):
    bot = await make_bot(limits=LIMITS)
    timeline = _timeline(bot)
    dialed_before = 0
    for turns, admin_first in _rounds():
        start = len(timeline)
        await _race(bot, f"/revoke {AGENT_ID}", turns, admin_first)
        events = timeline[start:]
        ack = next(
            i for i, (kind, what) in enumerate(events)
            if kind == "send" and "is revoked" in what
        )  # fmt: skip
        late = [what for kind, what in events[ack:] if kind == "originate"]
        assert late == [], f"Originate after 'revoked' (turns={turns}, admin_first={admin_first})"
        dialed = {what.call_id for kind, what in events if kind == "originate"}
        dialed_before += len(dialed)
        await _reset(bot, dialed)
    # Both orders happened: some calls got in before the revoke, some were refused.
    assert 0 < dialed_before < ROUNDS


async def test_no_call_rings_the_old_phone_after_the_change_is_acknowledged(make_bot):
    bot = await make_bot(limits=LIMITS)
    timeline = _timeline(bot)
    for turns, admin_first in _rounds():
        start = len(timeline)
        await _race(bot, f"/setphone {AGENT_ID} {NEW_PHONE}", turns, admin_first)
        events = timeline[start:]
        ack = next(
            i for i, (kind, what) in enumerate(events)
            if kind == "send" and "will now be rung on" in what
        )  # fmt: skip
        late = [what.agent_phone for kind, what in events[ack:] if kind == "originate"]
        assert all(phone == NEW_PHONE for phone in late), (turns, admin_first, late)
        await _reset(bot, {what.call_id for kind, what in events if kind == "originate"})
