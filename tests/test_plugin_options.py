"""Plugins own their configuration and commands: options classes validated with file/key
messages, the environment rule, per-route overrides, store and trunk options, the context
handed to hooks, and plugin CLI commands (issue #8)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Literal

import attrs
import pytest
from corecall_testing import config_dict, install_distribution, write_toml

from corecall import hookimpl, option
from corecall.app import App
from corecall.cli import main
from corecall.config import load_config, parse_config
from corecall.domain import Refusal
from corecall.errors import ConfigError
from corecall.options import env_name, parse_options


@attrs.frozen
class DeskOptions:
    opens: str = option("20:00", doc="When the desk opens, HH:MM.")
    token: str = option("", doc="Paging token.", secret=True)
    max_calls: int = option(50, doc="Calls per night.", validator=attrs.validators.ge(1))
    regions: tuple[str, ...] = option(("US",), doc="Regions served.")


class DeskPlugin:
    """An in-process policy plugin with options; records what its hooks saw."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    @hookimpl
    def corecall_plugin_options(self):
        return DeskOptions

    @hookimpl
    def corecall_check_call(self, request, context):
        options = context.route_options(request.route.code)
        agents = context.store.list_agents()  # allowed: this hook runs on the store thread
        self.seen.append((options.opens, len(agents), threading.current_thread().name))
        if request.target.endswith("0111"):
            return Refusal("desk_closed", f"The desk opens at {options.opens}.")
        return None


def app_with(tmp_path, plugin=None, name="desk", **sections) -> App:
    config = parse_config(config_dict(tmp_path, **sections), path=None)
    return App(config, extra_plugins=[(name, plugin or DeskPlugin())])


def load_file(tmp_path, name="desk", plugin=None, **sections) -> App:
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path, **sections))
    return App(load_config(path), extra_plugins=[(name, plugin or DeskPlugin())])


# --------------------------------------------------------------------------- [plugins.NAME]


@attrs.frozen
class Endpoint:
    host: str = option("127.0.0.1", doc="Host.")
    port: int = option(5038, doc="Port.")


@attrs.frozen
class Tuning:
    level: int = option(1, doc="Level.")


@attrs.frozen
class Typed:
    path: Path = option(Path("/var/lib/x"), doc="A path.")
    maybe: int | None = option(None, doc="An optional number.")
    sub: Tuning = option(factory=Tuning, doc="A nested table.")
    servers: dict[str, Endpoint] = option(factory=dict, doc="Servers by name.")
    ratio: float = option(0.5, doc="A ratio.")
    flag: bool = option(False, doc="A flag.")
    token: str = option("", doc="A token.", secret=True)
    label: str = option('say "hi"\tthere', doc="A label with a quote and a tab.")


def test_the_commented_section_is_valid_toml_once_uncommented():
    """`corecall init` writes each plugin's section commented out; uncommented as written
    (NAME given a name) it must read back as the defaults: keys written after a sub-table
    header belonged to that sub-table, and an unset optional value was written '""' (not
    an integer) (tester5)."""
    import tomllib

    from corecall.options import render_commented

    text = render_commented(Typed, "plugins.t5_typed")
    keys_and_headers = [
        line[2:].replace(".NAME]", ".a]")
        for line in text.splitlines()
        if line.startswith("# [") or re.match(r"# \w+ = ", line)
    ]
    uncommented = "\n".join(line for line in keys_and_headers if " = ..." not in line)
    raw = tomllib.loads(uncommented)["plugins"]["t5_typed"]
    parsed = parse_options(Typed, raw, table_name="plugins.t5_typed", path="x.toml", environ={})
    assert parsed.value == Typed(servers={"a": Endpoint()})
    assert "# maybe = ...  (optional: an integer; not set)" in text


