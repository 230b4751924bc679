"""The operator CLI (typer). ``corecall --help`` lists the commands.

Exit codes: 0 success, 1 refused or failed, 2 usage error. Errors corecall raises on
purpose are printed as one clear line, never as a traceback.

Start-up is kept short: the command modules import what a command needs (Telethon,
panoramisk, peewee, the plugins, rich) inside the command, so ``corecall --version`` and
``corecall --help`` load none of it (measured in docs/benchmarks.md;
``tests/test_cli_startup.py`` keeps it so).

The typer app is built afresh for every invocation (:func:`build_cli`). When the command
named on the command line is not one of the core's, the enabled plugins of the
configuration named by ``--config`` are loaded and asked for their commands
(``corecall_register_commands``); core commands and ``--help`` never load plugins.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence

import typer

import corecall
from corecall import redaction
from corecall.cli import (
    admin_commands,
    bot_commands,
    core_commands,
    ops_commands,
    policy_commands,
    telephony_commands,
)
from corecall.cli.common import err_console, state
from corecall.errors import CorecallError
from corecall.logs import FORMATS, setup_logging


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"corecall {corecall.__version__}")
        raise typer.Exit(0)


def _global_options(
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="Configuration file (default: $CORECALL_CONFIG, else the per-user config dir).",
        metavar="FILE",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
    log_format: str = typer.Option(
        "text",
        "--log-format",
        help="Log lines as readable 'text' or one JSON object per line ('json', with call_id "
        "and agent_id fields); logs go to stderr.",
        metavar="text|json",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print corecall's version and exit.",
    ),
) -> None:
    state.config_path = config
    if log_format not in FORMATS:
        raise typer.BadParameter(
            f"{log_format!r} is not a log format; use text or json", param_hint="--log-format"
        )
    setup_logging(logging.INFO if verbose else logging.WARNING, log_format)
    state.redactor.add_all(redaction.environment_secrets())
    redaction.install(state.redactor)  # no log line of this process shows a secret


def build_cli(argv: Sequence[str] = ()) -> typer.Typer:
    """The ``corecall`` typer app for the command line ``argv``: the core's commands, plus,
    when ``argv`` names a command the core does not have, those of the enabled plugins of
    the configuration ``state.config_path`` names. When that configuration cannot be loaded
    plugin commands are left out (and the usage error says why)."""
    app = typer.Typer(
        name="corecall",
        help="Click-to-call for outbound call centres: Telegram bot, Asterisk, plugins.",
        epilog="Plugins can add commands: `corecall COMMAND --help` works for them too.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_global_options)
    core_commands.register(app)
    admin_commands.register(app)
    telephony_commands.register(app)
    bot_commands.register(app)
    policy_commands.register(app)
    ops_commands.register(app)
    command = _command_name(argv)
    if command is not None and command not in _core_names(app):
        try:
            state.app().plugins.register_commands(app)
        except CorecallError as exc:
            state.plugin_commands_error = exc
    return app


def _core_names(app: typer.Typer) -> set[str]:
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands
             if c.callback is not None}  # fmt: skip
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def _command_name(argv: Sequence[str]) -> str | None:
    """The command named on the command line (after the global options), if any."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--config", "-c"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _config_option(argv: Sequence[str]) -> str | None:
    """The value of ``--config``/``-c`` before the command name (typer parses it later)."""
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            break  # the command name: options after it are the command's
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn errors into exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        state.config_path = _config_option(args)
        app = build_cli(args)
        result = app(args=args, prog_name="corecall", standalone_mode=False)
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
            if state.plugin_commands_error is not None and "No such command" in str(exc):
                err_console.print(
                    f"note: plugin commands are unavailable: {state.plugin_commands_error}"
                )
            return code
        # A bug: show the traceback, redacted like every line this process prints.
        sys.stderr.write(state.redactor.redact(traceback.format_exc()))
        return 1
    finally:
        state.close()
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
