"""``corecall policy check``: the pre-dial pipeline as a dry run, with every verdict."""

from __future__ import annotations

import datetime as _dt

import typer

from corecall.cli.common import console, print_json, state
from corecall.errors import UsageError
from corecall.fields import TELEGRAM_ID_MAX, as_typed, echo

policy_app = typer.Typer(help="Call policy: why a call would be allowed or refused.",
                         no_args_is_help=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


#: The years ``--at`` may name (UTC).
AT_YEARS = (1970, 9998)


def parse_moment(text: str | None) -> _dt.datetime:
    """``--at`` as a timezone-aware datetime (ISO 8601 with an offset or Z); now if None."""
    if text is None:
        return _dt.datetime.now(_dt.UTC)  # not corecall.domain: keeps `corecall --help` light
    try:
        moment = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is not None and not 1970 <= moment.year <= 9998:
        # Time zones are not defined before 1970 in the tz database's sense, and a moment in
        # year 1 or 9999 overflows when moved into the number's zone.
        raise UsageError(f"--at {echo(text)}: give a moment between the years 1970 and 9998")
    if moment is None or moment.utcoffset() is None:
        raise UsageError(
            f"--at {echo(text)}: expected an ISO 8601 moment with its UTC offset, e.g. "
            "2026-07-01T11:30:00Z or 2026-07-01T07:30:00-04:00"
        )
    try:
        moment = moment.astimezone(_dt.UTC)
    except OverflowError:
        moment = None
    # The checks look a day back (repeat calls) and a week ahead (calling hours): keep them
    # inside what datetime can hold, and inside what a dry run is for.
    if moment is None or not AT_YEARS[0] <= moment.year <= AT_YEARS[1]:
        raise UsageError(
            f"--at {echo(text)}: out of range; give a moment in the years {AT_YEARS[0]} to "
            f"{AT_YEARS[1]} (UTC), e.g. 2026-07-01T11:30:00Z"
        )
    return moment


@policy_app.command("check")
def policy_check(
    target: str = typer.Option(..., "--target", help="The number, in any format /call accepts."),
    route: str = typer.Option(None, "--route", help="Route code (default: the agent's route, "
                              "else the first offered route)."),
    agent: int = typer.Option(None, "--agent", help="Telegram id of the agent who would call.",
                              min=1, max=TELEGRAM_ID_MAX),
    at: str = typer.Option(None, "--at", help="When (ISO 8601 with offset, e.g. "
                           "2026-07-01T11:30:00Z); default now."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
):  # fmt: skip
    """Run every pre-dial check for a hypothetical call and print each one's verdict.
    Nothing is dialed or recorded. Exit 0 when the call would be allowed, 1 when refused."""
    from corecall.policy_check import dry_run

    app = state.app()
    moment = parse_moment(at)
    if route is None and agent is None:
        offered = list(app.routes())
        route = offered[0] if offered else None
    result = dry_run(app, target, at=moment, route_code=route.upper() if route else None,
                     agent_id=agent)  # fmt: skip
    if json_:
        print_json(result.as_json())
    else:
        who = f"agent {agent}" if agent is not None else "no agent"
        shown_target = as_typed(target)
        shown_route = result.route or (echo(route) if route else "?")
        console.print(
            f"policy check: {shown_target} ({who}, route {shown_route}) at {result.at.isoformat()}"
        )
        width = max(len(s.step) for s in result.steps)
        for step in result.steps:
            mark = "allowed " if step.ok else "REFUSED "
            console.print(f"  {mark} {step.step.ljust(width)}  {step.message}")
        first = result.refusal
        if first is None:
            console.print("allowed: the call would be placed")
        else:
            console.print(f"refused: {first.reason} (by {first.step})")
    if not result.ok:
        raise typer.Exit(1)