def test_every_installed_plugin_s_commented_section_reads_back_when_uncommented():
    import tomllib

    from corecall.options import render_commented
    from corecall.plugins import load_plugins

    plugins = load_plugins()
    classes = dict(plugins.options_classes)
    classes |= {f"store.{n}": r.options for n, r in plugins.stores.items().items() if r.options}
    classes |= {
        f"trunks.{n}": r.value.OPTIONS for n, r in plugins.trunk_drivers.items().items()
        if getattr(r.value, "OPTIONS", None)
    }  # fmt: skip
    assert {"metrics", "webhooks", "asterisk_ami", "store.sqlite"} <= set(classes)
    for name, cls in classes.items():
        text = render_commented(cls, f"t.{name}")
        lines = [
            line[2:].replace(".NAME]", ".a]") for line in text.splitlines()
            if line.startswith("# [") or re.match(r"# \w+ = ", line)
        ]  # fmt: skip
        tomllib.loads("\n".join(line for line in lines if " = ..." not in line))  # valid TOML


@attrs.frozen
class TextOptions:
    mode: Literal["ok", "refuse", "raise"] = option("ok", doc="What to do.")
    label: str | None = option(None, doc="A label.")
    spool: Path | None = option(None, doc="A directory.")
    level: Literal["low", "high"] | None = option(None, doc="A level.")
    retries: int = option(3, doc="Tries.")


@pytest.mark.parametrize(
    "key, text, expected",
    [
        ("mode", "raise", "raise"),
        ("label", "night desk", "night desk"),
        ("label", "true", "true"),
        ("spool", "/var/spool/x", Path("/var/spool/x")),
        ("level", "high", "high"),
        ("retries", "5", 5),
    ],
)
def test_text_options_are_taken_verbatim_from_the_environment(monkeypatch, key, text, expected):
    """docs/plugin_hooks.md: text is taken verbatim. A Literal of strings is text too:
    MODE=raise was refused as 'must be written as a TOML value' (only '"raise"' worked)."""
    monkeypatch.setenv(f"CORECALL_PLUGINS_T5_{key.upper()}", text)
    parsed = parse_options(TextOptions, {}, table_name="plugins.t5", path="c.toml")
    assert getattr(parsed.value, key) == expected


@pytest.mark.parametrize(
    "key, text, said",
    [
        ("mode", "true", "expected one of 'ok', 'refuse', 'raise', got 'true'"),
        ("level", "medium", "expected one of 'low', 'high', got 'medium'"),
        ("retries", "many", "must be written as a TOML value"),
        ("retries", "true", "expected an integer, got True"),
    ],
)
def test_a_wrong_value_from_the_environment_names_the_variable_not_the_file(
    monkeypatch, key, text, said
):
    variable = f"CORECALL_PLUGINS_T5_{key.upper()}"
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError) as error:
        parse_options(TextOptions, {}, table_name="plugins.t5", path="c.toml")
    message = str(error.value)
    assert said in message and variable in message
    assert "c.toml" not in message  # the file does not set it


