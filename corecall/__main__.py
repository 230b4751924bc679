"""``python -m corecall`` runs the CLI."""

from corecall.cli import run

run()
