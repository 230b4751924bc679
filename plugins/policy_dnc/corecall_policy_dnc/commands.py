"""``corecall dnc add|remove|list|import|export``: the do-not-call list from the shell.

Every change is audited with the operator as actor. Numbers are read exactly as ``/call``
reads them (any format it accepts) and stored in E.164.
"""

from __future__ import annotations

import csv
import functools
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import typer

from corecall.calls import parse_on_any_route
from corecall.domain import NumberVerdict
from corecall.errors import CorecallError, NotFoundError, RefusedError
from corecall.fields import (
    ACTOR_MAX_CHARS,
    E164_MAX_CHARS,
    REASON_MAX_CHARS,
    check_reason,
    echo,
    one_line,
    show_path,
)
from corecall_policy_dnc.importing import Entry, Rejected, bounded_lines, read_lines

#: Numbers per store transaction while importing: small enough that a live call's own
#: write never waits long for the lock (SQLite has one writer), big enough to be fast.
IMPORT_BATCH = 2000
#: Rejected lines shown in the text report (all of them are in --json).
SHOWN_REJECTIONS = 50


def _actor() -> str:
    from corecall.cli.common import actor

    return actor()


def _print_json(data) -> None:
    from corecall.cli.common import print_json

    print_json(data)


def parser_for(app) -> Callable[[str], NumberVerdict]:
    """Numbers as ``/call`` reads them, on any offered route."""
    routes = list(app.routes().values())
    return functools.partial(parse_on_any_route, app.plugins, routes)


def _e164(app, text: str) -> str:
    verdict = parser_for(app)(text)
    if not verdict.ok:
        raise RefusedError(verdict.reason or "invalid", f"{echo(text)}: {verdict.message}")
    assert verdict.e164 is not None  # an accepted verdict carries its E.164 form
    return verdict.e164


def _printable_row(entry) -> list[str]:
    """An entry as number, reason, added_at, added_by, each one line within its field's
    limit: a value stored before the limits (or by another program) never writes a control
    sequence to the terminal or a file, and an export always imports back."""
    return [
        one_line(entry.number, E164_MAX_CHARS),
        one_line(entry.reason or "", REASON_MAX_CHARS),
        entry.added_at.isoformat() if entry.added_at else "",
        one_line(entry.added_by or "", ACTOR_MAX_CHARS),
    ]