def test_options_come_from_the_table_the_environment_and_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_PLUGINS_DESK_TOKEN", "s3cret")
    monkeypatch.setenv("CORECALL_PLUGINS_DESK_MAX_CALLS", "7")
    app = app_with(tmp_path, plugins={"desk": {"opens": "21:30"}})
    options = app.plugin_options("desk")
    assert options == DeskOptions(opens="21:30", token="s3cret", max_calls=7, regions=("US",))
    origins = {o.key: (o.source, o.shown()) for o in app.options.plugins["desk"].origins}
    assert origins == {
        "plugins.desk.opens": ("file", "21:30"),
        "plugins.desk.token": ("environment", "***"),
        "plugins.desk.max_calls": ("environment", 7),
        "plugins.desk.regions": ("default", ["US"]),
    }
    assert (
        env_name("plugins.route_night", "desk_token") == "CORECALL_PLUGINS_ROUTE_NIGHT_DESK_TOKEN"
    )


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        ({"opnes": "21:00"}, "plugins.desk.opnes", "expected one of: max_calls, opens, regions, routes, token"),  # noqa: E501
        ({"opens": 2100}, "plugins.desk.opens", "expected a string, got 2100"),
        ({"max_calls": "7"}, "plugins.desk.max_calls", "expected an integer, got '7'"),
        ({"max_calls": True}, "plugins.desk.max_calls", "expected an integer, got True"),
        ({"max_calls": 0}, "plugins.desk.max_calls", "must be >= 1"),
        ({"regions": "US"}, "plugins.desk.regions", "expected a list of strings"),
        ({"routes": {"X": {}}}, "plugins.desk.routes.X", "no [routes.X] table (routes: D, M)"),
        ({"routes": {"M": {"opnes": "1"}}}, "plugins.desk.routes.M.opnes", "unknown key"),
    ],
)  # fmt: skip
def test_a_wrong_table_names_file_key_and_expectation(tmp_path, table, key, expected):
    app = load_file(tmp_path, plugins={"desk": table})
    with pytest.raises(ConfigError) as err:
        app.plugin_options("desk")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'corecall.toml'}: [{key}] "), message
    assert expected in message


def test_a_secret_is_never_repeated_in_a_message(tmp_path, monkeypatch):
    app = load_file(tmp_path, plugins={"desk": {"token": 12345678}})
    with pytest.raises(ConfigError) as err:
        app.plugin_options("desk")
    assert "12345678" not in str(err.value) and "[plugins.desk.token]" in str(err.value)
    monkeypatch.setenv("CORECALL_PLUGINS_DESK_MAX_CALLS", "seven")
    with pytest.raises(ConfigError, match=r"CORECALL_PLUGINS_DESK_MAX_CALLS must be written as"):
        load_file(tmp_path).plugin_options("desk")


def test_tables_for_unknown_disabled_and_option_less_plugins(tmp_path):
    with pytest.raises(ConfigError, match=r"\[plugins.nigth\] no installed plugin is named"):
        _ = load_file(tmp_path, plugins={"nigth": {"opens": "1"}}).options
    with pytest.raises(ConfigError, match=r"plugin 'route_main' declares no options"):
        _ = load_file(tmp_path, plugins={"route_main": {"x": 1}}).options
    # A disabled plugin is not imported: its table is kept, not validated, and harmless.
    app = load_file(tmp_path, plugins={"disabled": ["route_dev"], "route_dev": {"x": 1}})
    assert app.options.unvalidated == {"route_dev": {"x": 1}}


def test_per_route_overrides_reach_the_policy_hook_with_the_store(tmp_path):
    desk = DeskPlugin()
    table = {"opens": "20:00", "routes": {"D": {"opens": "23:00"}}}
    app = app_with(tmp_path, desk, plugins={"desk": table})
    assert app.plugin_route_options("desk", "D").opens == "23:00"
    assert app.plugin_route_options("desk", "M").opens == "20:00"

    async def scenario():
        manager = app.call_manager()
        await manager.start()
        try:
            app.store.add_agent(7, "+12125550177", authorized=True, actor="test")
            app.store.set_route(7, "D", actor="test")
            with pytest.raises(Exception) as refused:
                await manager.place(7, "+12125550111")
            assert "The desk opens at 23:00." in str(refused.value)
        finally:
            await manager.stop()

    try:
        asyncio.run(scenario())
    finally:
        app.close()
    opens, agents, thread = desk.seen[-1]
    assert (opens, agents) == ("23:00", 1)
    assert thread != threading.main_thread().name  # never on the event loop's thread


def test_an_options_class_must_document_every_field(tmp_path, caplog):
    @attrs.frozen
    class Undocumented:
        opens: str = "20:00"

    class Bad:
        @hookimpl
        def corecall_plugin_options(self):
            return Undocumented

    app = app_with(tmp_path, Bad(), name="bad")
    info = app.plugins.infos["bad"]
    assert not app.plugins.is_active("bad")
    assert "needs corecall.option(..., doc=...)" in info.error and "opens" in info.error


