"""Configuration: defaults, environment secrets, and errors that name file, key, expectation."""

from __future__ import annotations

import pytest
from corecall_testing import config_dict, write_toml

from corecall.app import App
from corecall.config import load_config, parse_config, write_starter_config
from corecall.errors import ConfigError


def test_no_file_means_safe_defaults_simulated_on_both_routes():
    config = load_config()
    assert config.exists is False
    assert sorted(config.routes) == ["D", "M"]
    assert {t.driver for t in config.trunks.values()} == {"simulated"}
    assert config.store.backend == "sqlite"
    assert config.routes["M"].countries == ("US", "CA")


def test_starter_config_round_trips(tmp_path):
    path = tmp_path / "corecall.toml"
    write_starter_config(path)
    config = load_config(path)
    assert config.path == path and config.routes["D"].caller_ids == ("+12125550199",)
    with pytest.raises(ConfigError, match="already exists"):
        write_starter_config(path)


def test_explicit_missing_file_is_an_error_with_the_fix(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value) and "init" in str(err.value)


def test_config_env_var_is_used(tmp_path, monkeypatch):
    path = write_toml(tmp_path / "c.toml", config_dict(tmp_path))
    monkeypatch.setenv("CORECALL_CONFIG", str(path))
    assert load_config().path == path


def test_secrets_come_from_the_environment(tmp_path, monkeypatch):
    servers = {"pbx1": {"secret": "from-file"}, "pbx2": {"secret": "file2"}}
    raw = config_dict(
        tmp_path, plugins={"asterisk_ami": {"servers": servers}}, bot={"token": "file-token"}
    )
    monkeypatch.setenv("CORECALL_BOT_TOKEN", "env-token")
    monkeypatch.setenv("CORECALL_API_ID", "12345")
    monkeypatch.setenv("CORECALL_AMI_SECRET", "all-servers")
    monkeypatch.setenv("CORECALL_AMI_SECRET_PBX2", "only-pbx2")
    monkeypatch.setenv("CORECALL_POSTGRES_DSN", "postgresql://u@127.0.0.1:5/db")
    config = parse_config(raw, path=None)
    assert config.bot.token == "env-token" and config.bot.api_id == 12345
    # The AMI secrets belong to the Asterisk plugin, which keeps the old variables.
    servers = App(config).plugin_options("asterisk_ami").servers
    assert servers["pbx1"].secret == "all-servers"
    assert servers["pbx2"].secret == "only-pbx2"
    # [store] postgres_dsn belongs to the postgres store plugin, which keeps the old variable.
    raw["store"] = {"backend": "postgres", "postgres_dsn": "postgresql://file@127.0.0.1/db"}
    options = App(parse_config(raw, path=None)).options.store
    assert options.value.postgres_dsn == "postgresql://u@127.0.0.1:5/db"


@pytest.mark.parametrize(
    ("mutate", "key", "expected"),
    [
        (lambda r: r["routes"]["M"].update(caller_ids=["12345"]), "routes.M.caller_ids", "E.164"),
        (lambda r: r["routes"]["M"].update(caller_ids=[]), "routes.M.caller_ids", "at least one"),
        # A caller ID is what every person called sees and calls back (tester5: all accepted).
        (lambda r: r["routes"]["M"].update(caller_ids=["+10000000000"]), "routes.M.caller_ids", "cannot be a caller ID: +10000000000 can't be dialed"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(caller_ids=["+999999999999999"]), "routes.M.caller_ids", "known country code"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(caller_ids=["+4420794600001"]), "routes.M.caller_ids", "too long"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(caller_ids=["+12125550100", "+19005550100"]), "routes.M.caller_ids", "+19005550100 is a premium-rate number, so it cannot be a caller ID"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(caller_ids=["+1911"]), "routes.M.caller_ids", "+1911 is an emergency number"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(caller_ids=["+1 212 555 0100"]), "routes.M.caller_ids", "is not a number in E.164 form"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(countries=[]), "routes.M.countries", "at least one region code"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(name="Ma\x1b[31min"), "routes.M.name", "control character U+001B"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(name="Main\u202e"), "routes.M.name", "U+202E"),
        (lambda r: r["routes"]["M"].update(name="Ma\u200bin"), "routes.M.name", "invisible or control character U+200B"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(name="  "), "routes.M.name", "1 to 32 characters"),
        (lambda r: r["routes"]["M"].update(trunk="nowhere"), "routes.M.trunk", "trunks.nowhere"),
        (lambda r: r["routes"]["M"].pop("trunk"), "routes.M.trunk", "missing"),
        (lambda r: r["routes"]["M"].update(countries=["usa"]), "routes.M.countries", "two-letter"),
        (lambda r: r["routes"]["M"].update(countries=["US", "XX"]), "routes.M.countries", "'XX' is not a region code phonenumbers knows"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(countries=["ZZ"]), "routes.M.countries", '"US", "CA", "GB"'),  # noqa: E501
        (lambda r: r["routes"]["M"].update(countries=["UK"]), "routes.M.countries", "'UK' is not a region code"),  # noqa: E501
        (lambda r: r["routes"].update(m={"trunk": "main"}), "routes.m", "upper-case"),
        (lambda r: r["routes"]["M"].update(confirm="yes"), "routes.M.confirm", '"key"'),
        (lambda r: r["routes"]["M"].update(confirm_timeout=0), "routes.M.confirm_timeout", "1-120"),
        (lambda r: r["routes"]["M"].update(confirm_timeout="10"), "routes.M.confirm_timeout", "integer"),  # noqa: E501
        (lambda r: r["routes"]["M"].update(agent_leg_caller_id="+12125550100"), "routes.M.agent_leg_caller_id", '"route"'),  # noqa: E501
        # Both legs show numbers the operator owns (the safety stance; tester5).
        (lambda r: r["routes"]["M"].update(agent_leg_caller_id="target"), "routes.M.agent_leg_caller_id", "caller IDs on both legs are numbers you own"),  # noqa: E501
        (lambda r: r["limits"].update(calls_per_minute=0), "limits.calls_per_minute", "at least 1"),
        (lambda r: r["limits"].update(calls_per_minute="6"), "limits.calls_per_minute", "integer"),
        (lambda r: r["bot"].update(super_admins=["alice"]), "bot.super_admins", "numeric"),
        (lambda r: r["bot"].update(tokn="x"), "bot.tokn", "unknown key"),
        (lambda r: r.update(asterisk_servers={}), "asterisk_servers", "[plugins.asterisk_ami.servers.NAME]"),  # noqa: E501
    ],
)  # fmt: skip
def test_mistakes_name_file_key_and_expectation(tmp_path, mutate, key, expected):
    raw = config_dict(tmp_path, limits={"calls_per_minute": 6})
    mutate(raw)
    path = write_toml(tmp_path / "bad.toml", raw)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and f"[{key}]" in message and expected in message


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[bot\ntoken = 1\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: is not valid TOML.*line 1"):
        load_config(path)


@pytest.mark.parametrize("age", [float("nan"), float("inf"), -1, 0, "30", True])
def test_max_command_age_must_be_a_real_number_of_seconds(tmp_path, age):
    """nan compared false with every age, so the replay guard ("an old /call is not
    dialed") was silently off; inf never expires anything either."""
    raw = config_dict(tmp_path)
    raw["bot"] = {**raw.get("bot", {}), "max_command_age": age}
    with pytest.raises(ConfigError, match=r"\[bot.max_command_age\] expected a positive number"):
        parse_config(raw, path=None)
