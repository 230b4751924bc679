#!/usr/bin/env python3
"""Benchmark of the do-not-call list at scale, on SQLite and PostgreSQL in one run:

1. **Import**: ``corecall dnc import`` of a file of N numbers (default 1,000,000; mixed
   formats as operators' exports have them, plus a few bad lines): numbers per second in
   all (reading, parsing with the ``/call`` pipeline, writing) and for the store writes
   alone. Run through the real CLI in a child process, as an operator would.
2. **The check's cost on /call** at N entries: the DNC plugin's check (one indexed lookup),
   timed for listed and unlisted numbers: p50/p99.
3. **Live calls while importing**: a second import (N/5 new numbers) runs in a child process
   while this process does what ``/call`` does to the store (the DNC check, the repeat-call
   count, writing the call record) every 10 ms; p50/p99/max of that against the same loop
   with no import running. The import writes in batches of 2,000 numbers per transaction
   so a live call never waits long for the write lock.

PostgreSQL is a throwaway cluster started by the benchmark (the tests' helper: fsync and
synchronous_commit are off, so its write figures are an upper bound). Run::

    .venv/bin/python bench/dnc_bench.py --write-docs

``--numbers 20000`` makes a quick run; ``--write-docs`` replaces the "Do-not-call list"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from corecall_testing.bench_docs import write_section

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
DOCS_SECTION = "dnc-bench"  # its markers in docs/benchmarks.md
AREA_CODES = (212, 312, 415, 646, 718, 917, 202, 305, 617, 713, 404, 503)


def make_numbers(count: int, seed: int) -> list[str]:
    """``count`` distinct valid US numbers (E.164), reproducibly."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        area = rng.choice(AREA_CODES)
        exchange = rng.randrange(201, 1000)
        if exchange % 100 == 11 or exchange == 555:
            continue
        seen.add(f"+1{area}{exchange:03d}{rng.randrange(10000):04d}")
    return sorted(seen, key=lambda _n: rng.random())


def write_file(path: Path, numbers: list[str], *, bad_every: int = 1000) -> int:
    """One number a line in the formats /call accepts (E.164, (NPA) NXX-XXXX,
    NPA-NXX-XXXX); a bad line every ``bad_every``. Returns the count of bad lines."""
    bad = 0
    with open(path, "w", encoding="utf-8") as out:
        for index, number in enumerate(numbers):
            npa, nxx, line = number[2:5], number[5:8], number[8:]
            style = index % 5
            if style < 3:
                out.write(f"{number}\n")
            elif style == 3:
                out.write(f"({npa}) {nxx}-{line}\n")
            else:
                out.write(f"{npa}-{nxx}-{line},imported\n")
            if index % bad_every == bad_every - 1:
                out.write("not a number\n")
                bad += 1
    return bad


def write_config(path: Path, data_dir: Path, backend: str, dsn: str = "") -> None:
    store = f'backend = "{backend}"\n'
    if backend == "sqlite":
        store += f'sqlite_path = "{data_dir / "corecall.sqlite3"}"\n'
    else:
        store += f'postgres_dsn = "{dsn}"\n'
    path.write_text(
        f'data_dir = "{data_dir}"\n[store]\n{store}'
        '[trunks.main]\ndriver = "simulated"\n'
        '[routes.M]\ntrunk = "main"\ncaller_ids = ["+12125550100"]\n'
    )


def cli_import(config: Path, file: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "corecall", "--config", str(config), "dnc", "import", str(file),
         "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"dnc import failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def time_checks(store, listed: list[str], unlisted: list[str], rounds: int = 2000) -> dict:
    from corecall_policy_dnc import refusal

    from corecall.domain import Agent, CallRequest, Route, TrunkConfig

    route = Route("M", "Main", "", TrunkConfig("main", "simulated"), ("+12125550100",))
    agent = Agent(1, "+12125550111", authorized=True)
    samples = {"listed": [], "unlisted": []}
    for index in range(rounds):
        kind = "listed" if index % 2 else "unlisted"
        number = (listed if index % 2 else unlisted)[index % len(listed)]
        request = CallRequest(agent, number, route, "+12125550100")
        began = time.perf_counter()
        answer = refusal(request, store)
        samples[kind].append((time.perf_counter() - began) * 1e6)
        assert (answer is not None) == (kind == "listed")
    every = samples["listed"] + samples["unlisted"]
    return {
        "p50_us": statistics.median(every), "p99_us": percentile(every, 99),
        "listed_p50_us": statistics.median(samples["listed"]),
        "unlisted_p50_us": statistics.median(samples["unlisted"]),
    }  # fmt: skip


def live_call_loop(store, stop: threading.Event, targets: list[str]) -> list[float]:
    """What /call does to the store, every 10 ms until ``stop``: ms per call."""
    from corecall.domain import CallRecord, utcnow

    samples = []
    index = 0
    while not stop.is_set():
        target = targets[index % len(targets)]
        index += 1
        began = time.perf_counter()
        store.dnc_contains(target)
        store.calls_to_target_since(target, utcnow() - _dt.timedelta(hours=24))
        store.create_call(CallRecord(
            id=uuid.uuid4().hex, agent_id=1, agent_phone="+12125550111", target=target,
            route_code="M", trunk="main", caller_id="+12125550100",
        ))  # fmt: skip
        samples.append((time.perf_counter() - began) * 1000)
        time.sleep(0.01)
    return samples


def summarize(samples: list[float]) -> dict:
    return {
        "calls": len(samples), "p50_ms": statistics.median(samples),
        "p99_ms": percentile(samples, 99), "max_ms": max(samples),
    }  # fmt: skip


def run_backend(backend: str, numbers: list[str], extra: list[str], work: Path, dsn: str):
    from corecall.app import App
    from corecall.config import load_config

    data_dir = work / backend
    data_dir.mkdir()
    config_path = work / f"{backend}.toml"
    write_config(config_path, data_dir, backend, dsn)
    file = work / "numbers.txt"
    second = work / "more.txt"
    print(f"[{backend}] importing {len(numbers):,} numbers through `corecall dnc import`...",
          flush=True)  # fmt: skip
    report = cli_import(config_path, file)
    app = App(load_config(config_path))
    store = app.store
    count = store.dnc_count()
    assert count == len(numbers), (count, len(numbers))
    result = {
        "entries": count,
        "import_seconds": report["seconds"],
        "import_rows_per_s": report["numbers"] / report["seconds"],
        "store_rows_per_s": report["numbers"] / report["store_seconds"],
        "rejected": len(report["rejected"]),
    }
    print(f"[{backend}] timing the check at {count:,} entries...", flush=True)
    unlisted = extra[: len(extra) // 2]
    result["check"] = time_checks(store, numbers[:1000], unlisted[:1000])
    targets = numbers[:50] + unlisted[:50]

    stop = threading.Event()
    timer = threading.Timer(10.0, stop.set)
    timer.start()
    idle = live_call_loop(store, stop, targets)
    print(f"[{backend}] live calls while a second import of {len(extra):,} runs...", flush=True)
    stop = threading.Event()
    collected: list[float] = []
    worker = threading.Thread(target=lambda: collected.extend(live_call_loop(store, stop, targets)))
    worker.start()
    began = time.perf_counter()
    during_report = cli_import(config_path, second)
    stop.set()
    worker.join()
    result["second_import_seconds"] = time.perf_counter() - began
    result["second_import_added"] = during_report["added"]
    result["idle"] = summarize(idle)
    result["during_import"] = summarize(collected)
    app.close()
    return result


def backends(results: dict):
    return [(name, r) for name, r in results.items() if name != "load"]


def render(results: dict, opts, started: str) -> str:
    lines = [
        "## Do-not-call list (issue 12)",
        "",
        f"Measured {started} on {os.cpu_count()} cores shared with the other helpers' work, "
        f"Python {platform.python_version()}, one run (both backends back to back), load "
        f"average {results['load'][0]:.1f} at the start and {results['load'][1]:.1f} at the "
        "end. Command:",
        "",
        "```",
        f".venv/bin/python bench/dnc_bench.py --numbers {opts.numbers} --write-docs",
        "```",
        "",
        f"**Import** of {opts.numbers:,} numbers (60 % E.164, 20 % `(212) 555-0123`, 20 % "
        "`212-555-0123,reason`, plus one bad line per 1,000, reported by line number) with "
        "`corecall dnc import`, in batches of 2,000 per transaction. *All* is the whole "
        "command (reading, parsing each number with the `/call` pipeline, writing); *store* "
        "is the time spent in `Store.dnc_add_many`.",
        "",
        "| Backend | entries | import, all (numbers/s) | store writes (numbers/s) | import time |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend, r in backends(results):
        lines.append(
            f"| {backend} | {r['entries']:,} | {r['import_rows_per_s']:,.0f} | "
            f"{r['store_rows_per_s']:,.0f} | {r['import_seconds']:.1f} s |"
        )
    parse_us = {
        name: 1e6 * (1 / r["import_rows_per_s"] - 1 / r["store_rows_per_s"])
        for name, r in backends(results)
    }
    lines += [
        "",
        "The rest of *all* is reading and checking each line as `/call` would (the number "
        "policy, libphonenumber): "
        + ", ".join(f"{us:.0f} µs per number ({name})" for name, us in parse_us.items())
        + ". That is what bounds the import; the store writes are the smaller share.",
    ]
    lines += [
        "",
        f"**The check's cost on `/call`** at {opts.numbers:,} entries: the `policy_dnc` check "
        "(one primary-key lookup), 2,000 checks, half of listed and half of unlisted numbers.",
        "",
        "| Backend | p50 | p99 | p50 listed | p50 unlisted |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend, r in backends(results):
        c = r["check"]
        lines.append(
            f"| {backend} | {c['p50_us']:.0f} µs | {c['p99_us']:.0f} µs | "
            f"{c['listed_p50_us']:.0f} µs | {c['unlisted_p50_us']:.0f} µs |"
        )
    lines += [
        "",
        "**Live calls while importing**: what `/call` does to the store (DNC check, "
        "repeat-call count, writing the call record), every 10 ms, with no import running "
        f"(10 s) and while `corecall dnc import` adds {opts.numbers // 5:,} more numbers in "
        "another process.",
        "",
        "| Backend | idle p50 | idle p99 | during import p50 | during import p99 | "
        "during import max | calls during import |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, r in backends(results):
        i, d = r["idle"], r["during_import"]
        lines.append(
            f"| {backend} | {i['p50_ms']:.2f} ms | {i['p99_ms']:.2f} ms | {d['p50_ms']:.2f} ms "
            f"| {d['p99_ms']:.2f} ms | {d['max_ms']:.1f} ms | {d['calls']} |"
        )
    lines += [
        "",
        "PostgreSQL runs with fsync and synchronous_commit off (the test cluster), so its "
        "write figures are an upper bound; SQLite runs in WAL mode with its normal "
        "durability settings.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--write-docs", action="store_true")
    opts = parser.parse_args()
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    load_at_start = os.getloadavg()[0]
    numbers = make_numbers(opts.numbers + opts.numbers // 5, seed=12)
    listed, extra = numbers[: opts.numbers], numbers[opts.numbers :]
    results = {}
    with tempfile.TemporaryDirectory(prefix="corecall-dnc-bench-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        write_file(work / "numbers.txt", listed)
        write_file(work / "more.txt", extra)
        server = None
        try:
            for backend in opts.backends.split(","):
                dsn = ""
                if backend == "postgres":
                    from corecall_testing.pg_server import PgServer

                    server = PgServer().start()
                    dsn = server.create_database("dnc_bench")
                results[backend] = run_backend(backend, listed, extra, work, dsn)
        finally:
            if server is not None:
                server.stop()
    results["load"] = (load_at_start, os.getloadavg()[0])
    section = render(results, opts, started)
    print(section)
    if opts.write_docs:
        write_section(DOCS, DOCS_SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
