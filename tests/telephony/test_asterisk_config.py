"""The Asterisk plugin's own configuration: ``[plugins.asterisk_ami.servers.NAME]`` and the
keys of ``[trunks.X]`` with ``driver = "asterisk_ami"``, validated by the core's options
mechanism; and ONE rule for names, applied alike by the configuration, the render and the
driver's Originate builder."""

from __future__ import annotations

import pytest
from corecall_asterisk import render
from corecall_asterisk.actions import build_originate
from corecall_testing import config_dict, write_toml
from corecall_testing.ami import ami_sections, server_of

from corecall.app import App
from corecall.cli import main
from corecall.config import parse_config
from corecall.domain import TrunkConfig
from corecall.errors import ConfigError, UnsafeValueError
from corecall.telephony.driver import OriginateRequest

# Names Asterisk (or its bridge dialplan, which re-filters the trunk with a-z0-9-) would not
# take as they are: upper case, '_', non-ASCII, separators, empty, too long, edge hyphens.
BAD_NAMES = [
    "Main_Trunk", "brïdge", "corecall_main", "Corecall", "a b", "a/b", "a,b", "a@b",
    "x\r\ny", "", "-corecall", "corecall-", "a" * 41,
]  # fmt: skip
GOOD_NAMES = ["corecall-main", "pbx1", "a", "a" * 40]


def app_with(tmp_path, *, endpoint="corecall-main", **server) -> App:
    sections = ami_sections({"pbx1": server_of(**server)}, main=("pbx1", endpoint))
    # Parsed as read from this file (some names cannot even be written as TOML strings).
    return App(parse_config(config_dict(tmp_path, **sections), path=tmp_path / "corecall.toml"))


def config_error(tmp_path, **changes) -> str:
    with pytest.raises(ConfigError) as caught:
        app_with(tmp_path, **changes).options  # noqa: B018 - validates the plugin's tables
    return str(caught.value)


def originate(endpoint: str, context: str) -> bytes:
    request = OriginateRequest(
        call_id="0123456789abcdef0123456789abcdef", agent_phone="+12125550999",
        target="+12125550123", caller_id="+12125550100",
        trunk=TrunkConfig(name="main", driver="asterisk_ami"), agent_ring_timeout=2,
        target_ring_timeout=3,
    )  # fmt: skip
    return build_originate(request, endpoint=endpoint, context=context)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_config_render_and_driver_refuse_the_same_names(tmp_path, name):
    # The configuration: as the trunk's endpoint, as the server's context and AMI user.
    message = config_error(tmp_path, endpoint=name)
    assert "corecall.toml: [trunks.main.endpoint]" in message and "a-z, 0-9 and '-'" in message
    message = config_error(tmp_path, context=name)
    assert "[plugins.asterisk_ami.servers.pbx1.context]" in message and "a-z" in message
    message = config_error(tmp_path, username=name)
    assert "[plugins.asterisk_ami.servers.pbx1.username]" in message
    # The render: as a PJSIP endpoint, as the bridge context, as the AMI user.
    with pytest.raises(ValueError):
        render.render_pjsip([{"name": name, "provider_host": "198.51.100.7"}])
    with pytest.raises(ValueError):
        render.render_extensions(name)
    with pytest.raises(ValueError):
        render.render_manager(name)
    # The driver's Originate builder.
    with pytest.raises(UnsafeValueError):
        originate(name, "corecall-bridge")
    with pytest.raises(UnsafeValueError):
        originate("corecall-main", name)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_config_render_and_driver_accept_the_same_names(tmp_path, name):
    app = app_with(tmp_path, endpoint=name, context=name, username=name)
    assert app.trunk("main").options.endpoint == name
    assert app.plugin_options("asterisk_ami").servers["pbx1"].context == name
    render.render_pjsip([{"name": name, "provider_host": "198.51.100.7"}])
    render.render_extensions(name)
    render.render_manager(name)
    assert f"Context: {name}\r\n".encode() in originate(name, name)


def test_a_trunk_naming_a_missing_server_is_refused_with_the_known_ones(tmp_path, capsys):
    sections = ami_sections({"pbx1": server_of()}, dev=("pbx9", "corecall-dev"))
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path, **sections))
    for command in (["asterisk", "render"], ["asterisk", "check"], ["config", "show"]):
        assert main(["--config", str(path), *command]) == 1, command
        out, err = capsys.readouterr()
        err = " ".join(err.split())
        assert "[trunks.dev.server]" in err, command
        assert "no [plugins.asterisk_ami.servers.pbx9] table (servers: pbx1)" in err
        assert "pbx9" not in out  # config show prints nothing of a configuration it refuses


