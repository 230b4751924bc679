"""The plugin framework: discovery, disabling without import, essentials, failures named."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from corecall.app import App
from corecall.domain import Agent
from corecall.errors import EssentialPluginError, NotFoundError, PluginError
from corecall.plugins import check_can_disable, load_plugins

BUILT_IN_DISTRIBUTIONS = {
    "route_main": "corecall-route-main",
    "route_dev": "corecall-route-dev",
    "store_sqlite": "corecall-store-sqlite",
    "store_postgres": "corecall-store-postgres",
}


def make_distribution(site: Path, dist: str, entry_points: dict[str, str], modules: dict) -> None:
    """Install a tiny distribution into ``site`` the way pip would (dist-info + modules)."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[corecall]\n{eps}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


def test_built_ins_come_from_their_own_distributions():
    infos = {i.name: i for i in load_plugins().list()}
    for name, dist in BUILT_IN_DISTRIBUTIONS.items():
        assert infos[name].distribution == dist, name
        assert infos[name].enabled and infos[name].error is None
        assert infos[name].version == "0.1.0"
    assert infos["route_main"].kind == "route" and infos["store_sqlite"].kind == "store"
    assert infos["route_dev"].hooks == ["corecall_register_routes"]
    assert "number_policy" not in infos  # the number safety check is a core step


def test_each_load_is_a_clean_state():
    first, second = load_plugins(), load_plugins(["route_dev"])
    assert "D" in first.routes and "D" not in second.routes
    assert first.pm is not second.pm


def test_disabled_plugin_is_never_imported(site):
    make_distribution(
        site, "corecall-exploding", {"exploding": "exploding_plugin"},
        {"exploding_plugin": "raise RuntimeError('imported although disabled')\n"},
    )  # fmt: skip
    plugins = load_plugins(["exploding"])
    info = {i.name: i for i in plugins.list()}["exploding"]
    assert info.enabled is False and info.error is None


def test_broken_plugin_is_named_and_the_others_keep_working(site, caplog):
    make_distribution(
        site, "corecall-broken", {"broken": "broken_plugin"},
        {"broken_plugin": "import does_not_exist_anywhere\n"},
    )  # fmt: skip
    plugins = load_plugins()
    info = {i.name: i for i in plugins.list()}["broken"]
    assert info.distribution == "corecall-broken"
    assert "does_not_exist_anywhere" in info.error
    assert "'broken'" in caplog.text and "corecall-broken" in caplog.text
    assert sorted(plugins.routes.names()) == ["D", "M"]


def test_plugin_failing_to_register_is_marked_broken(site):
    make_distribution(
        site, "corecall-badreg", {"badreg": "badreg_plugin"},
        {"badreg_plugin": """
            from corecall import hookimpl, RouteDefinition

            @hookimpl
            def corecall_register_routes(registry):
                registry.register(RouteDefinition(code="X", name="X", button="X"))
                raise ValueError("half-way")
        """},
    )  # fmt: skip
    plugins = load_plugins()
    info = {i.name: i for i in plugins.list()}["badreg"]
    assert "half-way" in info.error
    assert "X" not in plugins.routes  # nothing half-registered survives


def test_duplicate_route_code_names_both_plugins(site):
    make_distribution(
        site, "corecall-copycat", {"copycat": "copycat_plugin"},
        {"copycat_plugin": """
            from corecall import hookimpl, RouteDefinition

            @hookimpl
            def corecall_register_routes(registry):
                registry.register(RouteDefinition(code="M", name="Mine", button="Mine"))
        """},
    )  # fmt: skip
    plugins = load_plugins()
    infos = {i.name: i for i in plugins.list()}
    winner = plugins.routes.get("M").plugin
    loser = {"copycat": "route_main", "route_main": "copycat"}[winner]
    assert infos[winner].error is None
    assert "'M'" in infos[loser].error and winner in infos[loser].error


def test_unknown_hook_breaks_only_that_plugin(site):
    make_distribution(
        site, "corecall-typo", {"typo": "typo_plugin"},
        {"typo_plugin": """
            from corecall import hookimpl

            @hookimpl
            def corecall_register_ruotes(registry):
                pass
        """},
    )  # fmt: skip
    plugins = load_plugins()  # every other plugin still works
    info = {i.name: i for i in plugins.list()}["typo"]
    assert "corecall_register_ruotes" in info.error and info.hooks == []
    assert sorted(plugins.routes.names()) == ["D", "M"]


def test_essential_plugins_cannot_be_disabled():
    with pytest.raises(EssentialPluginError, match="active store"):
        check_can_disable("store_sqlite", active_store_plugin="store_sqlite")
    with pytest.raises(NotFoundError, match="route_main"):
        check_can_disable("no_such_plugin", active_store_plugin="store_sqlite")
    check_can_disable("store_postgres", active_store_plugin="store_sqlite")


def test_disabling_route_dev_removes_route_d_everywhere(make_config):
    config = make_config(plugins={"disabled": ["route_dev"]})
    app = App(config)
    assert sorted(app.routes()) == ["M"]
    agent = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="D")
    assert app.plugins.resolve_route(agent, app.routes()) is None
    agent_m = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="M")
    assert app.plugins.resolve_route(agent_m, app.routes()).code == "M"


def test_number_plugin_accepting_garbage_is_caught(make_config):
    class Sloppy:
        from corecall import hookimpl

        @hookimpl(tryfirst=True)
        def corecall_parse_number(self, text, route):
            from corecall.domain import NumberVerdict

            return NumberVerdict(ok=True, e164=text)  # bypasses accept()'s own check

    app = App(make_config(), extra_plugins=[("sloppy", Sloppy())])
    with pytest.raises(PluginError, match=r"non-E\.164"):
        app.plugins.parse_number("123\r\nAction: Originate", app.route("M"))


