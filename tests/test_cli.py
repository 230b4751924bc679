"""The operator CLI, run in-process through ``corecall.cli.main`` (and once as a program)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest
from corecall_testing import config_dict, write_toml

from corecall.cli import main


def run_json(cli, *args):
    code, out, _err = cli(*args, "--json")
    return code, json.loads(out)


def test_plugins_list_json(cli):
    code, rows = run_json(cli, "plugins", "list")
    assert code == 0
    by_name = {r["name"]: r for r in rows}
    for name in ("route_main", "route_dev", "store_sqlite", "store_postgres"):
        assert by_name[name]["enabled"] is True
        assert by_name[name]["distribution"] == "corecall-" + name.replace("_", "-")
    assert by_name["route_dev"]["kind"] == "route"
    assert "corecall_register_routes" in by_name["route_dev"]["hooks"]


def test_disable_and_enable_persist_and_change_routes(cli):
    assert cli("plugins", "disable", "route_dev")[0] == 0
    _, rows = run_json(cli, "plugins", "list")
    assert {r["name"]: r["enabled"] for r in rows}["route_dev"] is False
    code, _out, err = cli("number", "check", "+12125550123", "--route", "D")
    assert code == 1 and "route 'D' is not offered" in err and "M" in err
    assert cli("plugins", "enable", "route_dev")[0] == 0
    assert cli("number", "check", "+12125550123", "--route", "D")[0] == 0


TOGGLED = ["policy_dnc", "policy_calling_hours", "policy_repeat_calls", "metrics", "webhooks",
           "route_dev"]  # fmt: skip


def test_operators_toggling_plugins_at_the_same_moment_all_get_what_they_were_told(cli):
    """Each toggle read plugins.json, changed it and wrote it back: of 8 concurrent disables
    one survived, while all 8 printed 'disabled' and were audited as changes (tester5)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CORECALL_CONFIG": str(cli.config_path)}

    def at_once(verb: str) -> None:
        procs = [
            subprocess.Popen([sys.executable, "-m", "corecall", "plugins", verb, name], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in TOGGLED
        ]  # fmt: skip
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and f"{verb}d " in out, err

    at_once("disable")
    _, rows = run_json(cli, "plugins", "list")
    assert sorted(r["name"] for r in rows if not r["enabled"]) == sorted(TOGGLED)
    _, rows = run_json(cli, "audit")
    changes = [r for r in rows if r["action"] == "plugin.disable"]
    assert len(changes) == len(TOGGLED)
    assert all(r["detail"]["changed"] for r in changes)

    at_once("enable")
    _, rows = run_json(cli, "plugins", "list")
    assert [r["name"] for r in rows if not r["enabled"]] == []


def test_a_plugin_toggle_that_changes_nothing_says_so_and_audits_nothing(cli):
    """As for agents: a second disable said 'disabled …' again and wrote a second
    plugin.disable entry (changed=no); an enable the config file overrides said 'enabled'."""
    assert cli("plugins", "disable", "route_dev")[:2] == (
        0,
        "disabled route_dev; takes effect on next start\n",
    )
    _, audit_before = run_json(cli, "audit")
    assert cli("plugins", "disable", "route_dev") == (
        0,
        "route_dev was already disabled; nothing changed\n",
        "",
    )
    assert cli("plugins", "enable", "route_dev")[:2] == (
        0,
        "enabled route_dev; takes effect on next start\n",
    )
    assert cli("plugins", "enable", "route_dev") == (
        0,
        "route_dev was already enabled; nothing changed\n",
        "",
    )
    _, audit_after = run_json(cli, "audit")
    assert [e["action"] for e in audit_after[: len(audit_after) - len(audit_before)]] == [
        "plugin.enable"
    ]
    raw = tomllib.loads(cli.config_path.read_text())
    raw.setdefault("plugins", {})["disabled"] = ["route_dev"]
    write_toml(cli.config_path, raw)
    cli("plugins", "disable", "route_dev")
    assert cli("plugins", "enable", "route_dev")[1] == (
        "enabled route_dev in plugins.json, but it stays disabled: "
        f"{cli.config_path} lists it under [plugins] disabled (remove it there)\n"
    )
    audit_after = run_json(cli, "audit")[1]
    code, out, err = cli("plugins", "enable", "route_dev")
    assert (code, err) == (0, "")
    assert out == (
        f"route_dev stays disabled: {cli.config_path} lists it under [plugins] disabled "
        "(remove it there); nothing changed\n"
    )
    assert len(run_json(cli, "audit")[1]) == len(audit_after)


@pytest.mark.parametrize(
    "args, action",
    [
        (["revoke", "7"], "agent.revoke"),
        (["authorize", "7"], "agent.authorize"),
        (["set-phone", "7", "(212) 555-0177"], "agent.set_phone"),  # the same number
        (["set-route", "7", "m"], "agent.set_route"),
        (["set-caller-id", "7", "+12125550101"], "agent.set_caller_id"),
    ],
)
def test_an_agent_command_that_changes_nothing_says_so_and_audits_nothing(cli, args, action):
    """`agents revoke` twice wrote a second 'agent.revoke authorized: no → no' entry and
    said 'revoked' again (tester5; the bot's /revoke too)."""
    assert cli("agents", "add", "--telegram-id", "7", "--phone", "+12125550177")[0] == 0
    for first in (["set-route", "7", "M"], ["set-caller-id", "7", "+12125550101"]):
        assert cli("agents", *first)[0] == 0
    if args[0] == "revoke":
        assert cli("agents", "authorize", "7")[0] == 0
        assert cli("agents", "revoke", "7")[0] == 0
    elif args[0] == "authorize":
        assert cli("agents", "authorize", "7")[0] == 0
    _, before = run_json(cli, "audit")
    code, out, err = cli("agents", *args)
    assert code == 0, err
    assert "nothing changed" in out
    _, after = run_json(cli, "audit")
    assert after == before, [r for r in after if r not in before]
    assert any(r["action"] == action for r in before) or action == "agent.set_phone"


def test_the_last_route_resolver_cannot_be_disabled(cli, plugin_site):
    """Without one, every agent was asked to choose a route, chose one ('successfully
    changed') and was asked again, for ever (tester5)."""
    from corecall_testing import install_distribution

    code, _out, err = cli("plugins", "disable", "route_resolver")
    assert code == 1 and "route_resolver" in err and "only plugin choosing" in err
    _, rows = run_json(cli, "plugins", "list")
    assert {r["name"]: r["essential"] for r in rows}["route_resolver"] is True
    install_distribution(plugin_site, "corecall-desks", {"desks": "desks_plugin"}, {
        "desks_plugin": """
            from corecall import hookimpl

            @hookimpl
            def corecall_resolve_route(agent, routes):
                return routes.get("D")
        """,
    })  # fmt: skip
    assert cli("plugins", "disable", "route_resolver")[0] == 0
    code, _out, err = cli("plugins", "disable", "desks")
    assert code == 1 and "'desks'" in err and "only plugin choosing" in err


def test_plugins_list_names_the_commands_each_plugin_adds(cli):
    """`corecall --help` loads no plugin; `plugins list` is where the plugins' commands show."""
    _, rows = run_json(cli, "plugins", "list")
    commands = {r["name"]: r["commands"] for r in rows}
    assert commands["asterisk_ami"] == ["asterisk"] and commands["policy_dnc"] == ["dnc"]
    assert commands["webhooks"] == ["webhooks"] and commands["route_main"] == []
    code, out, _err = cli("plugins", "list")
    assert code == 0 and "commands" in out.splitlines()[0] and "dnc" in out
    assert cli("plugins", "disable", "webhooks")[0] == 0
    _, rows = run_json(cli, "plugins", "list")
    assert {r["name"]: r["commands"] for r in rows}["webhooks"] == []
    assert "corecall plugins list" in " ".join(cli("--help")[1].split())


def test_disabling_the_active_store_is_refused(cli):
    code, _out, err = cli("plugins", "disable", "store_sqlite")
    assert code == 1
    assert "store_sqlite" in err and "active store" in err and "Traceback" not in err
    _, rows = run_json(cli, "plugins", "list")
    assert {r["name"]: r["enabled"] for r in rows}["store_sqlite"] is True


def test_the_asterisk_driver_is_listed_from_its_own_distribution(cli):
    _, rows = run_json(cli, "plugins", "list")
    (row,) = [r for r in rows if r["name"] == "asterisk_ami"]
    assert row["distribution"] == "corecall-trunk-asterisk" and row["builtin"] is False
    assert row["kind"] == "trunk" and row["error"] is None
    assert row["essential"] is False  # no configured trunk uses it here


def test_disabling_a_trunk_driver_that_trunks_use_is_refused(tmp_path, monkeypatch, capsys):
    raw = config_dict(
        tmp_path,
        plugins={"asterisk_ami": {"servers": {"pbx1": {"host": "127.0.0.1"}}}},
        trunks={
            "main": {"driver": "asterisk_ami", "server": "pbx1", "endpoint": "corecall-main"},
            "dev": {"driver": "asterisk_ami", "server": "pbx1", "endpoint": "corecall-dev"},
        },
    )
    monkeypatch.setenv("CORECALL_CONFIG", str(write_toml(tmp_path / "c.toml", raw)))
    assert main(["plugins", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["asterisk_ami"]["essential"] is True
    assert main(["plugins", "disable", "asterisk_ami"]) == 1
    err = capsys.readouterr().err
    assert "asterisk_ami" in err and "[trunks.dev], [trunks.main]" in err
    assert "cannot be disabled" in err and "driver" in err and "Traceback" not in err
    # the way out it names is another driver, never the one being disabled
    assert 'driver = "simulated"' in err and 'driver = "asterisk_ami"' not in err
    assert main(["plugins", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["asterisk_ami"]["enabled"] is True  # nothing was changed


def test_a_trunk_driver_no_trunk_uses_can_be_disabled(cli):
    assert cli("plugins", "disable", "asterisk_ami")[0] == 0
    _, rows = run_json(cli, "plugins", "list")
    assert {r["name"]: r["enabled"] for r in rows}["asterisk_ami"] is False
    assert cli("plugins", "enable", "asterisk_ami")[0] == 0


def test_a_plugin_disabled_through_another_configuration_is_named_where_it_breaks(tmp_path, capsys):
    """plugins.json lives in the data directory, shared by every configuration naming it:
    disabling asterisk_ami with a configuration that does not use it passed the guard and
    broke the bot's, whose error named neither the plugin nor the file (tester5)."""
    from corecall_testing import config_dict, write_toml
    from corecall_testing.ami import ami_sections, server_of

    from corecall.cli import main

    bot = write_toml(tmp_path / "bot.toml",
                     config_dict(tmp_path, **ami_sections({"pbx1": server_of()})))  # fmt: skip
    other = write_toml(tmp_path / "other.toml", config_dict(tmp_path))
    assert main(["--config", str(bot), "plugins", "disable", "asterisk_ami"]) == 1  # guarded
    assert main(["--config", str(other), "plugins", "disable", "asterisk_ami"]) == 0
    capsys.readouterr()
    code = main(["--config", str(bot), "call", "--route", "M", "--agent-phone", "+12125550111",
                 "--target", "+12125550123"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "trunk driver 'asterisk_ami' is not available" in err
    assert f"disabled plugins: asterisk_ami in {tmp_path / 'plugins.json'}" in err
    assert "corecall plugins enable NAME" in err


def test_a_plugin_that_exits_at_import_can_be_listed_and_switched_off(cli, plugin_site, tmp_path):
    """sys.exit() in a plugin module (some do on a missing dependency) ended every command
    with its text alone, `plugins list` and `plugins disable` included; init imported it
    even once disabled (tester5)."""
    from corecall_testing import install_distribution

    install_distribution(plugin_site, "corecall-aaa", {"aaa_side": "aaa_side_mod"}, {
        "aaa_side_mod": 'import sys\nsys.exit("aaa import-time exit")\n',
    })  # fmt: skip
    code, rows = run_json(cli, "plugins", "list")
    assert code == 0
    error = {r["name"]: r["error"] for r in rows}["aaa_side"]
    assert error == "failed to load: SystemExit: aaa import-time exit"
    assert cli("plugins", "disable", "aaa_side")[0] == 0
    code, out, err = cli("--config", str(tmp_path / "new" / "c.toml"), "init")
    assert code == 0, out + err
    assert "aaa" not in out + err


def test_a_third_party_plugin_named_like_a_core_one_does_not_replace_it(cli, plugin_site):
    """A distribution whose entry point happened to be named policy_dnc was loaded instead
    of the real do-not-call policy (found first by name), switching DNC off (tester5)."""
    from corecall_testing import install_distribution

    install_distribution(plugin_site, "corecall-aaa", {"policy_dnc": "aaa_dnc_mod"}, {
        "aaa_dnc_mod": "",
    })  # fmt: skip
    assert cli("dnc", "add", "+12125550170")[0] == 0
    code, out, _err = cli("policy", "check", "--target", "+12125550170")
    assert code == 1 and "do_not_call" in out
    _, rows = run_json(cli, "plugins", "list")
    by_key = {(r["name"], r["distribution"]): r for r in rows}
    assert by_key[("policy_dnc", "corecall-policy-dnc")]["error"] is None
    assert "name clash" in by_key[("policy_dnc", "corecall-aaa")]["error"]


@pytest.mark.parametrize("verb", ["disable", "enable"])
def test_a_toggle_the_store_cannot_record_changes_nothing(tmp_path, capsys, verb):
    """With the store unreachable, `plugins disable policy_dnc` said 'error: cannot open
    the SQLite store' yet wrote plugins.json: DNC off at the next start, unaudited
    (tester5)."""
    from corecall_testing import config_dict, write_toml

    from corecall.cli import main
    from corecall.plugins import read_disabled, write_disabled

    raw = config_dict(tmp_path)
    raw["store"] = {"backend": "sqlite", "sqlite_path": str(tmp_path)}  # a directory
    path = write_toml(tmp_path / "c.toml", raw)
    state_file = tmp_path / "plugins.json"
    write_disabled(state_file, {"metrics"})
    assert main(["--config", str(path), "plugins", verb, "policy_dnc" if verb == "disable"
                 else "metrics"]) == 1  # fmt: skip
    assert "cannot open the SQLite store" in capsys.readouterr().err
    assert read_disabled(state_file) == {"metrics"}


def test_the_audit_names_the_os_account_not_what_user_says(cli, monkeypatch):
    """The audit's 'who' came from $USER/$LOGNAME: anyone could write someone else's name,
    or an ESC sequence, there (tester5)."""
    import os
    import pwd

    account = pwd.getpwuid(os.getuid()).pw_name
    monkeypatch.setenv("USER", "mallory\x1b[31m")
    monkeypatch.setenv("LOGNAME", "mallory")
    monkeypatch.delenv("SUDO_USER", raising=False)
    assert cli("agents", "add", "--telegram-id", "7", "--phone", "+12125550177")[0] == 0
    _, rows = run_json(cli, "audit")
    assert rows[0]["actor"] == f"cli:{account}"
    if os.getuid() == 0:
        monkeypatch.setenv("SUDO_USER", "alice")
        assert cli("agents", "revoke", "7")[0] == 0 and cli("agents", "authorize", "7")[0] == 0
        _, rows = run_json(cli, "audit")
        assert rows[0]["actor"] == f"cli:{account} (sudo by alice)"


def test_a_misspelt_name_in_plugins_disabled_is_refused(tmp_path, capsys):
    """`[plugins] disabled = ["polcy_dnc"]` passed silently: the do-not-call policy the
    operator meant to switch off stayed on, or the reverse (tester5)."""
    from corecall_testing import config_dict, write_toml

    from corecall.cli import main

    path = write_toml(tmp_path / "c.toml", config_dict(tmp_path, plugins={
        "disabled": ["polcy_dnc"]}))  # fmt: skip
    assert main(["--config", str(path), "agents", "list"]) == 1
    err = capsys.readouterr().err
    assert "[plugins.disabled] no installed plugin is named 'polcy_dnc'" in err
    assert "policy_dnc" in err  # the installed ones are listed


def test_a_name_left_in_plugins_json_by_an_uninstalled_plugin_can_be_enabled_away(cli):
    from corecall.plugins import read_disabled, write_disabled

    state = cli.config_path.parent / "plugins.json"
    write_disabled(state, {"gone_plugin", "metrics"})
    code, _out, err = cli("plugins", "enable", "gone_plugin")
    assert code == 0, err
    assert read_disabled(state) == {"metrics"}
    code, _out, err = cli("plugins", "enable", "never_heard_of")
    assert code == 1 and "no plugin named 'never_heard_of'" in err


def test_operators_test_calls_can_be_listed_as_agent_0(cli):
    code, _out, err = cli("call", "--route", "M", "--agent-phone", "+12125550111", "--target",
                         "+12125550123")  # fmt: skip
    assert code == 0, err
    code, rows = run_json(cli, "calls", "list", "--agent", "0")
    assert code == 0 and len(rows) == 1 and rows[0]["agent_id"] == 0


def test_disabling_unknown_plugin_lists_known_ones(cli):
    code, _, err = cli("plugins", "disable", "nope")
    assert code == 1 and "no plugin named 'nope'" in err and "route_main" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+12125550123", {"ok": True, "e164": "+12125550123"}),
        ("(212) 555-0123", {"ok": True, "e164": "+12125550123"}),
        ("212-555-0123", {"ok": True, "e164": "+12125550123"}),
        ("1 212 555 0123", {"ok": True, "e164": "+12125550123"}),
        ("2125550123", {"ok": True, "e164": "+12125550123"}),
        ("", "empty"),
        ("hello", "not_a_number"),
        ("+1 212 055 0123", "invalid"),
        ("2125550123 x12", "extension"),
        ("911", "emergency"),
        ("112", "emergency"),
        ("411", "short_code"),
        ("+19002000000", "premium_rate"),
        ("+43 810 123456", "shared_cost"),
        ("+1 809 555 0123", "country_not_allowed"),
    ],
)
def test_number_check_verdicts_and_exit_codes(cli, text, expected):
    code, verdict = run_json(cli, "number", "check", text)
    if isinstance(expected, dict):
        assert (code, verdict) == (0, expected)
    else:
        assert code == 1 and verdict["ok"] is False and verdict["reason"] == expected
        assert verdict["message"]


def test_agent_lifecycle_is_audited(cli):
    assert cli("agents", "add", "--telegram-id", "42", "--phone", "(212) 555-0123",
               "--name", "Ann")[0] == 0  # fmt: skip
    assert cli("agents", "authorize", "42")[0] == 0
    assert cli("agents", "set-route", "42", "d")[0] == 0
    code, out, _ = cli("agents", "set-caller-id", "42", "+12125550199")
    assert code == 0 and "Caller ID: +12125550199 [D]" in out
    assert cli("agents", "set-phone", "42", "+1 415 555 0134")[0] == 0
    assert cli("agents", "revoke", "42")[0] == 0
    _, agents = run_json(cli, "agents", "list")
    assert agents == [
        {
            "telegram_id": 42, "phone": "+14155550134", "name": "Ann", "authorized": False,
            "route_code": "D", "caller_id": "+12125550199", "created_at": agents[0]["created_at"],
        }
    ]  # fmt: skip
    _, log = run_json(cli, "audit")
    actions = [e["action"] for e in reversed(log)]
    assert actions == [
        "agent.add", "agent.authorize", "agent.set_route", "agent.set_caller_id",
        "agent.set_phone", "agent.revoke",
    ]  # fmt: skip
    assert all(e["actor"].startswith("cli:") and e["subject"] == "42" for e in log)
    assert cli("agents", "remove", "42")[0] == 0
    assert run_json(cli, "agents", "list")[1] == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("agents", "authorize", "42"), "agent 42 (Ann) was already authorized; nothing changed"),
        (("agents", "revoke", "42"), "agent 42 (Ann) was already revoked; nothing changed"),
        (("agents", "set-phone", "42", "(212) 555-0123"),
         "agent 42 (Ann) is already rung on +12125550123; nothing changed"),
        (("agents", "set-route", "42", "d"),
         "agent 42 (Ann) is already on route D; nothing changed"),
        (("agents", "set-caller-id", "42", "(212) 555-0199"),
         "agent 42 (Ann) already calls with Caller ID: +12125550199 [D]; nothing changed"),
    ],
)  # fmt: skip
def test_a_change_to_what_is_already_true_says_so_and_audits_nothing(cli, args, said):
    """tester5: a second revoke wrote a second agent.revoke entry (authorized: no -> no) and
    said "revoked" again; every agent change that changes nothing says so instead."""
    cli("agents", "add", "--telegram-id", "42", "--phone", "(212) 555-0123", "--name", "Ann")
    cli("agents", "set-route", "42", "D")
    cli("agents", "set-caller-id", "42", "+12125550199")
    cli(*args)  # the first time may change it (authorize, revoke)
    _, audit_before = run_json(cli, "audit")
    code, out, err = cli(*args)
    assert (code, out.strip(), err) == (0, said, "")
    assert run_json(cli, "audit")[1] == audit_before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("agents", "add", "--telegram-id", "7", "--phone", "911"), "emergency"),
        (("agents", "add", "--telegram-id", "7", "--phone", "+1 900 200 0000"), "premium"),
        (("agents", "authorize", "99"), "no agent with Telegram id 99"),
        (("agents", "set-route", "1", "Z"), "No route 'Z'"),
        (("agents", "set-caller-id", "1", "+15005550006"), "not one of route M's caller IDs"),
    ],
)
def test_bad_agent_input_is_refused_clearly_and_changes_nothing(cli, args, message):
    cli("agents", "add", "--telegram-id", "1", "--phone", "+12125550123")
    cli("agents", "set-route", "1", "M")
    _, before = run_json(cli, "agents", "list")
    _, audit_before = run_json(cli, "audit")
    code, _out, err = cli(*args)
    assert code == 1 and message in err and "Traceback" not in err
    assert run_json(cli, "agents", "list")[1] == before
    assert run_json(cli, "audit")[1] == audit_before


