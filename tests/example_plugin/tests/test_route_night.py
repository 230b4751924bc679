import tomllib

import pytest

from corecall.app import App
from corecall.cli import main
from corecall.config import parse_config
from corecall.errors import ConfigError
from corecall.plugins import load_plugins

CONFIG = """
[trunks.night]
driver = "simulated"

[routes.N]
trunk = "night"
caller_ids = ["+12125550150"]

[plugins.route_night]
supervisor = "Dana"
"""


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))  # not your real data or choices


def make_app(text=CONFIG):
    return App(parse_config(tomllib.loads(text), path=None))


def test_the_night_route_is_registered():
    plugins = load_plugins()
    assert plugins.is_active("route_night")
    registered = plugins.routes.get("N")
    assert registered.plugin == "route_night"
    assert registered.value.button == "[Night Route]  🌙"


def test_the_night_route_is_offered_when_configured():
    route = make_app().routes()["N"]
    assert route.plugin == "route_night"
    assert (route.name, route.trunk.name, route.caller_ids) == ("Night", "night", ("+12125550150",))


def test_disabling_the_plugin_removes_the_route():
    assert "N" not in load_plugins(disabled={"route_night"}).routes


def test_options_come_from_the_table_and_the_environment(monkeypatch):
    monkeypatch.setenv("CORECALL_PLUGINS_ROUTE_NIGHT_PAGER_TOKEN", "s3cret")
    options = make_app().plugin_options("route_night")
    assert (options.supervisor, options.pager_token) == ("Dana", "s3cret")
    with pytest.raises(ConfigError, match=r"\[plugins.route_night.supervisr\] unknown key"):
        make_app(CONFIG.replace("supervisor", "supervisr")).plugin_options("route_night")


def test_night_status_command(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    assert main(["--config", str(config), "night", "status"]) == 0
    assert capsys.readouterr().out == (
        "supervisor: Dana; pager token not set\nagents on route N: 0\n"
    )
