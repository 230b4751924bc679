"""``corecall demo``, ``corecall console`` and ``corecall run`` (the conversation front ends)."""

from __future__ import annotations

import typer

from corecall.cli.common import state
from corecall.fields import TELEGRAM_ID_MAX

#: Seconds ``demo`` and ``console`` wait at the end of piped input for live calls to end
#: (the same as :data:`corecall.console.DEFAULT_WAIT`; not imported from there so that
#: ``corecall --help`` does not load the conversation; a test keeps the two equal).
DEFAULT_WAIT = 60.0


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("console")(console)
    app.command("run")(run)


WAIT = typer.Option(
    DEFAULT_WAIT, "--wait", min=0, help="Seconds to wait at the end of input for live calls."
)


def demo(
    speed: float = typer.Option(
        None,
        "--speed",
        min=0.001,
        max=1000,  # corecall.demo.MAX_SPEED, written out: --help must not import the demo
        help="Run simulated calls this many times faster (default 1: a call takes ~10 s). "
        "Also $CORECALL_DEMO_SPEED.",
    ),
    reset: bool = typer.Option(False, "--reset", help="Forget the demo agent's route first."),
    wait: float = WAIT,
) -> None:
    """The zero-config demo: the bot's conversation in your terminal, simulated PBX.

    It has its own data and configuration; plugins switched off with `corecall plugins
    disable` (or [plugins] disabled) are off in the demo too.

    Scripted: printf '/settings\\n1\\n2\\n1\\n/call +12125550123\\n' | corecall demo
    """
    from corecall.demo import run_demo

    run_demo(speed=speed, reset=reset, wait=wait, config_path=state.config_path)


def console(
    as_: int = typer.Option(
        ...,
        "--as",
        metavar="TELEGRAM_ID",
        help="Talk as this Telegram user id.",
        min=1,
        max=TELEGRAM_ID_MAX,
    ),
    wait: float = WAIT,
) -> None:
    """The bot's conversation in a terminal, against the configured store and trunks.

    Buttons are numbered: type a number to press one. Scriptable: one input per line from a pipe.
    """
    from corecall.console import run_console

    run_console(state.app(), as_, wait=wait)


def run() -> None:
    """Run the Telegram bot with the configured trunk drivers (stop with SIGTERM/Ctrl-C).

    Needs CORECALL_BOT_TOKEN, CORECALL_API_ID and CORECALL_API_HASH, or the same in the config file.
    """
    from corecall.telegram import run_bot

    run_bot(state.app())
