#!/usr/bin/env python3
"""What the agent's press-1 confirmation costs in bridged calls per second, in one run.

The same bursts as ``bench/ami_bench.py`` (its lab, agents, targets and burst code), through
the whole ``place()`` path with SQLite and through a bare panoramisk script sending the
driver's own Originates, each on a route with ``confirm = "key"`` (every lab phone presses 1
250 ms after answering, which cuts the prompt short) and with ``confirm = "none"`` (the target
is dialed as soon as the agent answers). The four run back to back in rotating order each
round; medians over ``--rounds``, ratios taken within each round. Run as root on Debian::

    .venv/bin/python bench/confirm_bench.py --write-docs

``--write-docs`` replaces the "press 1" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import importlib.util
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

from corecall_testing.bench_docs import write_section

_AMI_BENCH = Path(__file__).with_name("ami_bench.py")
_spec = importlib.util.spec_from_file_location("ami_bench", _AMI_BENCH)
assert _spec and _spec.loader
ami_bench = importlib.util.module_from_spec(_spec)
sys.modules["ami_bench"] = ami_bench
_spec.loader.exec_module(ami_bench)

DOCS_SECTION = "confirm-bench"  # its markers in docs/benchmarks.md
KINDS = ("sqlite-key", "sqlite-none", "raw-key", "raw-none")


async def run(opts) -> dict:
    labmod, log = ami_bench.labmod, ami_bench.log
    log("starting the lab ...")
    lab = await asyncio.to_thread(ami_bench.start_lab)
    results: dict = {"asterisk": labmod.asterisk_version(lab.root), "rounds": opts.rounds}
    workdir = Path(tempfile.mkdtemp(prefix="corecall-confirm-bench-"))
    try:
        agents = max(opts.burst, 50)
        with_key = ami_bench.Corecall(lab, workdir, agents, "sqlite", confirm="key")
        without = ami_bench.Corecall(lab, workdir, agents, "sqlite", confirm="none")
        for cc in (with_key, without):  # warm up
            await ami_bench.corecall_burst(cc, 20)
        await ami_bench.panoramisk_burst(lab, 20, confirm="key")
        await ami_bench.panoramisk_burst(lab, 20, confirm="none")
        rates: dict[str, list[float]] = {k: [] for k in KINDS}
        unconnected = 0
        for r in range(opts.rounds):
            got = {}
            shift = r % len(KINDS)
            for kind in KINDS[shift:] + KINDS[:shift]:
                if kind == "sqlite-key":
                    burst = await ami_bench.corecall_burst(with_key, opts.burst)
                elif kind == "sqlite-none":
                    burst = await ami_bench.corecall_burst(without, opts.burst)
                else:
                    burst = await ami_bench.panoramisk_burst(
                        lab, opts.burst, confirm=kind.removeprefix("raw-")
                    )
                unconnected += len(burst.failed) + len(burst.stuck)
                got[kind] = burst.rate
                await asyncio.sleep(0.5)
            for kind in KINDS:
                rates[kind].append(got[kind])
            log(f"  round {r + 1}: " + ", ".join(f"{k} {got[k]:.0f}" for k in KINDS) + " calls/s")
        results["rates"] = {k: statistics.median(v) for k, v in rates.items()}
        results["per_round"] = rates
        results["ratio_sqlite"] = statistics.median(
            a / b for a, b in zip(rates["sqlite-key"], rates["sqlite-none"], strict=True)
        )
        results["ratio_raw"] = statistics.median(
            a / b for a, b in zip(rates["raw-key"], rates["raw-none"], strict=True)
        )
        results["key_vs_raw"] = statistics.median(
            a / b for a, b in zip(rates["sqlite-key"], rates["raw-key"], strict=True)
        )
        results["unconnected"] = unconnected
        for cc in (with_key, without):
            cc.close()
    finally:
        await asyncio.to_thread(lab.stop)
    return results


def report(results: dict, command: str, burst: int) -> str:
    rate, per = results["rates"], results["per_round"]
    rounds = lambda xs: ", ".join(f"{x:.0f}" for x in xs)  # noqa: E731
    return "\n".join(
        [
            "## Press-1 confirmation (issue 9)",
            "",
            f"Measured {_dt.date.today().isoformat()} on {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {results['asterisk']} (the lab), while other lab "
            f"instances and test suites shared the machine. Medians of {results['rounds']} "
            f"rounds of bursts of {burst} calls; the clock stops when the last call of a burst "
            "is bridged. Command:",
            "",
            "```",
            command,
            "```",
            "",
            "Every lab phone confirms: it presses 1 (RFC 4733) 250 ms after answering. With "
            '`confirm = "key"` (the default) the target is dialed only after that key; with '
            '`confirm = "none"` it is dialed as soon as the agent answers. Same calls, same '
            "rounds:",
            "",
            "| Path | with confirmation, calls/s | without, calls/s | with / without |",
            "|---|---:|---:|---:|",
            f"| `place()`, SQLite | {rate['sqlite-key']:.0f} | {rate['sqlite-none']:.0f} | "
            f"{results['ratio_sqlite']:.2f} |",
            f"| bare panoramisk, the driver's Originates | {rate['raw-key']:.0f} | "
            f"{rate['raw-none']:.0f} | {results['ratio_raw']:.2f} |",
            "",
            f"With confirmation, `place()`/SQLite runs at {results['key_vs_raw']:.2f} of bare "
            "panoramisk sending the same confirming Originates. The step costs each call the "
            "agent's reaction time (here the carrier's 250 ms) and Asterisk's `Read()` of the "
            "prompt, so a burst's last call is bridged later; corecall's own work per call does "
            f"not change. Calls that did not bridge in the whole run: {results['unconnected']}. "
            f"Per round: SQLite with {rounds(per['sqlite-key'])}, without "
            f"{rounds(per['sqlite-none'])}; panoramisk with {rounds(per['raw-key'])}, without "
            f"{rounds(per['raw-none'])} calls/s.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burst", type=int, default=100, help="calls per burst")
    parser.add_argument("--write-docs", action="store_true")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = asyncio.run(run(opts))
    command = ".venv/bin/python bench/confirm_bench.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    section = report(results, command.strip(), opts.burst)
    print(section)
    if opts.write_docs:
        write_section(ami_bench.DOCS, DOCS_SECTION, section)
        ami_bench.log(f"wrote {ami_bench.DOCS.relative_to(ami_bench.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
