"""``corecall call`` and ``corecall asterisk render|check``, run in-process like an operator."""

from __future__ import annotations

import re

import pytest
from corecall_testing import config_dict, write_toml
from corecall_testing.ami import MAIN_CID, ami_sections, server_of

from corecall.app import App
from corecall.cli import main
from corecall.config import load_config
from corecall.domain import EndReason


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``cli(sections, *args)`` writes a config with ``sections`` and runs the CLI on it."""

    def run(sections: dict, *args: str):
        path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path, **sections))
        monkeypatch.setenv("CORECALL_CONFIG", str(path))
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        run.config_path = path
        return code, out, err

    return run


def stored(cli):
    app = App(load_config(cli.config_path))
    try:
        return app.store.recent_calls(None, 10), app.store.audit_log(10)
    finally:
        app.close()


# ------------------------------------------------------------------------------ render


def test_render_prints_the_routes_trunks_and_hides_the_secret(cli):
    sections = ami_sections({"pbx1": server_of(port=15038, secret="a-long-enough-secret")})
    sections["trunks"]["main"]["provider_host"] = "198.51.100.7"
    code, out, err = cli(sections, "asterisk", "render")
    assert code == 0, err
    assert "[corecall-main]" in out and "[corecall-dev]" in out
    assert "match=198.51.100.7" in out
    assert "[trunks.dev] has no provider_host" in err  # told, not silently invented
    assert "[corecall-bridge]" in out and "Dial(PJSIP/" in out
    assert "a-long-enough-secret" not in out
    assert "port=15038" in out
    code, out, _ = cli(sections, "asterisk", "render", "--only", "manager", "--show-secret")
    assert code == 0 and "secret=a-long-enough-secret" in out and "[corecall-main]" not in out


def test_render_without_asterisk_routes_says_what_to_configure(cli):
    code, _out, err = cli({}, "asterisk", "render")
    assert code == 1 and "asterisk_ami" in err


def test_check_without_asterisk_routes_says_so(cli):
    code, _out, err = cli({}, "asterisk", "check")
    assert code == 1 and "nothing to check" in err


def test_check_reports_an_unreachable_ami_with_its_fix(cli):
    code, out, _err = cli(ami_sections({"pbx1": server_of(port=1)}), "asterisk", "check")
    assert code == 1
    assert "PROBLEM" in out and "AMI not reachable" in out and "connection refused" in out
    assert "fix: start Asterisk" in out and "port=1" in out


def test_call_command_on_a_simulated_trunk_is_recorded_as_an_operator_call(cli):
    code, out, err = cli({}, "call", "--route", "M", "--agent-phone", "+12125550111",
                         "--target", "(212) 555-0123")  # fmt: skip
    assert code == 0, out + err
    assert "connected" in out and "ended: completed" in out
    calls, audit = stored(cli)
    assert (calls[0].agent_id, calls[0].agent_phone, calls[0].route_code) == (
        0, "+12125550111", "M",
    )  # fmt: skip
    assert (audit[0].action, audit[0].subject) == ("call.operator", calls[0].id)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent-phone", "+12125550111", "--target", "911"], "refused (emergency)"),
        (["--agent-phone", "+19005550111", "--target", "+12125550123"], "refused "
         "(agent_phone_invalid)"),
        (["--agent-phone", "+12125550111\r\nAction: x", "--target", "+12125550123"],
         "refused (agent_phone_invalid)"),
    ],
)  # fmt: skip
def test_call_command_refusals_dial_and_record_nothing(cli, args, message):
    code, _out, err = cli({}, "call", "--route", "M", *args)
    assert code == 1 and message in err
    calls, audit = stored(cli)
    assert calls == [] and audit == []


def test_call_command_names_the_offered_routes(cli):
    code, _out, err = cli({}, "call", "--route", "X", "--agent-phone", "+1", "--target", "+1")
    assert code == 1 and "'X' is not offered" in err and "M" in err


def test_call_command_reports_a_failed_call_with_exit_1(cli):
    code, _out, err = cli({}, "call", "--route", "M", "--agent-phone", "+12125550486",
                          "--target", "+12125550123")  # fmt: skip
    assert code == 1 and "failed: agent_busy" in err


def test_call_command_shows_every_stage_on_a_simulated_trunk(cli):
    code, out, err = cli({}, "call", "--route", "M", "--agent-phone", "+12125550111",
                         "--target", "+12125550123")  # fmt: skip
    assert code == 0, out + err
    states = re.findall(r"^\s+[\d.]+s  (\w+)", out, flags=re.M)
    assert states == [
        "dialing_agent", "agent_ringing", "agent_answered", "awaiting_confirmation",
        "dialing_target", "target_ringing", "connected", "ended",
    ]  # fmt: skip
    assert "agent id 0" not in out or "operator test call" in out


def test_a_late_watcher_still_prints_every_stage_the_call_passed():
    """The kind behind a flaky lab run: the watcher attached after three stages had passed
    (busy machine); the lines come from the record's stage times, not from updates seen."""
    import datetime as dt

    import attrs

    from corecall.cli.telephony_commands import _stage_lines
    from corecall.domain import STAGE_TIMESTAMP_FIELD, CallRecord, CallState

    FIRST_THREE = ("dialing_agent_at", "agent_ringing_at", "agent_answered_at")
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stamps = {field: t0 + dt.timedelta(seconds=i + 1)
              for i, field in enumerate(STAGE_TIMESTAMP_FIELD.values())}  # fmt: skip
    record = CallRecord(id="c1", agent_id=0, agent_phone="+12125550111", target="+12125550123",
                        route_code="M", trunk="main", caller_id="+12125550100",
                        state=CallState.AGENT_ANSWERED, created_at=t0,
                        **{k: v for k, v in stamps.items() if k in FIRST_THREE})  # fmt: skip
    lines, shown = _stage_lines(record, CallState.QUEUED.order)
    assert [line.split()[1] for line in lines] == [
        "dialing_agent", "agent_ringing", "agent_answered",
    ]  # fmt: skip
    assert lines[0].strip().startswith("1.00s")
    ended = attrs.evolve(record, **stamps, state=CallState.ENDED, reason=EndReason.COMPLETED)
    lines, _ = _stage_lines(ended, shown)
    assert [line.split()[1].rstrip(":") for line in lines] == [
        "awaiting_confirmation", "dialing_target", "target_ringing", "connected", "ended",
    ]  # fmt: skip
    # A route with confirm = "none" never waited for a key: no such line.
    lines, _ = _stage_lines(ended, shown, confirms=False)
    assert [line.split()[1].rstrip(":") for line in lines] == [
        "dialing_target", "target_ringing", "connected", "ended",
    ]  # fmt: skip


