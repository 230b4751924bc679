#!/usr/bin/env python3
"""Telegram requests per call, counted through the offline harness (issue 11).

The bot runs as in production: a real ``telethon.TelegramClient`` (its MTProto sender
replaced by the offline harness, which records every request and answers like Telegram),
the real Conversation with its real edit coalescing (at most one edit per second per chat),
a real SQLite store and the simulated PBX with its default, phone-like timings (the agent's
phone rings 1 s and answers after 1.5 s, the target likewise, they talk 5 s). An agent
types ``/call``; every request the bot makes until the call's final state is shown is
counted by kind (sendMessage, editMessageText, answerCallbackQuery, other).

Scenarios: a normal call (the target hangs up), a failed call (the target is busy) and a
call the agent ends with the hang-up button. Run::

    .venv/bin/python bench/telegram_bench.py --write-docs
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import attrs
from corecall_testing.bench_docs import load_average, write_section
from corecall_testing.bot_under_test import TARGET, build_bot
from corecall_testing.telegram_harness import buttons_of

from corecall.telephony.simulated import SimulatedTrunkOptions

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
DOCS_SECTION = "telegram-bench"  # its markers in docs/benchmarks.md
BUSY_TARGET = "+12125550486"  # the simulated PBX answers busy (last digits 0486)
TARGET_REQUESTS = 6  # issue 11: at most 6 Telegram requests for a normal call

KINDS = {
    "SendMessageRequest": "sendMessage",
    "EditMessageRequest": "editMessageText",
    "SetBotCallbackAnswerRequest": "answerCallbackQuery",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def one_call(bot, target: str, *, hang_up_after: float | None = None) -> dict:
    """Place one call as the agent; the requests it caused until its end is shown."""
    before = len(bot.client.requests)
    await bot.say(bot.alice, f"/call {target}")
    status = bot.client.sent()[-1]
    if hang_up_after is not None:
        await asyncio.sleep(hang_up_after)
        message_id = bot.client.message_id(status)
        shown = [e for e in bot.client.edits() if e.id == message_id] or [status]
        data = next(d for row in buttons_of(shown[-1]) for _label, d in row if d)
        await bot.press(bot.alice, message_id, data)
    await bot.until(lambda: not bot.calls.live_calls(), timeout=60, what="the call to end")
    # The final edit is scheduled by the status follower just after the call ends: wait
    # until the bot has been quiet for longer than the edit interval.
    while True:
        seen = len(bot.client.requests)
        await bot.conversation.flush_edits(timeout=10)
        await asyncio.sleep(1.5)
        if len(bot.client.requests) == seen:
            break
    requests = bot.client.requests[before:]
    counts = collections.Counter(KINDS.get(type(r).__name__, type(r).__name__) for r in requests)
    edits = [r for r in requests if type(r).__name__ == "EditMessageRequest"]
    return {
        "total": len(requests),
        "counts": dict(counts),
        "texts": [status.message.splitlines()[-1]] + [e.message.splitlines()[-1] for e in edits],
    }


async def run() -> dict:
    timings = {k: v for k, v in attrs.asdict(SimulatedTrunkOptions()).items()
               if k.endswith("_seconds")}  # the simulated PBX's defaults  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="corecall-tg-bench-") as tmp:
        bot = await build_bot(
            Path(tmp), driver="simulated", edit_interval=1.0, agent_route="M",
            trunks={"main": {"driver": "simulated", **timings},
                    "dev": {"driver": "simulated", **timings}},
        )  # fmt: skip
        try:
            results = {}
            log("a normal call (~10 s) ...")
            results["normal"] = await one_call(bot, TARGET)
            log("a failed call: the target is busy (~4 s) ...")
            results["failed"] = await one_call(bot, BUSY_TARGET)
            log("a call the agent hangs up with the button while it is connected ...")
            results["hangup"] = await one_call(bot, TARGET, hang_up_after=6.0)
        finally:
            await bot.conversation.close() if hasattr(bot.conversation, "close") else None
            await bot.calls.stop()
            bot.app.close()
    results["timings"] = timings
    return results


def report(results: dict, command: str) -> str:
    def row(name: str, what: str, target: str = "", met: str = "") -> str:
        r = results[name]
        c = r["counts"]
        other = r["total"] - sum(c.get(k, 0) for k in KINDS.values())
        return (
            f"| {what} | {c.get('sendMessage', 0)} | {c.get('editMessageText', 0)} | "
            f"{c.get('answerCallbackQuery', 0)} | {other} | **{r['total']}** | {target} | {met} |"
        )

    normal_ok = results["normal"]["total"] <= TARGET_REQUESTS
    t = results["timings"]
    lines = [
        "## Telegram requests per call (issue 11)",
        "",
        "Counted through the offline harness (a real Telethon client whose sender records "
        "every request), with the conversation's real edit coalescing (one edit per second "
        "per chat at most) and the simulated PBX at its default timings (rings "
        f"{t['ring_seconds']:g} s before each phone rings, answers after "
        f"{t['answer_seconds']:g} s of ringing, talk {t['talk_seconds']:g} s). "
        f"{load_average()} Command:",
        "",
        "```",
        command,
        "```",
        "",
        "| Call | sendMessage | editMessageText | answerCallbackQuery | other | total | Target "
        "| |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
        row("normal", "normal call (target hangs up)", f"≤ {TARGET_REQUESTS}",
            "met" if normal_ok else "**not met**"),
        row("failed", "failed call (target busy)"),
        row("hangup", "agent ends it with the hang-up button"),
        "",
        "What the agent saw (the status line of the one status message, as sent, then after "
        "each edit):",
        "",
        *(f"* {name}: " + " → ".join(f"“{x}”" for x in results[name]["texts"])
          for name in ("normal", "failed", "hangup")),
        "",
        "One status message per call, edited as the call moves; states reached within the "
        "same second (\"you answered\" and \"dialing the target\") share one edit. The "
        "agent's own phone ringing settles for two edit intervals (2 s) before it is shown: "
        "the agent picks it up within that time here (1.5 s), so \"press 1\" replaces it "
        "unsent (a ring that lasts longer is shown; tests/telegram/test_tg_calls.py). The "
        "offline harness's wall clock stands still, hence \"Duration 0:00\". The hang-up "
        "button costs one answerCallbackQuery (the toast) on top of the edits.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-docs", action="store_true")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(run())
    args = argv if argv is not None else sys.argv[1:]
    command = ".venv/bin/python bench/telegram_bench.py " + " ".join(map(shlex.quote, args))
    section = report(results, command.strip())
    print(section)
    if opts.write_docs:
        write_section(DOCS, DOCS_SECTION, section)
        log(f"wrote {DOCS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