def make_dnc_app(context) -> typer.Typer:
    """The ``dnc`` command group, reaching the application through the plugin's
    ``context`` (the store is opened only when a command runs)."""
    dnc_app = typer.Typer(
        help="The do-not-call list: numbers corecall refuses to call (every change is audited).",
        no_args_is_help=True,
        # "\b": click prints the paragraph as is (the core's help pages do the same).
        epilog="\b\nExamples:\n"
        '  corecall dnc add "(212) 555-0123" --reason "asked not to be called"\n'
        "  corecall dnc import numbers.csv\n"
        "  corecall dnc export -o dnc.csv",
    )

    def _app():
        return context.app

    @dnc_app.command("add")
    def dnc_add(
        number: str = typer.Argument(..., help="Any format /call accepts, e.g. '(212) 555-0123'."),
        reason: str = typer.Option(
            "", "--reason", help="Why (kept for operators; agents never see it)."
        ),
    ):
        """Add a number to the list (adding it again changes nothing)."""
        app = _app()
        e164 = _e164(app, number)
        reason = check_reason(reason)
        if app.store.dnc_add(e164, reason=reason, actor=_actor()):
            typer.echo(f"added {e164} to the do-not-call list")
            return
        entry = app.store.dnc_get(e164)
        since = (
            f" since {entry.added_at:%Y-%m-%d %H:%M} UTC by {_printable_row(entry)[3]}"
            if entry
            else ""
        )
        typer.echo(f"{e164} is already on the do-not-call list{since}")

    @dnc_app.command("remove")
    def dnc_remove(number: str = typer.Argument(..., help="Any format /call accepts.")):
        """Remove a number from the list."""
        app = _app()
        e164 = _e164(app, number)
        if not app.store.dnc_remove(e164, actor=_actor()):
            raise NotFoundError(f"{e164} is not on the do-not-call list")
        typer.echo(f"removed {e164} from the do-not-call list")

    def _entries(app) -> Iterable:
        after = None
        while True:
            page = app.store.dnc_entries(after=after, limit=IMPORT_BATCH)
            yield from page
            if len(page) < IMPORT_BATCH:
                return
            after = page[-1].number

    def _entry_json(entry) -> dict:
        # The same values as `dnc list` and `dnc export` (one line, within the limits): a
        # JSON reader's terminal gets no raw control or bidi character either.
        number, reason, _added_at, added_by = _printable_row(entry)
        return {
            "number": number, "reason": reason, "added_by": added_by,
            "added_at": entry.added_at.isoformat() if entry.added_at else None,
        }  # fmt: skip

    @dnc_app.command("list")
    def dnc_list(json_: bool = typer.Option(False, "--json", help="Machine-readable output.")):
        """Every listed number, in E.164 order."""
        app = _app()
        if json_:
            _print_json([_entry_json(e) for e in _entries(app)])
            return
        count = 0
        for entry in _entries(app):
            count += 1
            row = _printable_row(entry)
            when = f"{entry.added_at:%Y-%m-%d %H:%M}" if entry.added_at else "?"
            reason = f"  {row[1]}" if row[1] else ""
            typer.echo(f"{row[0]}  {when} UTC  {row[3]}{reason}")
        typer.echo(f"{count} number{'s' if count != 1 else ''} on the do-not-call list")

    @dnc_app.command("export")
    def dnc_export(
        output: Path = typer.Option(
            None, "--output", "-o", help="Write to FILE (default: stdout)."
        ),
    ):
        """The list as CSV (number,reason,added_at,added_by); `dnc import` reads it back
        (each value one line, within the limits `dnc add` and `dnc import` apply)."""
        app = _app()
        if output is None:
            _write_csv(sys.stdout, _entries(app))
            return
        try:
            with open(output, "w", newline="", encoding="utf-8") as out:
                _write_csv(out, _entries(app))
        except OSError as exc:  # a directory, a missing parent, /proc, a full disk, no rights
            why = exc.strerror or type(exc).__name__
            if isinstance(exc, IsADirectoryError) and exc.filename == str(output):
                why = f"it is a directory; give a file, e.g. -o {show_path(output / 'dnc.csv')}"
            elif exc.filename not in (None, str(output)):
                why = f"{show_path(exc.filename)}: {why}"
            raise CorecallError(f"cannot write {show_path(output)}: {why}") from None

    def _write_csv(out, entries) -> None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["number", "reason", "added_at", "added_by"])
        for e in entries:
            writer.writerow(_printable_row(e))

    @dnc_app.command("import")
    def dnc_import(
        file: Path = typer.Argument(
            ..., help="CSV (number[,reason,...]) or one number a line; - for stdin."
        ),
        reason: str = typer.Option("", "--reason", help="Reason for lines that give none."),
        json_: bool = typer.Option(False, "--json", help="Machine-readable report."),
    ):
        """Import numbers (any format /call accepts). Listed numbers are skipped, bad lines are
        reported by line number and the rest imported; exit 1 when a line was rejected."""
        app = _app()
        reason = check_reason(reason)
        if str(file) == "-":
            report = import_lines(
                app, bounded_lines(sys.stdin.buffer), _actor(), default_reason=reason
            )
        else:
            try:
                handle = open(file, "rb")
            except OSError as exc:
                raise CorecallError(f"cannot read {show_path(file)}: {exc.strerror}") from None
            with handle:
                report = import_lines(app, bounded_lines(handle), _actor(), default_reason=reason)
        report["file"] = str(file)
        if json_:
            _print_json(report)
        else:
            shown = show_path(file)
            typer.echo(
                f"imported {shown}: {report['numbers']} numbers read, {report['added']} added, "
                f"{report['already_listed']} already listed, {len(report['rejected'])} lines "
                f"rejected ({report['seconds']:.1f} s)"
            )
            for rejected in report["rejected"][:SHOWN_REJECTIONS]:
                typer.echo(
                    f"  line {rejected['line']}: {echo(rejected['text'])}: {rejected['message']}"
                )
            if len(report["rejected"]) > SHOWN_REJECTIONS:
                typer.echo(f"  ... {len(report['rejected']) - SHOWN_REJECTIONS} more (use --json)")
        if report["rejected"]:
            raise typer.Exit(1)

    return dnc_app


def import_lines(
    app, lines: Iterable[bytes], actor: str, *, default_reason: str = "",
    batch: int = IMPORT_BATCH,
) -> dict:  # fmt: skip
    """Read ``lines`` and add their numbers, ``batch`` per transaction. Returns the report:
    ``numbers`` (accepted lines), ``added``, ``already_listed`` (listed before, or repeated
    in the file), ``rejected`` (line, text, message), ``seconds`` in all and
    ``store_seconds`` spent writing."""
    started = time.perf_counter()
    parse = parser_for(app)
    pending: dict[str, str] = {}
    numbers = added = 0
    store_seconds = 0.0
    rejected: list[dict] = []

    def flush() -> int:
        nonlocal store_seconds
        began = time.perf_counter()
        count = app.store.dnc_add_many(list(pending.items()), actor=actor) if pending else 0
        store_seconds += time.perf_counter() - began
        pending.clear()
        return count

    for item in read_lines(lines, parse):
        if isinstance(item, Rejected):
            rejected.append(item.as_json())
            continue
        assert isinstance(item, Entry)
        numbers += 1
        pending.setdefault(item.number, item.reason or default_reason)
        if len(pending) >= batch:
            added += flush()
    added += flush()
    return {
        "numbers": numbers, "added": added, "already_listed": numbers - added,
        "rejected": rejected, "seconds": round(time.perf_counter() - started, 3),
        "store_seconds": round(store_seconds, 3),
    }  # fmt: skip
