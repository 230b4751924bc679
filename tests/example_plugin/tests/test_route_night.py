import tomllib

from corecall.app import App
from corecall.config import parse_config
from corecall.plugins import load_plugins

CONFIG = """
[trunks.night]
driver = "simulated"

[routes.N]
trunk = "night"
caller_ids = ["+12125550150"]
"""


def test_the_night_route_is_registered():
    plugins = load_plugins()
    assert plugins.is_active("route_night")
    registered = plugins.routes.get("N")
    assert registered.plugin == "route_night"
    assert registered.value.button == "[Night Route]  🌙"


def test_the_night_route_is_offered_when_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))  # not your real plugin choices
    app = App(parse_config(tomllib.loads(CONFIG), path=None))
    route = app.routes()["N"]
    assert route.plugin == "route_night"
    assert (route.name, route.trunk.name, route.caller_ids) == ("Night", "night", ("+12125550150",))


def test_disabling_the_plugin_removes_the_route():
    assert "N" not in load_plugins(disabled={"route_night"}).routes
