"""The per-chat edit scheduler: one edit per interval per chat, newest text wins, the final
text is always delivered, FloodWait is honoured. Time is manual, so nothing waits."""

from __future__ import annotations

import asyncio

import pytest
from corecall_testing.fakes import ManualTime, RecordingPort

from corecall.conversation import EditScheduler, MessageGone, RateLimited

NO = ()


@pytest.fixture
def clock():
    return ManualTime()


@pytest.fixture
def port():
    return RecordingPort()


@pytest.fixture
def edits(port, clock):
    scheduler = EditScheduler(port, min_interval=1.0, clock=clock.monotonic, sleep=clock.sleep)
    yield scheduler


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


async def test_states_arriving_within_a_second_are_coalesced_to_the_newest(edits, port, clock):
    edits.edit(1, 10, "calling", NO)
    await settle()
    assert port.edits() == ["calling"]  # nothing was sent or edited before: at once
    for text in ("ringing", "answered", "connected"):
        edits.edit(1, 10, text, NO)
    await settle()
    assert port.edits() == ["calling"]
    await clock.advance(0.99)
    assert port.edits() == ["calling"]
    await clock.advance(0.01)
    assert port.edits() == ["calling", "connected"]
    edits.edit(1, 10, "ended", NO)  # the final text, right after an edit
    await clock.advance(1.0)
    assert await edits.flush(timeout=1)
    assert port.edits() == ["calling", "connected", "ended"]


async def test_a_sent_message_counts_towards_the_chats_rate(edits, port, clock):
    edits.note_sent(1, 10, "calling", NO)
    edits.edit(1, 10, "ringing", NO)
    await settle()
    assert port.edits() == []
    await clock.advance(1.0)
    assert port.edits() == ["ringing"]


async def test_chats_are_independent(edits, port, clock):
    edits.note_sent(1, 10, "a", NO)
    edits.edit(1, 10, "a2", NO)
    edits.edit(2, 20, "b2", NO)  # another chat: not slowed down by chat 1
    await settle()
    assert [(e[1], e[3]) for e in port.log if e[0] == "edit"] == [(2, "b2")]


async def test_identical_content_is_not_sent_again(edits, port, clock):
    edits.note_sent(1, 10, "calling", NO)
    edits.edit(1, 10, "calling", NO)
    await settle()
    assert edits.pending() == 0 and port.edits() == []


async def test_flood_wait_is_slept_then_only_the_newest_text_is_sent(edits, port, clock):
    port.fail_next_edit.append(RateLimited(7))
    edits.edit(1, 10, "ringing", NO)
    await settle()
    assert clock.slept == [7]
    edits.edit(1, 10, "connected", NO)
    edits.edit(1, 10, "ended", NO)
    await clock.advance(6.9)
    assert port.edits() == []
    await clock.advance(0.1)
    assert await edits.flush(timeout=1)
    assert port.edits() == ["ended"]


async def test_after_a_flood_wait_the_same_text_is_retried(edits, port, clock):
    port.fail_next_edit.append(RateLimited(2))
    edits.edit(1, 10, "ended", NO)
    await settle()
    await clock.advance(2)
    assert await edits.flush(timeout=1)
    assert port.edits() == ["ended"]


async def test_a_message_that_is_gone_is_dropped(edits, port, clock, caplog):
    port.fail_next_edit.append(MessageGone("deleted"))
    edits.edit(1, 10, "ringing", NO)
    assert await edits.flush(timeout=1)
    assert port.edits() == [] and edits.pending() == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_an_unexpected_failure_is_retried(edits, port, clock):
    port.fail_next_edit.append(ConnectionError("network hiccup"))
    edits.edit(1, 10, "ended", NO)
    await settle()
    assert port.edits() == []
    await clock.advance(1.0)
    assert await edits.flush(timeout=1)
    assert port.edits() == ["ended"]
