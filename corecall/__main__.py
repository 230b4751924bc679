"""``python -m corecall`` runs the CLI."""

from corecall.cli import run

if __name__ == "__main__":
    run()