def test_failing_check_call_refuses_and_names_the_plugin(make_config):
    class Broken:
        from corecall import hookimpl

        @hookimpl
        def corecall_check_call(self, request):
            raise RuntimeError("db down")

    app = App(make_config(), extra_plugins=[("hours", Broken())])
    from corecall.domain import CallRequest

    agent = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="M")
    route = app.route("M")
    refusal = app.plugins.check_call(CallRequest(agent, "+12125550123", route, "+12125550100"))
    assert refusal.plugin == "hours" and refusal.reason == "policy_error"
    assert "hours" in refusal.message


def test_a_plugin_broken_while_registering_is_switched_off_entirely(site, make_config):
    make_distribution(
        site, "corecall-halfway", {"halfway": "halfway_plugin"},
        {"halfway_plugin": """
            from corecall import hookimpl, RouteDefinition
            from corecall.domain import Refusal

            @hookimpl
            def corecall_register_routes(registry):
                registry.register(RouteDefinition(code="M", name="Dup", button="Dup"))

            @hookimpl
            def corecall_check_call(request):
                return Refusal("halfway", "should never be asked")
        """},
    )  # fmt: skip
    app = App(make_config())
    infos = {i.name: i for i in app.plugins.list()}
    assert "'M'" in infos["halfway"].error and "route_main" in infos["halfway"].error
    assert app.plugins.routes.get("M").plugin == "route_main"
    # Its other hook is off too: a call check is not refused by the broken plugin.
    from corecall.domain import CallRequest

    agent = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="M")
    assert app.plugins.check_call(CallRequest(agent, "+12125550123", app.route("M"),
                                              "+12125550100")) is None  # fmt: skip


class TimeOfDayResolver:
    """A third-party resolver: everyone goes out route D, whatever they picked."""

    from corecall import hookimpl

    @hookimpl
    def corecall_resolve_route(self, agent, routes):
        return routes.get("D")


class InventingResolver:
    from corecall import hookimpl

    @hookimpl(tryfirst=True)
    def corecall_resolve_route(self, agent, routes):
        import attrs

        return attrs.evolve(routes["M"], caller_ids=("+19005550000",))  # not offered


def test_corecall_resolve_route_first_answer_wins_and_cannot_invent(make_config):
    agent = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="M")
    app = App(make_config(), extra_plugins=[("tod", TimeOfDayResolver())])
    assert app.plugins.resolve_route(agent, app.routes()).code == "D"
    app = App(make_config(), extra_plugins=[("inventor", InventingResolver())])
    assert app.plugins.resolve_route(agent, app.routes()) == app.routes()["M"]


class ShortSignatureListener:
    """Hook implementations may declare fewer arguments, as pluggy allows."""

    from corecall import hookimpl

    def __init__(self):
        self.calls = []

    @hookimpl
    def corecall_call_state_changed(self, call):
        self.calls.append(call)


def test_hook_with_fewer_arguments_is_called(make_config):
    from corecall.domain import CallRecord

    listener = ShortSignatureListener()
    app = App(make_config(), extra_plugins=[("short", listener)])
    record = CallRecord("a" * 32, 1, "+12125550123", "+12125550124", "M", "main", "+12125550100")
    app.plugins.notify_state_changed(record, None)
    assert listener.calls == [record]


class LenientParser:
    """Accepts whatever E.164-shaped number it is given, as a careless plugin would."""

    from corecall import hookimpl

    @hookimpl(tryfirst=True)
    def corecall_parse_number(self, text, route):
        from corecall.domain import NumberVerdict

        return NumberVerdict.accept(text.strip())


@pytest.mark.parametrize(
    ("accepted", "reason"),
    [
        ("+19002000000", "premium_rate"),  # NANP premium
        ("+442079460018", "country_not_allowed"),  # London, on a US/CA route
        ("+15002000000", "invalid"),  # NANP 500: personal numbers, refused
        ("+18092000000", "country_not_allowed"),  # +1 809: Dominican Republic
    ],
)
def test_the_safety_check_is_a_core_step_on_whatever_a_parser_accepted(
    make_config, accepted, reason
):
    app = App(make_config(), extra_plugins=[("lenient", LenientParser())])
    verdict = app.plugins.parse_number(accepted, app.route("M"))
    assert (verdict.ok, verdict.reason) == (False, reason)
    assert app.plugins.parse_number("+12125550123", app.route("M")).e164 == "+12125550123"


def test_with_every_plugin_disabled_the_core_still_parses_and_refuses(make_config):
    from corecall.plugins import known_plugin_names

    plugins = load_plugins(known_plugin_names())
    assert not [i.name for i in plugins.list() if plugins.is_active(i.name)]
    route = App(make_config()).route("M")
    assert plugins.parse_number("(212) 555-0123", route).e164 == "+12125550123"
    for refused in ("911", "+1 900 200 0000", "+44 20 7946 0018"):
        assert not plugins.parse_number(refused, route).ok, refused


def test_check_call_returning_garbage_fails_closed(make_config):
    class Garbage:
        from corecall import hookimpl

        @hookimpl
        def corecall_check_call(self, request):
            return "no"

    from corecall.domain import CallRequest

    app = App(make_config(), extra_plugins=[("garbage", Garbage())])
    agent = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="M")
    request = CallRequest(agent, "+12125550123", app.route("M"), "+12125550100")
    refusal = app.plugins.check_call(request)
    assert refusal.plugin == "garbage" and refusal.reason == "policy_error"
