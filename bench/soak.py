#!/usr/bin/env python3
"""Fault soak against the Asterisk lab: ``corecall_testing.soak`` does the work (see its
docstring for what runs, which faults and what is counted); this prints the figures and
with ``--write-docs`` puts them into docs/benchmarks.md.

Usage::

    .venv/bin/python bench/soak.py --backend sqlite --minutes 4 --agents 20
    .venv/bin/python bench/soak.py --backend both --minutes 4 --agents 20 --write-docs

Exit status 1 when a call was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import sys
from pathlib import Path

import attrs
from corecall_lab import lab as labmod
from corecall_testing.bench_docs import write_section
from corecall_testing.soak import Report, soak

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
DOCS_SECTION = "soak"  # its markers in docs/benchmarks.md


def write_docs(reports: list[Report], command: str) -> None:
    rows = [
        "| | " + " | ".join(r.backend for r in reports) + " |",
        "|---|" + "---|" * len(reports),
    ]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(r) for r in reports) + " |")

    row("agents, minutes of calls", lambda r: f"{r.agents}, {r.minutes:g}")
    row("calls requested", lambda r: str(r.requested))
    row("dialed (distinct Originates)", lambda r: str(r.dialed))
    row("finished", lambda r: f"{sum(r.finished.values())}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(r.finished.items())))  # fmt: skip
    row("not placed (answer given)", lambda r: f"{sum(r.refused.values())}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(r.refused.items())))  # fmt: skip
    row("**lost** (no final state)", lambda r: f"**{r.lost}**")
    row("**duplicated** (two INVITEs/Originates)", lambda r: f"**{r.duplicated}**")
    row("agents told the wrong outcome", lambda r: str(r.told_wrong))
    row("RSS start → end", lambda r: f"{r.rss_start_kib / 1024:.1f} → {r.rss_end_kib / 1024:.1f}"
        f" MiB ({r.rss_growth:+.1%})")  # fmt: skip
    row("faults", lambda r: ", ".join(r.faults))
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        f"Measured {stamp} with `{command}` (one run per backend, 2 shared cores):",
        "",
        *rows,
    ])  # fmt: skip
    write_section(DOCS, DOCS_SECTION, section, heading="## Fault soak (`bench/soak.py`)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--short", action="store_true", help="the suite's few-fault schedule")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    labmod.check_environment()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    reports = []
    for backend in backends:
        print(f"== soak on {backend}: {args.agents} agents, {args.minutes:g} min", flush=True)
        report = asyncio.run(soak(backend, args.minutes, args.agents, short=args.short))
        reports.append(report)
        print("\n".join(report.lines()), flush=True)
        for what in report.duplicated_what[:10] + report.told_wrong_what[:10]:
            print("   ", what)
        for what in report.errors_what:
            print("    logged:", what)
        if args.json:
            print(json.dumps(attrs.asdict(report), default=str))
    if args.write_docs:
        command = ".venv/bin/python bench/soak.py " + " ".join(argv or sys.argv[1:])
        write_docs(reports, command.replace(" --write-docs", ""))
    ok = all(r.lost == 0 and r.duplicated == 0 for r in reports)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