# --------------------------------------------------------------------------- [store], [trunks]


def test_store_keys_belong_to_the_active_store(tmp_path):
    raw = config_dict(tmp_path)
    raw["store"]["sqlite_pth"] = "x.db"
    app = App(load_config(write_toml(tmp_path / "c.toml", raw)))
    with pytest.raises(ConfigError) as err:
        _ = app.store
    assert "[store.sqlite_pth] unknown key in [store]; expected one of: backend, sqlite_path" in (
        str(err.value)
    )


def test_postgres_dsn_keeps_its_documented_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_POSTGRES_DSN", "postgresql://a@127.0.0.1/x")
    app = App(parse_config({"data_dir": str(tmp_path), "store": {"backend": "postgres"}},
                           path=None))  # fmt: skip
    [dsn] = [o for o in app.options.store.origins if o.key == "store.postgres_dsn"]
    assert (dsn.source, dsn.env, dsn.shown()) == ("environment", "CORECALL_POSTGRES_DSN", "***")
    monkeypatch.delenv("CORECALL_POSTGRES_DSN")
    monkeypatch.setenv("CORECALL_STORE_POSTGRES_DSN", "postgresql://b@127.0.0.1/x")
    app = App(parse_config({"data_dir": str(tmp_path), "store": {"backend": "postgres"}},
                           path=None))  # fmt: skip
    assert app.options.store.value.postgres_dsn == "postgresql://b@127.0.0.1/x"


def test_trunk_keys_belong_to_the_driver_the_trunk_names(tmp_path):
    raw = config_dict(tmp_path)
    raw["trunks"]["main"]["ring_secnds"] = 1
    app = App(load_config(write_toml(tmp_path / "c.toml", raw)))
    with pytest.raises(ConfigError) as err:
        app.routes()
    assert "[trunks.main.ring_secnds] unknown key in [trunks.main]; expected one of: " in str(
        err.value
    )
    for key in ("answer_seconds", "driver", "ring_seconds", "talk_seconds", "timeout_seconds"):
        assert key in str(err.value).split("expected one of: ")[1]
    raw["trunks"]["main"] = {"driver": "simulated", "talk_seconds": "long"}
    app = App(load_config(write_toml(tmp_path / "c.toml", raw)))
    with pytest.raises(ConfigError, match=r"\[trunks.main.talk_seconds\] expected a number"):
        app.routes()
    raw["trunks"]["main"] = {"driver": "simulated", "talk_seconds": 2}
    route = App(load_config(write_toml(tmp_path / "c.toml", raw))).routes()["M"]
    assert route.trunk.options.talk_seconds == 2.0 and route.trunk.options.ring_seconds == 1.0


@attrs.frozen
class Server:
    host: str = option("127.0.0.1", doc="Host.")
    secret: str = option("", doc="Secret.", secret=True,
                         env=("CORECALL_X_SECRET_{NAME}", "CORECALL_X_SECRET"))  # fmt: skip


@attrs.frozen
class Driver:
    servers: dict[str, Server] = option(factory=dict, doc="Servers by name.")


def test_nested_tables_and_old_variable_names(monkeypatch):
    monkeypatch.setenv("CORECALL_X_SECRET", "all")
    monkeypatch.setenv("CORECALL_X_SECRET_PBX2", "two")
    parsed = parse_options(Driver, {"servers": {"pbx1": {}, "pbx2": {"host": "::1"}}},
                           table_name="plugins.x", path="f.toml")  # fmt: skip
    assert parsed.value.servers["pbx1"].secret == "all"
    assert parsed.value.servers["pbx2"] == Server(host="::1", secret="two")
    with pytest.raises(ConfigError, match=r"f.toml: \[plugins.x.servers.pbx1.hots\] unknown"):
        parse_options(Driver, {"servers": {"pbx1": {"hots": "x"}}}, table_name="plugins.x",
                      path="f.toml")  # fmt: skip


