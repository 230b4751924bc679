"""``corecall call`` and ``corecall asterisk render|check``, run in-process like an operator."""

from __future__ import annotations

import os
import re
import stat
import subprocess

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


def test_render_prints_the_routes_trunks_and_masks_the_secret(cli):
    sections = ami_sections({"pbx1": server_of(port=15038, secret="a-long-enough-secret")})
    sections["trunks"]["main"]["provider_host"] = "198.51.100.7"
    code, out, err = cli(sections, "asterisk", "render")
    assert code == 0, err
    assert "[corecall-main]" in out and "[corecall-dev]" in out
    assert "match=198.51.100.7" in out
    assert "[trunks.dev] has no provider_host" in err  # told, not silently invented
    assert "[corecall-bridge]" in out and "Dial(PJSIP/" in out
    assert "port=15038" in out
    assert "\nsecret=***\n" in out and "--output-dir DIR` writes it" in out
    assert "a-long-enough-secret" not in out + err
    code, out, err = cli(sections, "asterisk", "render", "--only", "manager", "--show-secret")
    assert code == 2 and "a-long-enough-secret" not in out + err
    assert "never prints a secret" in err and "--output-dir" in err
    for bad in (("--only", "foo"), ("--sip-bind", "garbage"), ("--sip-bind", "1.2.3.4:5060\nx")):
        code, out, err = cli(sections, "asterisk", "render", *bad)
        assert code == 2 and out == "" and err.count("\n") == 1, (bad, out, err)


# ------------------------------------------------------------------------------ render --output-dir

SECRET = "a-long-enough-secret-0640"


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_render_output_dir_writes_three_files_0640_with_the_secret_only_inside(
    cli, tmp_path, umask
):
    out_dir = tmp_path / "asterisk-etc"
    out_dir.mkdir()
    old = out_dir / "manager.conf"
    old.write_text("secret=old\n")
    old.chmod(0o644)  # an existing world-readable file is replaced, not rewritten in place
    old_inode = old.stat().st_ino
    sections = ami_sections({"pbx1": server_of(port=15038, secret=SECRET)})
    previous = os.umask(umask)
    try:
        code, out, err = cli(sections, "-v", "asterisk", "render", "--output-dir", str(out_dir))
    finally:
        os.umask(previous)
    assert code == 0, out + err
    files = {p.name: p for p in out_dir.iterdir()}
    assert sorted(files) == ["extensions.conf", "manager.conf", "pjsip.conf"]  # no temp left
    assert {name: mode_of(p) for name, p in files.items()} == dict.fromkeys(files, 0o640)
    assert files["manager.conf"].stat().st_ino != old_inode
    assert f"\nsecret={SECRET}\n" in files["manager.conf"].read_text()
    assert "[corecall-main]" in files["pjsip.conf"].read_text()
    assert "[corecall-bridge]" in files["extensions.conf"].read_text()
    # It says what it wrote, where the secret went, and never shows it (nor does the log).
    assert (
        f"wrote {out_dir / 'manager.conf'} (mode 0640, with the AMI secret of server 'pbx1')" in out
    )
    assert f"wrote {out_dir / 'pjsip.conf'} (mode 0640)" in out
    assert SECRET not in out + err


def test_render_output_dir_is_all_or_nothing(cli, tmp_path, monkeypatch):
    """The disk fills up while extensions.conf is written (the lowest seam: the temporary
    file's write): no file is changed, not even pjsip.conf written just before, and no
    temporary file is left behind."""
    from corecall_asterisk import output

    out_dir = tmp_path / "asterisk-etc"
    out_dir.mkdir()
    for name in ("pjsip.conf", "extensions.conf", "manager.conf"):
        (out_dir / name).write_text(f"; old {name}\n")
    real_write_temp = output._write_temp

    def disk_full_on_extensions(path, text, mode):
        if path.name == "extensions.conf":
            raise OSError(28, "No space left on device")
        return real_write_temp(path, text, mode)

    monkeypatch.setattr(output, "_write_temp", disk_full_on_extensions)
    sections = ami_sections({"pbx1": server_of(port=15038, secret=SECRET)})
    code, out, err = cli(sections, "asterisk", "render", "--output-dir", str(out_dir))
    # The path is shown whole, or (a long temporary directory) cut in the middle, file name kept.
    assert code == 1 and re.search(
        r"extensions\.conf('? \(\d+ characters\))?: No space left on device; no file was changed",
        err,
    ), err
    assert "wrote" not in out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "extensions.conf", "manager.conf", "pjsip.conf"
    ]  # fmt: skip
    for name in ("pjsip.conf", "extensions.conf", "manager.conf"):
        assert (out_dir / name).read_text() == f"; old {name}\n"


