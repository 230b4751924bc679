"""What every CLI command shares: the lazily built App, consoles, JSON output, the actor."""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corecall import redaction

if TYPE_CHECKING:
    from rich.console import Console

    from corecall.app import App


class _LazyConsole:
    """A rich Console made on first use: importing rich costs start-up time that
    ``corecall --version`` and ``--help`` should not pay."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        """The Console itself (for rich APIs that need one, e.g. ``Live(console=...)``)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# markup=False: agent names, numbers and config keys like [routes.M] are printed verbatim.
console = _LazyConsole(highlight=False, markup=False, soft_wrap=True)
err_console = _LazyConsole(stderr=True, highlight=False, markup=False, soft_wrap=True)


class _State:
    def __init__(self) -> None:
        self.config_path: str | None = None
        self.debug = False
        self.verbose = False
        self._app: App | None = None
        #: Every secret this process knows (environment, then config): hidden from every
        #: line it prints and logs (corecall.redaction).
        self.redactor = redaction.Redactor()
        #: Why plugin commands could not be added to this invocation (a config error).
        self.plugin_commands_error: Exception | None = None

    def app(self) -> App:
        if self._app is None:
            from corecall.app import App
            from corecall.config import load_config

            self.redactor.add_all(redaction.environment_secrets())
            config = load_config(self.config_path)
            self.redactor.add_all(config.secrets())
            self._app = App(config)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None
        self.plugin_commands_error = None

    def reload(self) -> App:
        """Forget the App built so far (e.g. after ``init`` wrote the file) and build anew."""
        self.close()
        return self.app()


state = _State()


def actor() -> str:
    """Who is acting, for the audit log: the account the command runs as, from the
    operating system (not $USER or $LOGNAME, which anyone can set), and who became it
    with sudo (``cli:root (sudo by alice)``); control characters replaced."""
    import pwd

    from corecall.fields import one_line

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    sudo_user = os.environ.get("SUDO_USER", "")
    if sudo_user and os.getuid() == 0:  # only root can have been reached through sudo
        user = f"{user} (sudo by {sudo_user})"
    return one_line(f"cli:{user}", ACTOR_SHOWN_CHARS)


#: How much of the acting account the audit keeps (see fields.ACTOR_MAX_CHARS).
ACTOR_SHOWN_CHARS = 100


#: The most rows a listing command shows at once (``--limit``).
LIST_LIMIT_MAX = 10_000


def limit_option(default: int, help: str = "How many, newest first.", *, least: int = 1) -> Any:
    """The ``--limit`` option of every listing command: ``least`` (1; 0 where a listing
    has a summary to show alone) to :data:`LIST_LIMIT_MAX`; outside it (a number SQLite
    cannot hold) is a usage error naming the range, exit 2."""
    import typer

    return typer.Option(default, "--limit", min=least, max=LIST_LIMIT_MAX, help=help)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- global options

#: Options of the top-level callback, accepted anywhere before ``--`` (people type
#: ``corecall agents list --config x.toml``): moved in front of the command.
_GLOBAL_WITH_VALUE = ("--config", "-c")
_GLOBAL_FLAGS = ("--debug", "--verbose", "-v")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the command to the front, keeping their order.

    Raises :class:`corecall.errors.UsageError` (exit 2) when the last word is a global
    option that takes a value (``corecall agents list --config``)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in _GLOBAL_WITH_VALUE:
            if i + 1 == len(args):  # left where it is, the command would call it unknown
                from corecall.errors import UsageError

                raise UsageError(f"option {arg} needs a value, e.g. {arg} /etc/corecall.toml")
            front += [arg, args[i + 1]]
            i += 2
            continue
        if arg.startswith("--config="):
            front.append(arg)
        elif arg in _GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


# --------------------------------------------------------------------------- unexpected errors


def error_log_path() -> Path:
    """Where unexpected errors' tracebacks go: ``<data_dir>/logs/cli-errors.log``."""
    from corecall.config import default_data_dir

    try:
        data_dir = state._app.config.data_dir if state._app is not None else default_data_dir()
    except Exception:  # pragma: no cover - never fail while reporting a failure
        data_dir = default_data_dir()
    return Path(data_dir) / "logs" / "cli-errors.log"


def report_unexpected(exc: BaseException, where_from: str | None = None) -> int:
    """One line on stderr (what failed, where the traceback is); the traceback with --debug.
    ``where_from`` names the plugin whose command raised, first (an operator must know
    whose bug it is): "plugin 'greeter' (corecall-greeter 1.0) failed in its command
    `corecall greet`: unexpected RuntimeError: ..."."""
    text = "".join(traceback.format_exception(exc))
    redactor = getattr(state, "redactor", None)
    if redactor is not None:  # no line this process prints or logs shows a secret
        text = redactor.redact(text)
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if redactor is not None:
        what = redactor.redact(what)
    from corecall.fields import tame_message

    what = "unexpected " + tame_message(what)
    if where_from is not None:
        what = f"{tame_message(where_from)}: {what}"
    if state.debug:
        sys.stderr.write(text)
        err_console.print(f"error: {what}")
        return 1
    where = None
    try:
        path = error_log_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            origin = f" ({where_from})" if where_from else ""
            fh.write(f"--- {stamp} corecall {' '.join(sys.argv[1:])}{origin}\n{text}\n")
        where = str(path)
    except OSError:
        pass
    tail = f"; full traceback in {where}" if where else ""
    err_console.print(f"error: {what}{tail} (run with --debug to print it)")
    return 1
