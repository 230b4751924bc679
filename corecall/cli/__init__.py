"""The operator CLI (typer). ``corecall --help`` lists the commands.

Exit codes: 0 success, 1 refused or failed, 2 usage error. Errors corecall raises on
purpose are printed as one clear line, never as a traceback.

Start-up is kept short: the command modules import what a command needs (Telethon,
panoramisk, peewee, the plugins, rich) inside the command, so ``corecall --version`` and
``corecall --help`` load none of it (measured in docs/benchmarks.md;
``tests/test_cli_startup.py`` keeps it so).
"""

from __future__ import annotations

import logging
import sys
import traceback

import typer

import corecall
from corecall import redaction
from corecall.cli import (
    admin_commands,
    bot_commands,
    core_commands,
    telephony_commands,
)
from corecall.cli.common import err_console, state
from corecall.errors import CorecallError

app = typer.Typer(
    name="corecall",
    help="Click-to-call for outbound call centres: Telegram bot, Asterisk, plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"corecall {corecall.__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="Configuration file (default: $CORECALL_CONFIG, else the per-user config dir).",
        metavar="FILE",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print corecall's version and exit.",
    ),
) -> None:
    state.config_path = config
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    state.redactor.add_all(redaction.environment_secrets())
    redaction.install(state.redactor)  # no log line of this process shows a secret


core_commands.register(app)
admin_commands.register(app)
telephony_commands.register(app)
bot_commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn errors into exit codes."""
    try:
        result = app(args=argv, prog_name="corecall", standalone_mode=False)
    except CorecallError as exc:
        from rich.text import Text

        message = state.redactor.redact(str(exc))
        err_console.print(Text("error: ", style="bold red") + Text(message))
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except Exception as exc:
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # typer's usage errors
            show()
            return code
        # A bug: show the traceback, redacted like every line this process prints.
        sys.stderr.write(state.redactor.redact(traceback.format_exc()))
        return 1
    finally:
        state.close()
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
