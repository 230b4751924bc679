#!/usr/bin/env python3
"""Start-up of ``corecall --version`` and ``corecall --help`` against ``import typer`` (issue 11).

Each command is run ``--rounds`` times as a fresh process, the three kinds interleaved so
they share the machine's load; wall time and peak RSS (``ru_maxrss`` from ``wait4``) are
taken per run and the medians reported, with the ratios to ``python -c "import typer"``
(the floor of any typer CLI). Run::

    .venv/bin/python bench/startup_bench.py --write-docs
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from corecall_testing.bench_docs import load_average, write_section

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
DOCS_SECTION = "startup-bench"  # its markers in docs/benchmarks.md
BIN = Path(sys.executable).parent
COMMANDS = {
    "typer": [sys.executable, "-c", "import typer"],
    "version": [str(BIN / "corecall"), "--version"],
    "help": [str(BIN / "corecall"), "--help"],
}
TARGETS = {"version": 2.0, "help": 3.0}


def run_once(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def run(rounds: int) -> dict:
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    rss: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache and .pyc files
        run_once(cmd)
    for r in range(rounds):
        names = list(COMMANDS)
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed, peak = run_once(COMMANDS[name])
            times[name].append(elapsed)
            rss[name].append(peak)
    return {
        "rounds": rounds,
        "load": os.getloadavg()[0],
        "time": {k: statistics.median(v) for k, v in times.items()},
        "rss": {k: statistics.median(v) for k, v in rss.items()},
    }


def report(result: dict, command: str) -> str:
    t, m = result["time"], result["rss"]
    ok = lambda c: "met" if c else "**not met**"  # noqa: E731
    rows = []
    labels = {"typer": '`python -c "import typer"`', "version": "`corecall --version`",
              "help": "`corecall --help`"}  # fmt: skip
    for name, label in labels.items():
        ratio = t[name] / t["typer"]
        target = f"≤ {TARGETS[name]:g}×" if name in TARGETS else ""
        met = ok(ratio <= TARGETS[name]) if name in TARGETS else ""
        rows.append(
            f"| {label} | {t[name] * 1000:.0f} ms | {ratio:.2f}× | {m[name]:.1f} MiB | "
            f"{m[name] / m['typer']:.2f}× | {target} | {met} |"
        )
    lines = [
        "## CLI start-up (issue 11)",
        "",
        f"Each command as a fresh process, {result['rounds']} runs each, interleaved; "
        f"medians (load average {result['load']:.1f} when it ended: compare the ratios). "
        f"{load_average()} Command:",
        "",
        "```",
        command,
        "```",
        "",
        "| Command | wall time | ratio | peak RSS | ratio | Target (time) | |",
        "|---|---:|---:|---:|---:|---:|:---:|",
        *rows,
        "",
        "The command modules import what a command needs (the store, the plugins, the "
        "drivers, Telethon, the number policy, rich) inside the command, and the `corecall` "
        "package's exports are lazy, so `--version` loads typer and nothing else of note, "
        "but reads every installed distribution's metadata to list the plugin distributions "
        "(`importlib.metadata.entry_points`: its extra time over `--help`); `--help` adds "
        "rich, which typer uses to render help. `tests/test_cli_startup.py` "
        "fails if a command module starts importing them at module level again.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write-docs", action="store_true")
    opts = parser.parse_args(argv)
    result = run(opts.rounds)
    args = argv if argv is not None else sys.argv[1:]
    command = ".venv/bin/python bench/startup_bench.py " + " ".join(map(shlex.quote, args))
    section = report(result, command.strip())
    print(section)
    if opts.write_docs:
        write_section(DOCS, DOCS_SECTION, section)
        print(f"wrote {DOCS.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