def test_render_output_dir_with_several_servers_writes_one_directory_each(cli, tmp_path):
    out_dir = tmp_path / "etc"
    out_dir.mkdir()
    sections = ami_sections(
        {"pbx1": server_of(secret=SECRET), "pbx2": server_of(port=5039, secret=SECRET + "2")},
        dev=("pbx2", "corecall-dev"),
    )
    code, out, err = cli(sections, "asterisk", "render", "--output-dir", str(out_dir),
                         "--only", "manager")  # fmt: skip
    assert code == 0, out + err
    assert sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.conf")) == [
        "pbx1/manager.conf", "pbx2/manager.conf",
    ]  # fmt: skip
    assert "port=5039" in (out_dir / "pbx2" / "manager.conf").read_text()
    assert SECRET not in out + err


def _unwritable(path, monkeypatch):
    """Make ``path`` a directory this process cannot write into, for real: mode 0500 for a
    normal user; as root (who ignores modes) the immutable attribute."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        return lambda: path.chmod(0o700)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)
    # A file system without the immutable attribute: the permission check is the seam.
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(path) else real(p, m))
    return lambda: None


def test_render_output_dir_refuses_a_missing_file_or_unwritable_directory(
    cli, tmp_path, monkeypatch
):
    sections = ami_sections({"pbx1": server_of(secret=SECRET)})
    missing = tmp_path / "no-such-dir"
    code, out, err = cli(sections, "asterisk", "render", "--output-dir", str(missing))
    assert code == 1 and "no such directory; create it first" in err
    assert not missing.exists() and SECRET not in out + err  # nothing created

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code, out, err = cli(sections, "asterisk", "render", "--output-dir", str(a_file))
    assert code == 1 and "not a directory" in err

    locked = tmp_path / "locked"
    locked.mkdir()
    undo = _unwritable(locked, monkeypatch)
    try:
        code, out, err = cli(sections, "asterisk", "render", "--output-dir", str(locked))
    finally:
        undo()
    assert code == 1 and "not writable by this user" in " ".join(err.split())
    assert list(locked.iterdir()) == [] and SECRET not in out + err


def test_render_output_dir_refuses_to_write_manager_conf_without_a_secret(cli, tmp_path):
    out_dir = tmp_path / "etc"
    out_dir.mkdir()
    sections = ami_sections({"pbx1": server_of(secret="")})
    code, _out, err = cli(sections, "asterisk", "render", "--output-dir", str(out_dir))
    assert code == 1 and "no AMI secret configured" in err and "CORECALL_AMI_SECRET_PBX1" in err
    assert list(out_dir.iterdir()) == []  # nothing half-written
    code, out, err = cli(sections, "asterisk", "render", "--output-dir", str(out_dir),
                         "--only", "pjsip")  # fmt: skip
    assert code == 0, out + err
    assert [p.name for p in out_dir.iterdir()] == ["pjsip.conf"]


@pytest.mark.parametrize("typo", ["provder_host", "endpiont", "Server", "provider_prot"])
@pytest.mark.parametrize("command", [("asterisk", "render"), ("asterisk", "check"),
                                     ("call", "--route", "M", "--agent-phone", "+12125550111",
                                      "--target", "+12125550123")])  # fmt: skip
def test_a_typo_in_an_asterisk_trunk_key_is_refused_with_the_known_keys(cli, typo, command):
    sections = ami_sections({"pbx1": server_of(port=1)})
    sections["trunks"]["main"][typo] = "198.51.100.7"
    code, out, err = cli(sections, *command)
    assert code == 1, out + err
    err = " ".join(err.split())
    assert (
        f"[trunks.main.{typo}] unknown key in [trunks.main]; expected one of: driver, "
        "endpoint, provider_host, provider_port, server" in err
    )


def test_init_documents_the_asterisk_trunk_keys_and_they_work_uncommented(
    tmp_path, monkeypatch, capsys
):
    """The starter config names every key of an asterisk_ami trunk (provider_host and
    provider_port included); set as documented, render uses them."""
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "corecall.toml"
    assert main(["--config", str(path), "init"]) == 0
    text = path.read_text()
    section = text.split('# Keys of a [trunks.X] table with driver = "asterisk_ami"')[1]
    section = section.split("\n\n")[0]
    for key in ("server", "endpoint", "provider_host", "provider_port"):
        assert f"\n# {key} = " in section, section
    assert "# [plugins.asterisk_ami.servers.NAME]" in text
    # The operator switches trunk main to Asterisk, as the comments describe.
    main_trunk = text[text.index("[trunks.main]\n") :].split("\n\n")[0]
    text = text.replace(
        main_trunk,
        '[plugins.asterisk_ami.servers.pbx1]\n\n[trunks.main]\ndriver = "asterisk_ami"\n'
        'server = "pbx1"\nendpoint = "corecall-main"\nprovider_host = "198.51.100.9"\n'
        "provider_port = 5080",
    )
    path.write_text(text)
    capsys.readouterr()
    assert main(["--config", str(path), "asterisk", "render", "--only", "pjsip"]) == 0
    out = capsys.readouterr().out
    assert "match=198.51.100.9" in out and "contact=sip:198.51.100.9:5080" in out


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