def test_call_command_timeout_says_and_records_that_corecall_hung_up(cli):
    sections = {"trunks": {"main": {"driver": "simulated", "timeout_seconds": 30,
                                    "ring_seconds": 0.01, "answer_seconds": 0.02}}}  # fmt: skip
    code, out, err = cli(sections, "call", "--route", "M", "--agent-phone", "+12125550111",
                         "--target", "+12125550408", "--timeout", "1")  # fmt: skip
    assert code == 1
    assert "corecall is hanging up" in out
    assert "ended: timed_out (corecall hung up after 1s (--timeout))" in out
    assert "agent hung up" not in out + err
    assert "failed: timed_out" in err
    calls, _audit = stored(cli)
    assert calls[0].reason is EndReason.TIMED_OUT
    assert "corecall hung up" in calls[0].detail


def test_call_help_shows_the_timeout_default():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "corecall", "call", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": ""})  # fmt: skip
    assert "none: follow the call until it ends" in " ".join(proc.stdout.split())
    assert "Examples:" in proc.stdout


# ------------------------------------------------------------------------------ against the lab


@pytest.mark.lab
def test_call_command_follows_a_real_call_to_the_end(fresh_lab, cli):
    lab = fresh_lab
    agent, target = "+18125550111", "+18125551123"
    code, out, err = cli(
        ami_sections({"pbx1": server_of(lab)}),
        "call", "--route", "M", "--agent-phone", agent, "--target", "(812) 555-1123",
    )  # fmt: skip
    assert code == 0, out + err
    states = re.findall(r"^\s+[\d.]+s  (\w+)", out, flags=re.M)
    assert states == [
        "dialing_agent", "agent_ringing", "agent_answered", "awaiting_confirmation",
        "dialing_target", "target_ringing", "connected", "ended",
    ]  # fmt: skip
    assert "ended: completed" in out and "talked 1." in out
    assert [tuple(i) for i in lab.invites("corecall-main")] == [
        (agent, MAIN_CID), (target, MAIN_CID),
    ]  # fmt: skip
    calls, audit = stored(cli)
    assert (calls[0].agent_id, calls[0].target, calls[0].reason) == (
        0, target, EndReason.COMPLETED,
    )  # fmt: skip
    assert audit[0].action == "call.operator" and audit[0].subject == calls[0].id
    assert audit[0].actor.startswith("cli:")


