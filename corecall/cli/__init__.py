"""The operator CLI (typer). ``corecall --help`` lists the commands.

Exit codes: 0 success, 1 refused or failed, 2 usage error, 130 interrupted. Errors corecall
raises on purpose are printed as one clear line. Anything unexpected is printed as one line
too, naming the file the full traceback was written to (``--debug`` prints it instead):
nothing surfaces as a bare "Aborted" or a traceback.

Start-up is kept short: the command modules import what a command needs (Telethon,
panoramisk, peewee, the plugins, rich) inside the command, so ``corecall --version`` and
``corecall --help`` load none of it (measured in docs/benchmarks.md;
``tests/test_cli_startup.py`` keeps it so).
"""

from __future__ import annotations

import logging
import sys

import typer

from corecall.cli import (
    admin_commands,
    bot_commands,
    core_commands,
    telephony_commands,
)
from corecall.cli.common import err_console, hoist_global_options, report_unexpected, state
from corecall.cli.help import tidy
from corecall.errors import CorecallError

app = typer.Typer(
    name="corecall",
    help="Click-to-call for outbound call centres: Telegram bot, Asterisk, plugins.\n\n"
    "Global options (--config, --debug, --verbose) may also be given after the command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    options_metavar="[OPTIONS]",
    # Help is re-flowed to the terminal's width (click stops at 80 by default), up to 120.
    context_settings={"max_content_width": 120},
)


def _version(value: bool) -> None:
    if not value:
        return
    from corecall.cli.version import version_lines

    for line in version_lines():
        sys.stdout.write(line + "\n")
    raise typer.Exit(0)


@app.callback()
def _global_options(
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="Configuration file (default: $CORECALL_CONFIG, else the per-user config dir). "
        "Accepted before or after the command.",
        metavar="FILE",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens (stderr)."),
    debug: bool = typer.Option(
        False, "--debug", help="Print full tracebacks of unexpected errors, and debug logs."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        help="Show corecall's, its plugins' and phonenumbers' versions, then exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    state.config_path = config
    state.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    state.verbose = verbose or debug


core_commands.register(app)
admin_commands.register(app)
telephony_commands.register(app)
bot_commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn errors into exit codes."""
    args = hoist_global_options(sys.argv[1:] if argv is None else list(argv))
    try:
        command = tidy(typer.main.get_command(app))
        result = command.main(args=args, prog_name="corecall", standalone_mode=False)
    except CorecallError as exc:
        from rich.text import Text

        err_console.print(Text("error: ", style="bold red") + Text(str(exc)))
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort as exc:
        # click turns EOFError (asyncio.IncompleteReadError is one) and Ctrl-C into a bare
        # Abort: say what really happened.
        cause = exc.__cause__ or exc.__context__
        if cause is None or isinstance(cause, KeyboardInterrupt):
            err_console.print("interrupted")
            return 130
        if isinstance(cause, CorecallError):
            from rich.text import Text

            err_console.print(Text("error: ", style="bold red") + Text(str(cause)))
            return cause.exit_code
        return report_unexpected(cause)
    except Exception as exc:
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # typer's usage errors
            show()
            return code
        return report_unexpected(exc)
    finally:
        state.close()
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
