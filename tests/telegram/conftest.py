"""Fixtures for the offline Telegram tests (see corecall_testing.bot_under_test and
corecall_testing.telegram_harness)."""

from __future__ import annotations

import pytest
from corecall_testing.bot_under_test import Bot, build_bot


@pytest.fixture
async def make_bot(tmp_path):
    """``await make_bot(driver=..., edit_interval=..., manual_time=..., agent_route=...,
    disabled_plugins=..., **config_sections)`` -> :class:`Bot`; torn down after the test."""
    made: list[Bot] = []

    async def make(**options) -> Bot:
        bot = await build_bot(tmp_path, **options)
        made.append(bot)
        return bot

    yield make
    for bot in made:
        try:
            bot.client.raise_errors()  # nothing went wrong in the background either
        finally:
            await bot.conversation.shutdown(timeout=1, announce=False)
            await bot.calls.stop(drain_timeout=2)
            await bot.client.aclose()
            bot.app.close()