def test_trunk_keys_are_the_drivers_own(tmp_path):
    raw = config_dict(tmp_path, **ami_sections({"pbx1": server_of()}))
    del raw["trunks"]["main"]["endpoint"]
    with pytest.raises(ConfigError, match=r"\[trunks\.main\.endpoint\] missing"):
        App(parse_config(raw, path=None)).options  # noqa: B018
    raw = config_dict(tmp_path, **ami_sections({"pbx1": server_of()}))
    raw["trunks"]["main"]["endpont"] = "typo"
    with pytest.raises(ConfigError, match=r"unknown key in \[trunks\.main\].*endpoint"):
        App(parse_config(raw, path=None)).options  # noqa: B018
    # A simulated trunk does not take the Asterisk keys.
    raw = config_dict(tmp_path, trunks={"main": {"driver": "simulated", "endpoint": "x"}})
    with pytest.raises(ConfigError, match=r"\[trunks\.main\.endpoint\]"):
        App(parse_config(raw, path=None)).options  # noqa: B018


def test_the_old_asterisk_servers_table_says_where_it_went(tmp_path):
    raw = config_dict(tmp_path, asterisk_servers={"pbx1": {"host": "127.0.0.1"}})
    with pytest.raises(ConfigError, match=r"\[plugins\.asterisk_ami\.servers\.NAME\]"):
        parse_config(raw, path=None)


def test_the_secret_comes_from_the_environment_by_both_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_PLUGINS_ASTERISK_AMI_SERVERS_PBX1_SECRET", "by-the-rule")
    assert app_with(tmp_path).plugin_options("asterisk_ami").servers["pbx1"].secret == (
        "by-the-rule"
    )
    monkeypatch.setenv("CORECALL_AMI_SECRET_PBX1", "by-the-old-name")
    assert app_with(tmp_path).plugin_options("asterisk_ami").servers["pbx1"].secret == (
        "by-the-old-name"
    )


def test_the_core_config_knows_nothing_of_asterisk():
    import corecall.config as core_config
    import corecall.domain as domain

    assert not hasattr(core_config, "AmiServerConfig")
    assert not hasattr(core_config.Config, "asterisk_servers")
    assert {f.name for f in domain.TrunkConfig.__attrs_attrs__} == {"name", "driver", "options"}


def test_panoramisk_is_the_plugins_dependency_not_the_cores():
    """``grep -rn panoramisk corecall/`` finds nothing; the plugin's pyproject pins it."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    mentions = [
        str(path.relative_to(root))
        for path in (root / "corecall").rglob("*.py")
        if "panoramisk" in path.read_text()
    ]
    assert mentions == []
    core = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    plugin = tomllib.loads((root / "plugins/trunk_asterisk/pyproject.toml").read_text())
    assert not [d for d in core if d.startswith("panoramisk")]
    assert "panoramisk>=1.4,<1.5" in plugin["project"]["dependencies"]


@pytest.mark.parametrize("name", [*BAD_NAMES[:-3], "e\x1b[31mvil\u202e"])
def test_a_server_name_follows_the_name_rule_at_load(tmp_path, name):
    """Server names end up in directory names (`render --output-dir`), task names and log
    lines: one rule, checked when the configuration is read (`config show` included)."""
    sections = ami_sections({name: server_of()}, main=(name, "corecall-main"))
    app = App(parse_config(config_dict(tmp_path, **sections), path=tmp_path / "corecall.toml"))
    with pytest.raises(ConfigError, match=r"\[plugins.asterisk_ami\] server name") as caught:
        app.options  # noqa: B018 - validates the plugin's tables
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)


@pytest.mark.parametrize(
    "host", ["1.2.3.4\ncontext=default", "1.2.3.4\n", "999.1.1.1", "pbx.example", "::1", " 1.2.3.4"]
)
def test_provider_host_is_an_ipv4_address_at_load_not_only_at_render(tmp_path, host):
    sections = ami_sections({"pbx1": server_of()}, main=("pbx1", "corecall-main"))
    sections["trunks"]["main"]["provider_host"] = host
    app = App(parse_config(config_dict(tmp_path, **sections), path=tmp_path / "corecall.toml"))
    with pytest.raises(ConfigError) as caught:
        app.options  # noqa: B018 - validates the plugin's tables
    message = str(caught.value)
    assert "[trunks.main.provider_host] expected an IPv4 address like 203.0.113.10" in message
    assert "\ncontext=default" not in message


def test_config_show_reports_a_bad_provider_host(tmp_path, capsys):
    sections = ami_sections({"pbx1": server_of()}, main=("pbx1", "corecall-main"))
    sections["trunks"]["main"]["provider_host"] = "999.1.1.1"
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path, **sections))
    assert main(["--config", str(path), "config", "show"]) == 1
    assert "[trunks.main.provider_host] expected an IPv4 address" in capsys.readouterr().err
