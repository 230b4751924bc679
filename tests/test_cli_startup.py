"""``corecall --version`` and ``--help`` start fast: they import none of the heavy parts.

The figures (start-up time and peak RSS against ``python -c "import typer"``) are measured
by ``bench/startup_bench.py`` into docs/benchmarks.md; this test keeps the cause fixed: a
command module that imports Telethon, panoramisk, peewee, the plugins or phonenumbers' data
at module level makes every ``corecall`` invocation pay for it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import corecall
from corecall.cli import bot_commands

HEAVY = (
    "telethon", "panoramisk", "peewee", "psycopg2", "phonenumbers", "phonenumbers.geodata",
    "pluggy", "corecall.plugins", "corecall.store", "corecall.numbers", "corecall.app",
    "corecall.conversation", "asyncio", "attrs",
)  # fmt: skip
#: What typer itself loads to render help (rich, its adapters): not ours to avoid.
HELP_ONLY = ("rich",)

PROBE = """
import json, sys
from corecall.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}),
      file=sys.stderr)
"""


def _probe(*args: str) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY + HELP_ONLY,), *args], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    return json.loads(proc.stderr.strip().splitlines()[-1]), proc.stdout


def test_version_prints_the_version_and_loads_nothing_heavy():
    result, out = _probe("--version")
    assert result["code"] == 0
    # issue #10: the plugin distributions' and phonenumbers' versions follow, read from
    # installed metadata (nothing imported).
    assert out.splitlines()[0] == f"corecall {corecall.__version__}"
    assert out.splitlines()[-1].startswith("phonenumbers ")
    assert result["loaded"] == []


@pytest.mark.parametrize("args", [["--help"], ["agents", "--help"]])
def test_help_loads_no_driver_store_bot_or_number_data(args):
    result, out = _probe(*args)
    assert result["code"] == 0 and "Usage" in out
    # typer renders help with rich; nothing of corecall's heavy parts may come along.
    assert [m for m in result["loaded"] if m not in HELP_ONLY] == []


def test_a_plugin_commands_help_loads_no_driver_library_or_bot():
    """``corecall asterisk`` is the Asterisk plugin's command: finding it loads the plugins,
    but neither the AMI library (imported when a link is built) nor Telegram."""
    result, out = _probe("asterisk", "--help")
    assert result["code"] == 0 and "render" in out and "check" in out
    assert "panoramisk" not in result["loaded"] and "telethon" not in result["loaded"]


def test_the_cli_wait_default_is_the_consoles():
    from corecall.console import DEFAULT_WAIT

    assert bot_commands.DEFAULT_WAIT == DEFAULT_WAIT


def test_number_policy_does_not_load_phonenumbers_geocoding_data():
    """98 MiB of RSS the bot never uses (country names come from the locale table alone)."""
    code = (
        "import sys; from corecall.numbers import check_number, _country_name;"
        "assert _country_name('DE') == 'Germany';"
        "print('phonenumbers.geodata' in sys.modules, 'phonenumbers.geocoder' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr
