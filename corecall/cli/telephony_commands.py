"""``corecall call`` and ``corecall asterisk ...`` (telephony)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Telephony commands are added here by the telephony work (issue 3)."""