def test_duplicate_agent_is_refused(cli):
    cli("agents", "add", "--telegram-id", "1", "--phone", "+12125550123")
    code, _, err = cli("agents", "add", "--telegram-id", "1", "--phone", "+12125550124")
    assert code == 1 and "1" in err


def test_usage_errors_exit_2(cli):
    assert cli("agents", "add", "--phone", "+12125550123")[0] == 2
    assert cli("agents", "authorize", "not-a-number")[0] == 2
    assert cli("no-such-command")[0] == 2


def test_init_writes_config_and_creates_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "etc" / "corecall.toml"
    assert main(["--config", str(path), "init"]) == 0
    assert path.exists() and (tmp_path / "data" / "corecall.sqlite3").exists()
    assert "[routes.M]" in path.read_text()
    assert main(["--config", str(path), "init"]) == 1  # never overwrites silently
    assert "already exists" in capsys.readouterr().err


def test_broken_config_is_one_clear_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[routes.M]\ntrunk = "main"\ncaller_ids = ["555"]\n')
    proc = subprocess.run(
        [sys.executable, "-m", "corecall", "--config", str(bad), "plugins", "list"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and "routes.M" in proc.stderr


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("x\x1b[31m.toml", None, "x\\x1b[31m.toml': file not found"),  # escaped, never raw
        ("a" * 5000 + ".toml", None, "characters): cannot be read: File name too long"),
        ("random.toml", bytes(range(128, 256)) * 8, "is not UTF-8 text (byte 0x80 at offset 0)"),
        ("my conf.toml", None, "my conf.toml' init"),
    ],
)
def test_a_config_file_that_cannot_be_used_is_one_clear_line(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "corecall", "--config", str(path), "config", "show"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert expected in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "\x1b" not in proc.stderr and "Traceback" not in proc.stderr


NUMBER_FORMATS = ["+12125550100", "(212) 555-0100", "212-555-0100", "1 212 555 0100",
                  "\u202a+1 212 555 0100\u202c", "212.555.0100"]  # fmt: skip


@pytest.mark.parametrize("text", NUMBER_FORMATS)
def test_every_command_that_takes_a_number_accepts_the_formats_call_accepts(cli, text):
    assert cli("agents", "add", "--telegram-id", "5", "--phone", text)[0] == 0
    assert cli("agents", "set-phone", "5", text)[0] == 0
    assert cli("agents", "set-route", "5", "M")[0] == 0
    code, out, err = cli("agents", "set-caller-id", "5", text)
    assert code == 0, err
    assert "Caller ID: +12125550100 [M]" in out
    agent = run_json(cli, "agents", "list")[1][0]
    assert (agent["phone"], agent["caller_id"]) == ("+12125550100", "+12125550100")
    assert run_json(cli, "number", "check", text)[1] == {"ok": True, "e164": "+12125550100"}


def test_a_route_can_allow_new_nanp_area_codes(tmp_path, monkeypatch, capsys):
    raw = config_dict(tmp_path)
    raw["routes"]["D"]["allow_unlisted_nanp"] = True
    monkeypatch.setenv("CORECALL_CONFIG", str(write_toml(tmp_path / "c.toml", raw)))
    assert main(["number", "check", "+1 624 305 1111", "--route", "D", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["e164"] == "+16243051111"
    assert main(["number", "check", "+1 624 305 1111", "--route", "M", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["reason"] == "not_in_number_data" and "ask your admin" in verdict["message"]
    assert main(["number", "check", "+1 976 305 1111", "--route", "D", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "premium_rate"


def test_init_on_a_directory_or_with_a_control_character_in_the_path(tmp_path, capsys):
    directory = tmp_path / "dd"
    directory.mkdir()
    for force in ([], ["--force"]):
        assert main(["--config", str(directory), "init", *force]) == 1
        err = capsys.readouterr().err
        assert "is a directory" in err and "Traceback" not in err
    forged = tmp_path / "a\nb.toml"
    assert main(["--config", str(forged), "init"]) == 0
    out = capsys.readouterr().out
    assert "a\\nb.toml" in out and "\nb.toml" not in out  # one line per thing written


@pytest.mark.parametrize("content", ["[]", "{}", '{"problems": "x"}', "null"])
def test_health_reads_a_report_it_did_not_write_as_unhealthy(cli, tmp_path, content):
    (tmp_path / "health.json").write_text(content)  # the test config's data_dir
    code, out, err = cli("health")
    assert code == 1 and "Traceback" not in err and "inf s" not in out + err
    assert "is not a health report" in out + err or "no time of writing" in out + err


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_policy_check_at_the_edges_of_time_is_a_usage_error(cli, moment):
    code, _out, err = cli("policy", "check", "--target", "+12125550123", "--at", moment)
    assert code == 2 and "between the years 1970 and 9998" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["calls", "live", "--once", "--refresh", "inf"],
        ["calls", "live", "--once", "--refresh", "1e308"],
        ["health", "--max-age", "inf"],
        ["health", "--max-age", "nan"],
        ["call", "--agent-phone", "+12125550111", "--target", "+12125550123", "--timeout", "inf"],
        ["demo", "--speed", "inf"],
        ["asterisk", "check", "--timeout", "inf"],
    ],
)
def test_every_seconds_option_has_a_range_and_refuses_nan_and_inf(cli, args, capsys):
    """--refresh inf crashed with OverflowError inside time.sleep: every number of seconds
    (or speed) a command takes is bounded, and out of range is a usage error naming it."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"Invalid value for '{args[-2]}'" in err and "Traceback" not in err


@pytest.mark.parametrize("raw", ["inf", "nan", "0", "-2", "1e9", "fast"])
def test_the_demo_speed_from_the_environment_has_the_options_range(monkeypatch, raw):
    from corecall.demo import MAX_SPEED, SPEED_ENV, speed_from_env
    from corecall.errors import UsageError

    monkeypatch.setenv(SPEED_ENV, raw)
    with pytest.raises(UsageError, match=r"demo speed|must be a number"):
        speed_from_env(None)
    monkeypatch.setenv(SPEED_ENV, str(MAX_SPEED))
    assert speed_from_env(None) == MAX_SPEED
    # --speed's bound is written out (--help must not import the demo): the same number
    import inspect

    from corecall.cli.bot_commands import demo

    assert inspect.signature(demo).parameters["speed"].default.max == MAX_SPEED


def test_init_refuses_paths_it_cannot_or_must_not_write(tmp_path, capsys):
    """One plain line each, exit 1, nothing changed: a parent that is a file, a path in
    /proc, and a path that is not a regular file (init as root once made /dev/full 0600;
    a disk device would have been overwritten)."""
    import stat

    parent = tmp_path / "a-file"
    parent.write_text("x")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o644)
    cases = [
        ([str(parent / "x.toml")], f"{parent} is not a directory"),
        (["/proc/corecall-test.toml"], "cannot write the configuration here"),
        ([str(fifo), "--force"], "is not a regular file"),
    ]
    for where, expected in cases:
        assert main(["--config", where[0], "init", *where[1:]]) == 1
        err = capsys.readouterr().err
        assert expected in err and "unexpected" not in err and "Traceback" not in err, err
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_IMODE(fifo.stat().st_mode) == 0o644
    assert parent.read_text() == "x"


@pytest.mark.parametrize("command", [["calls", "list"], ["audit"], ["webhooks", "list"]])
@pytest.mark.parametrize("limit", ["0", "-1", "99999999999999999999999"])
def test_every_listing_limit_has_one_range(cli, command, limit, capsys):
    """`webhooks list --limit 1e23` overflowed SQLite's integer with a traceback: one
    option, one range, for every listing (0 only where it means "the counts alone")."""
    if command == ["webhooks", "list"] and limit == "0":
        assert main([*command, "--limit", limit]) == 0
        assert "empty" not in capsys.readouterr().out  # counts only, not "the outbox is empty"
        return
    code = main([*command, "--limit", limit])
    err = capsys.readouterr().err
    assert code == 2 and "Invalid value for '--limit'" in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "args",
    [
        ["console", "--as", "9223372036854775808"],
        ["calls", "list", "--agent", "99999999999999999999999"],
        ["policy", "check", "--target", "+12125550123", "--agent", "9223372036854775808"],
        ["agents", "add", "--telegram-id", "9223372036854775808", "--phone", "+12125550111"],
        ["agents", "revoke", "9223372036854775808"],
        ["agents", "authorize", "0"],
    ],
)
def test_a_telegram_id_out_of_range_is_a_usage_error_everywhere(cli, args, capsys):
    """`console --as 2**63` started and answered "my database isn't answering": every id a
    command takes has one range (1 to the store's 64-bit limit), checked before anything."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "Invalid value for" in err and "Traceback" not in err, err