@pytest.mark.lab
def test_call_command_exits_1_with_the_reason(fresh_lab, cli):
    lab = fresh_lab
    sections = ami_sections({"pbx1": server_of(lab)})
    code, _out, err = cli(
        sections, "call", "-r", "D", "--agent-phone", "+18135550999", "--target", "+18135550486"
    )
    assert code == 1 and "target_busy" in err
    code, _out, err = cli(
        sections, "call", "-r", "M", "--agent-phone", "+18135550999", "--target", "911"
    )
    assert code == 1 and "refused (emergency)" in err
    assert lab.invites("corecall-main") == []  # nothing dialed for the refused call
    assert len(lab.invites("corecall-dev")) == 2


@pytest.mark.lab
def test_call_command_hangs_up_after_its_timeout(fresh_lab, cli):
    code, out, err = cli(
        ami_sections({"pbx1": server_of(fresh_lab)}),
        "call", "-r", "M", "--agent-phone", "+18145550999", "--target", "+18155550999",
        "--timeout", "1.5",
    )  # fmt: skip
    assert code == 0, out + err  # it connected, and corecall ended it at --timeout
    assert "no end after 1.5s: corecall is hanging up" in out
    assert "ended: timed_out (corecall hung up after 1.5s (--timeout))" in out
    assert "connected; corecall hung up after 1.5s" in out
    assert len(fresh_lab.invites("corecall-main")) == 2


@pytest.mark.lab
def test_asterisk_check_passes_on_the_lab_and_explains_each_problem(own_lab, cli):
    lab = own_lab()
    good = ami_sections({"pbx1": server_of(lab)})

    # Without the two functions the check uses, it says which module to load.
    lab.cli("module unload func_pjsip_endpoint.so")
    lab.cli("module unload func_dialplan.so")
    code, out, _ = cli(good, "asterisk", "check")
    assert code == 1
    assert "func_pjsip_endpoint" in out and "func_dialplan" in out
    lab.cli("module load func_pjsip_endpoint.so")
    lab.cli("module load func_dialplan.so")

    code, out, err = cli(good, "asterisk", "check")
    assert code == 0, out + err
    assert "PROBLEM" not in out
    assert "PJSIP endpoint 'corecall-main' exists" in out
    assert "PJSIP endpoint 'corecall-dev' exists" in out
    assert "bridge context 'corecall-bridge' exists" in out
    assert "privileges suffice" in out

    wrong = ami_sections({"pbx1": server_of(lab, secret="not-the-secret")})
    code, out, _ = cli(wrong, "asterisk", "check")
    assert code == 1
    assert "refused (Authentication failed)" in out and "same secret" in out

    missing = ami_sections({"pbx1": server_of(lab)}, dev=("pbx1", "corecall-nope"))
    code, out, _ = cli(missing, "asterisk", "check")
    assert code == 1
    assert "PJSIP endpoint 'corecall-nope' does not exist (route D, trunk dev)" in out
    assert "pjsip.conf" in out and "PJSIP endpoint 'corecall-main' exists" in out

    other_context = ami_sections({"pbx1": server_of(lab, context="corecall-other")})
    code, out, _ = cli(other_context, "asterisk", "check")
    assert code == 1 and "'corecall-other'" in out and "extensions.conf" in out


# ------------------------------------------------------------------------------ check: config first


@pytest.mark.parametrize(
    ("sections", "words"),
    [
        ({"trunks": {"main": {"driver": "asterisk"}}}, ["driver 'asterisk'", "available:"]),
        ({"plugins": {"disabled": ["route_main", "route_dev"]}}, ["no route is offered",
                                                                  "route M is configured"]),
        ({"plugins": {"disabled": ["route_dev"]}}, ["route D is configured"]),
    ],
)  # fmt: skip
def test_check_fails_with_the_true_cause_when_a_call_would_fail(cli, sections, words):
    code, out, err = cli(sections, "asterisk", "check")
    assert code == 1, out + err
    assert "looks right" not in out
    for word in words:
        assert word in " ".join(out.split()), out


def test_check_names_a_disabled_trunk_driver_plugin(cli):
    """`asterisk check` is the Asterisk plugin's command: with the plugin disabled the
    command is unknown, and the error names the disabled plugin and what it breaks."""
    sections = ami_sections({"pbx1": server_of(port=1)})
    sections["plugins"] = {"disabled": ["asterisk_ami"]}
    code, out, err = cli(sections, "asterisk", "check")
    assert code == 2 and "looks right" not in out
    err = " ".join(err.split())
    assert "No such command 'asterisk'" in err
    assert "disabled plugins may add it: asterisk_ami (corecall plugins enable NAME)" in err
    assert "uses driver 'asterisk_ami', which no enabled plugin provides" in err