# --------------------------------------------------------------------------- commands

COMMANDS_PLUGIN = """
import attrs
import typer
from corecall import hookimpl, option


@attrs.frozen
class Options:
    greeting: str = option("hello", doc="What to say.")


@hookimpl
def corecall_plugin_options():
    return Options


@hookimpl
def corecall_register_commands(cli, context):
    @cli.command("greet")
    def greet(name: str):
        '''Greet NAME and count the agents.'''
        agents = context.store.list_agents()
        typer.echo(f"{context.options.greeting} {name} ({len(agents)} agents)")
"""

CLASHING_PLUGIN = """
from corecall import hookimpl


@hookimpl
def corecall_register_commands(cli):
    @cli.command("init")
    def init():
        '''Would hide the core's init.'''
"""


def install(site: Path, name: str, source: str) -> None:
    install_distribution(site, name, {name: f"{name}_mod"}, {f"{name}_mod": source}, "1.0")


def test_a_plugin_adds_a_command_that_reaches_options_and_store(tmp_path, plugin_site, capsys):
    install(plugin_site, "greeter", COMMANDS_PLUGIN)
    raw = config_dict(tmp_path, plugins={"greeter": {"greeting": "hi"}})
    path = write_toml(tmp_path / "c.toml", raw)
    assert main(["--config", str(path), "agents", "add", "--telegram-id", "7",
                 "--phone", "+12125550177"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["--config", str(path), "greet", "Ann"]) == 0
    assert capsys.readouterr().out == "hi Ann (1 agents)\n"
    # A wrong table is reported with file and key, as one line, not a traceback.
    write_toml(path, config_dict(tmp_path, plugins={"greeter": {"greting": "hi"}}))
    assert main(["--config", str(path), "greet", "Ann"]) == 1
    err = capsys.readouterr().err
    assert (
        "[plugins.greeter.greting] unknown key in [plugins.greeter]; expected one of: greeting"
        in err
    )
    # Disabled: the command is gone and the plugin is never imported.
    write_toml(path, config_dict(tmp_path, plugins={"disabled": ["greeter"]}))
    assert main(["--config", str(path), "greet", "Ann"]) == 2


def test_a_command_clash_is_refused_by_name_and_the_rest_works(
    tmp_path, plugin_site, capsys, caplog
):
    install(plugin_site, "clasher", CLASHING_PLUGIN)
    install(plugin_site, "greeter", COMMANDS_PLUGIN)
    path = write_toml(tmp_path / "c.toml", config_dict(tmp_path))
    assert main(["--config", str(path), "greet", "Bo"]) == 0
    assert capsys.readouterr().out == "hello Bo (0 agents)\n"
    assert "plugin 'clasher': corecall_register_commands failed" in caplog.text
    assert "command name(s) already taken: init" in caplog.text
    # The operator's list says the clasher's commands are not there, and why (it listed
    # "init" as the clasher's command).
    assert main(["--config", str(path), "plugins", "list", "--json"]) == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["clasher"]["commands"] == []
    assert infos["clasher"]["commands_error"] == "command name(s) already taken: init"
    assert infos["greeter"]["commands"] == ["greet"] and infos["greeter"]["commands_error"] is None
    assert main(["--config", str(path), "plugins", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("clasher"))
    assert row.endswith("none: dropped (command name(s) already taken: init)")


def test_plugin_commands_are_left_out_when_the_config_is_broken(tmp_path, plugin_site, capsys):
    install(plugin_site, "greeter", COMMANDS_PLUGIN)
    path = tmp_path / "broken.toml"
    path.write_text("[bot\n")
    # The broken file is the cause: it is the error (exit 1), not "No such command".
    assert main(["--config", str(path), "greet", "Ann"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "error:" in err and "broken.toml" in err and "No such command" not in err
    assert "'greet' is not a core command; plugin commands are unavailable" in err


# --------------------------------------------------------------------------- init, config show


def test_init_writes_a_commented_section_for_every_plugin_with_options(
    tmp_path, plugin_site, capsys
):
    install(plugin_site, "greeter", COMMANDS_PLUGIN)
    path = tmp_path / "new.toml"
    assert main(["--config", str(path), "init"]) == 0
    text = path.read_text()
    assert "# Plugin greeter (greeter 1.0)\n# [plugins.greeter]\n# What to say.\n" in text
    assert '# greeting = "hello"\n' in text
    assert '# Keys of [store] with backend = "postgres" (plugin store_postgres)' in text
    assert "$CORECALL_STORE_POSTGRES_DSN or $CORECALL_POSTGRES_DSN" in text
    assert '# Keys of a [trunks.X] table with driver = "simulated"' in text
    # Uncommenting a section gives a valid table.
    section = text.split("# [plugins.greeter]\n")[1].split("\n\n")[0]
    body = "\n".join(line[2:] for line in section.splitlines() if not line.startswith("# What"))
    path.write_text(text + "\n[plugins.greeter]\n" + body + "\n")
    capsys.readouterr()
    assert main(["--config", str(path), "greet", "Al"]) == 0
    assert capsys.readouterr().out == "hello Al (0 agents)\n"


def test_config_show_gives_every_value_its_source_and_masks_secrets(tmp_path, monkeypatch, capsys):
    raw = config_dict(tmp_path, bot={"token": "file-token-123", "super_admins": [5]},
                      plugins={"desk": {"opens": "21:00"}})  # fmt: skip
    path = write_toml(tmp_path / "c.toml", raw)
    monkeypatch.setenv("CORECALL_PLUGINS_DESK_TOKEN", "desk-secret-456")
    monkeypatch.setenv("CORECALL_API_HASH", "hash-789")
    app = App(load_config(path), extra_plugins=[("desk", DeskPlugin())])
    from corecall.effective_config import effective_values

    rows = {r.key: r for r in effective_values(app.config, app.options)}
    assert (rows["bot.token"].source, rows["bot.token"].shown()) == ("file", "***")
    assert (rows["bot.api_hash"].source, rows["bot.api_hash"].env) == (
        "environment", "CORECALL_API_HASH",
    )  # fmt: skip
    assert (rows["bot.super_admins"].source, rows["bot.super_admins"].shown()) == ("file", [5])
    assert rows["limits.calls_per_minute"].source == "default"
    assert rows["bot.max_command_age"].source == "default"
    assert rows["plugins.desk.opens"].source == "file"
    assert (rows["plugins.desk.token"].source, rows["plugins.desk.token"].shown()) == (
        "environment", "***",
    )  # fmt: skip
    assert rows["trunks.main.ring_seconds"].shown() == 0.01
    # Through the CLI, as an operator sees it (text and JSON): no secret anywhere.
    del raw["plugins"]  # "desk" is an in-process plugin: not installed for the CLI
    write_toml(path, raw)
    assert main(["--config", str(path), "config", "show"]) == 0
    out = capsys.readouterr().out
    assert 'bot.token = "***"  # file\n' in out
    assert 'bot.api_hash = "***"  # environment $CORECALL_API_HASH\n' in out
    assert main(["--config", str(path), "config", "show", "--json"]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown)["store.sqlite_path"]["source"] == "file"
    for secret in ("file-token-123", "desk-secret-456", "hash-789"):
        assert secret not in out + shown


@pytest.mark.parametrize(
    ("plugin", "table"),
    [
        ("webhooks", {"urls": ["http://127.0.0.1:1/"], "secret": "x"}),
        ("metrics", {"listen": "127.0.0.1:1"}),
        ("asterisk_ami", {"servers": {}}),
    ],
)
def test_process_wide_plugins_refuse_per_route_tables(tmp_path, capsys, plugin, table):
    """[plugins.webhooks.routes.M] was accepted and shown as in effect by `config show`,
    and then ignored: the receivers, the listener and the AMI servers hold for the whole
    process. A per-route table of a plugin with per-route settings still works."""
    raw = config_dict(tmp_path)
    raw["plugins"][plugin] = {"routes": {"M": table}}
    path = write_toml(tmp_path / "corecall.toml", raw)
    assert main(["--config", str(path), "config", "show"]) == 1
    err = capsys.readouterr().err
    assert f"[plugins.{plugin}.routes] plugin {plugin!r} has no per-route settings" in err

    raw["plugins"][plugin] = {}
    raw["plugins"]["policy_calling_hours"] = {
        **raw["plugins"].get("policy_calling_hours", {}), "routes": {"M": {"opens": "09:00"}},
    }  # fmt: skip
    write_toml(path, raw)
    assert main(["--config", str(path), "config", "show"]) == 0, capsys.readouterr().err


BUGGY_COMMANDS_PLUGIN = """
import os

import typer

from corecall import hookimpl


@hookimpl
def corecall_register_commands(cli):
    @cli.command("tally")
    def tally():
        '''Count something, badly.'''
        {}.pop("calls")

    leads = typer.Typer(help="Leads.")
    cli.add_typer(leads, name="leads")

    @leads.command("import")
    def import_leads():
        '''Read from a closed stream.'''
        raise EOFError("stream ended")  # click turns it into a bare Abort

    @leads.command("sync")
    def sync():
        '''Leak the token in an error.'''
        raise RuntimeError("login failed with " + os.environ["CORECALL_BOT_TOKEN"])
"""


def test_a_bug_in_a_plugin_command_names_the_plugin(tmp_path, plugin_site, capsys, monkeypatch):
    """Was "error: unexpected KeyError: 'calls'; full traceback in …": the operator could
    not tell the bug was the plugin's, not corecall's (tester). Each door: a command, a
    group's subcommand, an EOFError (click's Abort), --debug; no secret is printed."""
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
    monkeypatch.setenv("CORECALL_BOT_TOKEN", token)
    install(plugin_site, "crm_sync", BUGGY_COMMANDS_PLUGIN)
    path = write_toml(tmp_path / "c.toml", config_dict(tmp_path))
    log = tmp_path / "logs" / "cli-errors.log"
    cases = [
        (["tally"], "`corecall tally`: unexpected KeyError: 'calls'"),
        (["leads", "import"], "`corecall leads import`: unexpected EOFError: stream ended"),
        (["leads", "sync"], "`corecall leads sync`: unexpected RuntimeError: login failed with "),
    ]
    for args, says in cases:
        assert main(["--config", str(path), *args]) == 1
        err = capsys.readouterr().err.strip()  # click writes a blank line before an Abort
        assert err.startswith(
            f"error: plugin 'crm_sync' (crm_sync 1.0) failed in its command {says}"
        ), err
        assert err.endswith(f"; full traceback in {log} (run with --debug to print it)"), err
        assert len(err.splitlines()) == 1 and token not in err
    written = log.read_text()
    assert written.count("(plugin 'crm_sync' (crm_sync 1.0) failed in its command") == 3
    assert "Traceback (most recent call last)" in written and token not in written
    # --debug: the traceback, then the same line naming the plugin
    assert main(["--config", str(path), "tally", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == (
        "error: plugin 'crm_sync' (crm_sync 1.0) failed in its command `corecall tally`: "
        "unexpected KeyError: 'calls'"
    )
    # a core command's unexpected error names no plugin
    from corecall.cli import admin_commands

    monkeypatch.setattr(admin_commands, "_admin", lambda *_a, **_k: {}.pop("x"))
    assert main(["--config", str(path), "agents", "revoke", "5"]) == 1
    assert capsys.readouterr().err.startswith("error: unexpected KeyError: 'x'; full traceback")
