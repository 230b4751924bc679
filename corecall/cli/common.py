"""What every CLI command shares: the lazily built App, consoles, JSON output, the actor."""

from __future__ import annotations

import getpass
import json
import sys
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
    """Who is acting, for the audit log."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"cli:{user}"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
