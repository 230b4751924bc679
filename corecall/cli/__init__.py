"""The operator CLI (typer). ``corecall --help`` lists the commands.

Exit codes: 0 success, 1 refused or failed, 2 usage error. Errors corecall raises on
purpose are printed as one clear line, never as a traceback.

The typer app is built afresh for every invocation (:func:`build_cli`): the core's commands,
then the commands of every enabled plugin (``corecall_register_commands``), which needs the
configuration named by ``--config`` loaded first.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import typer
from rich.text import Text

from corecall.cli import (
    admin_commands,
    bot_commands,
    core_commands,
    policy_commands,
    telephony_commands,
)
from corecall.cli.common import err_console, state
from corecall.errors import CorecallError


def _global_options(
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="Configuration file (default: $CORECALL_CONFIG, else the per-user config dir).",
        metavar="FILE",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens."),
) -> None:
    state.config_path = config
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def build_cli(*, plugin_commands: bool = True) -> typer.Typer:
    """The ``corecall`` typer app: core commands, then (``plugin_commands``) those of the
    enabled plugins of the configuration ``state.config_path`` names. When that
    configuration cannot be loaded the core commands still work (they report the error
    themselves) and plugin commands are left out."""
    app = typer.Typer(
        name="corecall",
        help="Click-to-call for outbound call centres: Telegram bot, Asterisk, plugins.",
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
    if plugin_commands:
        try:
            state.app().plugins.register_commands(app)
        except CorecallError as exc:
            state.plugin_commands_error = exc
    return app


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
        app = build_cli()
        result = app(args=args, prog_name="corecall", standalone_mode=False)
    except CorecallError as exc:
        err_console.print(Text("error: ", style="bold red") + Text(str(exc)))
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
        raise
    finally:
        state.close()
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
