"""The operator CLI (typer). ``corecall --help`` lists the commands.

Exit codes: 0 success, 1 refused or failed, 2 usage error, 130 interrupted. Errors corecall
raises on purpose are printed as one clear line. Anything unexpected is printed as one line
too, naming the file the full traceback was written to (``--debug`` prints it instead):
nothing surfaces as a bare "Aborted" or a traceback. Global options (``--config``,
``--debug``, ``--verbose``) are accepted before or after the command.

Start-up is kept short: the command modules import what a command needs (Telethon,
peewee, the plugins and their drivers, rich) inside the command, so ``corecall --version`` and
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
from collections.abc import Sequence
from typing import Any

import typer

from corecall import redaction
from corecall.cli import (
    admin_commands,
    bot_commands,
    core_commands,
    ops_commands,
    policy_commands,
    telephony_commands,
)
from corecall.cli.common import err_console, hoist_global_options, report_unexpected, state
from corecall.cli.help import tidy
from corecall.errors import CorecallError
from corecall.logs import FORMATS, setup_logging


def _print_version(value: bool) -> None:
    if not value:
        return
    from corecall.cli.version import version_lines

    for line in version_lines():
        sys.stdout.write(line + "\n")
    raise typer.Exit(0)


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
        help="Show corecall's, its plugins' and phonenumbers' versions, then exit.",
    ),
) -> None:
    state.config_path = config
    state.debug = debug
    state.verbose = verbose or debug
    if log_format not in FORMATS:
        raise typer.BadParameter(
            f"{log_format!r} is not a log format; use text or json", param_hint="--log-format"
        )
    setup_logging(
        logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING, log_format
    )
    state.redactor.add_all(redaction.environment_secrets())
    redaction.install(state.redactor)  # no log line of this process shows a secret


def build_cli(argv: Sequence[str] = ()) -> typer.Typer:
    """The ``corecall`` typer app for the command line ``argv``: the core's commands, plus,
    when ``argv`` names a command the core does not have, those of the enabled plugins of
    the configuration ``state.config_path`` names. When that configuration cannot be loaded
    plugin commands are left out (and the usage error says why)."""
    app = typer.Typer(
        name="corecall",
        help="Click-to-call for outbound call centres: Telegram bot, Asterisk, plugins.\n\n"
        "Global options (--config, --debug, --verbose) may also be given after the command.",
        epilog="Plugins add more commands (e.g. asterisk, dnc, webhooks): `corecall plugins list` "
        "names them; `corecall COMMAND --help` works for them too.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        options_metavar="[OPTIONS]",
        # Help is re-flowed to the terminal's width (click stops at 80 by default), up to 120.
        context_settings={"max_content_width": 120},
    )
    app.callback()(_global_options)
    core_commands.register(app)
    admin_commands.register(app)
    telephony_commands.register(app)
    bot_commands.register(app)
    policy_commands.register(app)
    ops_commands.register(app)
    command = _command_name(argv)
    if command is not None and command not in core_command_names(app):
        try:
            state.app().plugins.register_commands(app)
        except CorecallError as exc:
            state.plugin_commands_error = exc
    return app


def core_command_names(app: typer.Typer) -> set[str]:
    """The top-level command and group names registered on ``app`` (a built CLI)."""
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
    args = sys.argv[1:] if argv is None else list(argv)
    command: Any = None
    try:
        args = hoist_global_options(args)
        state.config_path = _config_option(args)
        app = build_cli(args)
        command = tidy(typer.main.get_command(app))
        result = command.main(args=args, prog_name="corecall", standalone_mode=False)
    except CorecallError as exc:
        from rich.text import Text

        from corecall.fields import tame_message

        message = tame_message(state.redactor.redact(str(exc)))
        err_console.print(Text("error: ", style="bold red") + Text(message))
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

            from corecall.fields import tame_message

            message = tame_message(state.redactor.redact(str(cause)))
            err_console.print(Text("error: ", style="bold red") + Text(message))
            return cause.exit_code
        return report_unexpected(cause, _plugin_command(args, command))
    except Exception as exc:
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):  # typer's usage errors
            usage_message = getattr(exc, "message", None)
            if isinstance(usage_message, str):
                from corecall.fields import tame_message

                exc.message = tame_message(usage_message)  # type: ignore[attr-defined]  # click echoes what was typed
            if "No such command" in str(exc):
                return _unknown_command(_command_name(args), show, code)
            show()
            return code
        return report_unexpected(exc, _plugin_command(args, command))
    finally:
        state.close()
    return result if isinstance(result, int) else 0


def _plugin_command(argv: Sequence[str], root: Any) -> str | None:
    """ "plugin 'P' (distribution version) failed in its command `corecall NAME SUB`" when
    the command on the command line was added by a plugin (recorded as it registered its
    commands), else None. Read once the command ran: the plugins are loaded by then."""
    command = _command_name(argv)
    app = state._app
    if app is None or command is None or command not in app.plugins.command_owners:
        return None
    owner = app.plugins.command_owners[command]
    info = app.plugins.infos.get(owner)
    version = f" ({info.distribution} {info.version})" if info is not None else ""
    return f"plugin {owner!r}{version} failed in its command `{_command_path(argv, root)}`"


def _command_path(argv: Sequence[str], root: Any) -> str:
    """``corecall`` and the command and subcommand names on the command line (not the
    arguments: `corecall leads import`, not `corecall leads import file.csv`). ``root`` is
    the click command typer built (its vendored click: read by ``commands`` only)."""
    words = ["corecall"]
    names = iter(a for a in argv[argv.index(_command_name(argv) or "") :] if a[:1] != "-")
    node = root
    for name in names:
        if name not in getattr(node, "commands", {}):
            break
        words.append(name)
        node = node.commands[name]
    return " ".join(words)


def _unknown_command(command: str | None, show, code: int) -> int:
    """A command neither the core nor an enabled plugin has. When the configuration could
    not be loaded, that error is the cause (plugin commands need it): it is printed as the
    error. Otherwise the usage error, and the disabled plugins that might add the command,
    with what a disabled plugin breaks (e.g. a trunk driver that routes use)."""
    from rich.text import Text

    cause = state.plugin_commands_error
    if isinstance(cause, CorecallError):
        from corecall.fields import tame_message

        message = tame_message(state.redactor.redact(str(cause)))
        err_console.print(Text("error: ", style="bold red") + Text(message))
        err_console.print(
            f"({command!r} is not a core command; plugin commands are unavailable until the "
            "configuration loads)"
        )
        return cause.exit_code
    show()
    if cause is not None:
        err_console.print(f"note: plugin commands are unavailable: {cause}")
        return code
    try:
        app = state.app()
        disabled = sorted(app.disabled_plugins)
        problems = app.call_problems() if disabled else []
    except CorecallError:
        return code
    if disabled:
        err_console.print(
            f"note: disabled plugins may add it: {', '.join(disabled)} "
            "(corecall plugins enable NAME)"
        )
    for what, fix in problems:
        err_console.print(f"PROBLEM  {what}\n         fix: {fix}")
    return code


def run() -> None:
    sys.exit(main())
