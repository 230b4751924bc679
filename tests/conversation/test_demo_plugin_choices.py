"""``corecall demo`` honours the operator's plugin switches (tester5: a plugin switched off
with ``corecall plugins disable`` was imported and loaded by the demo anyway, so one that
crashes on import could not be switched off for it): plugins disabled in the configured
data directory's plugins.json or in [plugins] disabled are off in the demo too, except the
ones the demo is made of, which it loads and names."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from corecall_testing import install_distribution, write_toml

from corecall.app import App
from corecall.console import run_console_async
from corecall.demo import (
    DEMO_AGENT_ID,
    DEMO_DNC_NUMBER,
    DEMO_PARTS,
    banner,
    demo_config,
    operator_choices,
    prepare_demo,
)
from corecall.errors import ConfigError


def test_a_plugin_that_crashes_on_import_can_be_switched_off_for_the_demo(tmp_path):
    """The issue's instance, through the real program: `plugins disable`, then `demo`."""
    site, data = tmp_path / "site", tmp_path / "data"
    marker = tmp_path / "imported"
    install_distribution(site, "corecall-t5bad", {"t5_crash": "t5_crash_mod"}, {
        "t5_crash_mod": f"""
            open({str(marker)!r}, "a").write("imported\\n")
            raise RuntimeError("t5_crash cannot be imported")
        """,
    })  # fmt: skip
    env = {
        **os.environ, "PYTHONPATH": str(site), "CORECALL_DATA_DIR": str(data),
        "CORECALL_DEMO_SPEED": "50",
    }  # fmt: skip
    env.pop("CORECALL_CONFIG", None)

    def corecall(*args: str, script: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "corecall", *args], input=script, capture_output=True,
            text=True, env=env, timeout=90,
        )  # fmt: skip

    done = corecall("plugins", "disable", "t5_crash")
    assert done.returncode == 0, done.stderr
    assert json.loads((data / "plugins.json").read_text()) == {"disabled": ["t5_crash"]}
    marker.unlink(missing_ok=True)  # imported by the CLI before it was disabled

    done = corecall("demo", "--wait", "1", script="/start\n")
    assert done.returncode == 0, done.stderr
    assert not marker.exists()  # never imported
    assert "t5_crash" not in done.stderr and "cannot be imported" not in done.stderr
    assert (
        "Plugins switched off for corecall on this machine: t5_crash in "
        f"{data / 'plugins.json'}. Off in the demo too: t5_crash.\n"
    ) in done.stdout
    assert "you: /start\n" in done.stdout


@pytest.fixture
def operator_config(tmp_path):
    """An operator's configuration and data directory with plugins switched off both ways."""
    data = tmp_path / "operator"
    data.mkdir()
    (data / "plugins.json").write_text('{"disabled": ["policy_dnc", "simulated_pbx"]}')
    return write_toml(
        tmp_path / "corecall.toml",
        {"data_dir": str(data), "plugins": {"disabled": ["policy_repeat_calls", "route_dev"]}},
    )


def test_operator_choices_are_read_from_both_places(operator_config, tmp_path):
    choices = operator_choices(str(operator_config))
    assert choices.disabled == {"policy_dnc", "policy_repeat_calls"}
    assert choices.kept == {"simulated_pbx", "route_dev"} <= DEMO_PARTS.keys()
    assert choices.where == (
        f"policy_dnc, simulated_pbx in {tmp_path / 'operator' / 'plugins.json'}",
        "policy_repeat_calls, route_dev in [plugins] disabled",
    )
    assert choices.problem is None


async def test_the_demo_leaves_the_operators_disabled_plugins_off_and_says_so(
    operator_config, tmp_path
):
    choices = operator_choices(str(operator_config))
    app = App(demo_config(speed=50, data_dir=tmp_path / "demo", disabled=choices.disabled))
    try:
        prepare_demo(app)
        text = banner(app, choices)
        active = {name: app.plugins.is_active(name) for name in ("policy_dnc", "simulated_pbx")}
        out = io.StringIO()
        script = f"/route M\n/call {DEMO_DNC_NUMBER}\n"
        await run_console_async(
            app, DEMO_AGENT_ID, stdin=io.StringIO(script), stdout=out, interactive=False,
            wait=10,
        )  # fmt: skip
        calls = app.store.recent_calls(DEMO_AGENT_ID)
    finally:
        app.close()
    assert active == {"policy_dnc": False, "simulated_pbx": True}
    # the do-not-call policy is off: the demo's listed number is dialed, on the simulated PBX
    assert [c.target for c in calls] == [DEMO_DNC_NUMBER]
    assert "do-not-call" not in out.getvalue()
    assert (
        "Compliance checks refuse +1 808 555 0123 (outside calling hours in Honolulu); "
        "policy_dnc, policy_repeat_calls are switched off; see docs/compliance.md.\n"
    ) in text
    assert (
        "Off in the demo too: policy_dnc, policy_repeat_calls. The demo is made of route_dev "
        "(its route D), simulated_pbx (its simulated phone system), so it loads them anyway.\n"
    ) in text


def _demo_banner(tmp_path, choices) -> str:
    """The demo's opening text with the operator's ``choices`` applied."""
    app = App(demo_config(data_dir=tmp_path / "demo", disabled=choices.disabled))
    try:
        prepare_demo(app)
        return banner(app, choices)
    finally:
        app.close()


def test_nothing_switched_off_keeps_the_banner_as_it_was(tmp_path):
    choices = operator_choices(None)  # no configuration file, an empty data directory
    assert (choices.disabled, choices.kept, choices.where) == (frozenset(), frozenset(), ())
    text = _demo_banner(tmp_path, choices)
    assert (
        "Compliance checks refuse +1 808 555 0123 (outside calling hours in Honolulu), "
        "+1 212 555 0166 (do-not-call list) and any number called 3 times today (repeat-call "
        "cap); see docs/compliance.md.\nDemo data: "
    ) in text
    assert "switched off" not in text


def test_a_configuration_that_cannot_be_read_is_said_and_plugins_json_still_honoured(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))
    (tmp_path / "plugins.json").write_text('{"disabled": ["policy_dnc"]}')
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    choices = operator_choices(str(bad))
    assert choices.disabled == {"policy_dnc"}
    assert choices.problem is not None and "is not valid TOML" in choices.problem
    text = _demo_banner(tmp_path, choices)
    assert "Your configuration could not be read (" in text
    assert f"those disabled in {tmp_path / 'plugins.json'} are not." in text


def test_a_malformed_plugins_json_is_refused_as_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))
    (tmp_path / "plugins.json").write_text('["policy_dnc"]')
    with pytest.raises(ConfigError, match=r"plugins\.json"):
        operator_choices(None)
