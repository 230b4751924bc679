"""Operations commands: ``corecall calls live`` and ``corecall health``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import typer

from corecall.cli.admin_commands import calls_app
from corecall.cli.common import console, print_json, state

if TYPE_CHECKING:  # imported inside the commands: `corecall --help` stays light
    from rich.console import Group

    from corecall.live import Snapshot


def register(app: typer.Typer) -> None:
    calls_app.command("live")(calls_live)
    app.command("health")(health)


def _table(snapshot: Snapshot) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from corecall.live import render_rows

    table = Table(title=f"Live calls at {snapshot.taken_at:%H:%M:%S} UTC", title_justify="left")
    for column in ("Agent", "Route", "State", "Duration", "Call id"):
        table.add_column(column, justify="right" if column == "Duration" else "left")
    for row in render_rows(snapshot):
        table.add_row(*row)
    if not snapshot.calls:
        table.add_row("(no call is live)", "", "", "", "")
    totals = ", ".join(
        f"{reason.replace('_', ' ')} {count}"
        for reason, count in sorted(snapshot.today.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    summary = f"Today (UTC): {snapshot.total_today} calls" + (f" - {totals}" if totals else "")
    if snapshot.calls:
        summary += f", live {len(snapshot.calls)}"
    return Group(table, Text(summary), Text("Ctrl-C to quit.", style="dim"))


def calls_live(
    refresh: float = typer.Option(
        1.0, "--refresh", min=0.2, max=3600, help="Seconds between updates."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON snapshot, then exit."),
    once: bool = typer.Option(False, "--once", help="One snapshot, then exit."),
) -> None:
    """Live calls (agent, route, state, duration) and today's totals by outcome.

    In a terminal the table refreshes until Ctrl-C; piped (or with --once) it prints one
    plain snapshot and exits."""
    from rich.live import Live

    from corecall.live import render_text, take_snapshot

    store = state.app().store
    if as_json:
        print_json(take_snapshot(store).as_json())
        return
    if once or not sys.stdout.isatty():
        console.print(render_text(take_snapshot(store)))
        return
    try:
        with Live(_table(take_snapshot(store)), console=console.real, auto_refresh=False) as live:
            while True:
                time.sleep(refresh)
                live.update(_table(take_snapshot(store)), refresh=True)
    except KeyboardInterrupt:
        pass


def health(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    max_age: float = typer.Option(
        20.0,
        "--max-age",
        min=1,
        max=86400,
        help="Seconds after which the bot's report counts as stale.",
    ),
) -> None:
    """Is `corecall run` healthy? Telegram, each trunk link (AMI server) and the store.

    Reads the report the running bot rewrites every few seconds; exit code 0 when healthy,
    1 when a part is down or the bot is not running."""
    from corecall.systemd import health_path, read_health

    healthy, report = read_health(health_path(state.app().config.data_dir), max_age=max_age)
    if as_json:
        print_json({"healthy": healthy, **report})
    else:
        parts = report.get("parts", {})
        states = "; ".join(f"{name} {'up' if up else 'DOWN'}" for name, up in parts.items())
        console.print(("healthy" if healthy else "UNHEALTHY") + (f": {states}" if states else ""))
        for problem in report.get("problems", []):
            console.print(f"  {problem}")
    if not healthy:
        raise typer.Exit(1)
