"""``corecall demo``, ``corecall console`` and ``corecall run`` (conversation front ends)."""

from __future__ import annotations

import typer

from corecall.cli.common import console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo() -> None:
    """Run the zero-config demo (coming soon: the conversation front ends land next)."""
    console.print("corecall demo: coming soon (the conversation front ends are not built yet).")
