"""The plugin framework: discovery, disabling without import, essentials, failures named."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from corecall_testing import AGENT_ON_ROUTE_M, config_dict, install_distribution, write_toml

from corecall import hookimpl
from corecall.app import App
from corecall.cli import main
from corecall.domain import Agent, EndReason, NumberVerdict
from corecall.errors import EssentialPluginError, NotFoundError, RefusedError
from corecall.plugins import check_can_disable, load_plugins

BUILT_IN_DISTRIBUTIONS = {
    "route_main": "corecall-route-main",
    "route_dev": "corecall-route-dev",
    "store_sqlite": "corecall-store-sqlite",
    "store_postgres": "corecall-store-postgres",
}


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


def test_disabled_plugin_is_never_imported(plugin_site):
    install_distribution(
        plugin_site, "corecall-exploding", {"exploding": "exploding_plugin"},
        {"exploding_plugin": "raise RuntimeError('imported although disabled')\n"},
    )  # fmt: skip
    plugins = load_plugins(["exploding"])
    info = {i.name: i for i in plugins.list()}["exploding"]
    assert info.enabled is False and info.error is None


def test_broken_plugin_is_named_and_the_others_keep_working(plugin_site, caplog):
    install_distribution(
        plugin_site, "corecall-broken", {"broken": "broken_plugin"},
        {"broken_plugin": "import does_not_exist_anywhere\n"},
    )  # fmt: skip
    plugins = load_plugins()
    info = {i.name: i for i in plugins.list()}["broken"]
    assert info.distribution == "corecall-broken"
    assert "does_not_exist_anywhere" in info.error
    assert "'broken'" in caplog.text and "corecall-broken" in caplog.text
    assert sorted(plugins.routes.names()) == ["D", "M"]


def test_plugin_failing_to_register_is_marked_broken(plugin_site):
    install_distribution(
        plugin_site, "corecall-badreg", {"badreg": "badreg_plugin"},
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


HIJACKER = """
    from corecall import hookimpl, RouteDefinition
    from corecall.telephony.simulated import SimulatedPBX


    class FakeAsterisk(SimulatedPBX):
        NAME = "asterisk_ami"


    class FakeSimulated(SimulatedPBX):
        NAME = "simulated"


    @hookimpl
    def corecall_register_routes(registry):
        if "{taken}" == "route":
            registry.register(RouteDefinition(code="M", name="Evil Main", button="[Main]"))


    @hookimpl
    def corecall_register_stores(registry):
        if "{taken}" == "store":
            registry.register("sqlite", lambda config: None)


    @hookimpl
    def corecall_register_trunk_drivers(registry):
        if "{taken}" == "asterisk driver":
            registry.register(FakeAsterisk)
        if "{taken}" == "simulated driver":
            registry.register(FakeSimulated)
"""

TAKEN = {  # what the hijacker registers -> (registry, name, the core's own plugin owning it)
    "route": ("routes", "M", "route_main"),
    "store": ("stores", "sqlite", "store_sqlite"),
    "asterisk driver": ("trunk_drivers", "asterisk_ami", "asterisk_ami"),
    "simulated driver": ("trunk_drivers", "simulated", "simulated_pbx"),
}


@pytest.mark.parametrize("taken", list(TAKEN))
@pytest.mark.parametrize("name", ["aaa_hijack", "zzz_hijack"])  # found before / after by name
def test_a_plugin_installed_later_cannot_take_what_the_core_registers(plugin_site, name, taken):
    """pluggy calls the newest plugin first: registrations were collected that way, so any
    third-party plugin could take route M (its button text, its name in every message) or
    the "sqlite" store, and the core's own plugin was the one reported broken. The core's
    own plugins are found first and registrations follow that order."""
    install_distribution(
        plugin_site, f"evil-{name}", {name: f"{name}_mod"},
        {f"{name}_mod": HIJACKER.replace("{taken}", taken)},
    )  # fmt: skip
    plugins = load_plugins()
    infos = {i.name: i for i in plugins.list()}
    registry, key, owner = TAKEN[taken]
    assert getattr(plugins, registry).get(key).plugin == owner
    assert infos[owner].error is None and infos[owner].enabled
    assert repr(key) in infos[name].error and repr(owner) in infos[name].error
    assert "disable one of them" in infos[name].error


def test_between_third_parties_the_first_found_by_name_wins(plugin_site):
    for name in ("zz_copycat", "aa_copycat"):  # installed in the opposite order
        install_distribution(
            plugin_site, f"corecall-{name}", {name: f"{name}_plugin"},
            {f"{name}_plugin": """
                from corecall import hookimpl, RouteDefinition

                @hookimpl
                def corecall_register_routes(registry):
                    registry.register(RouteDefinition(code="X", name="Extra", button="X"))
            """},
        )  # fmt: skip
    plugins = load_plugins()
    infos = {i.name: i for i in plugins.list()}
    assert plugins.routes.get("X").plugin == "aa_copycat"
    assert "'X'" in infos["zz_copycat"].error and "aa_copycat" in infos["zz_copycat"].error


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("name", "Ni\x1b[31mght", "name contains the invisible or control character U+001B"),
        ("button", "[Night]\u202e", "button contains the invisible or control character U+202E"),
        ("name", "Ni\u200bght", "name contains the invisible or control character U+200B"),
        ("description", "after\nhours", "description contains"),
        ("button", "", "button must be 1 to 32 characters"),
    ],
)
def test_a_route_s_shown_texts_follow_the_name_rules(make_config, caplog, field, value, said):
    """A route's name and button reach every agent's screen and the operator's terminal as
    they are: an ESC sequence or a bidi override there was accepted (tester5, from the
    configuration; the same holds for what a plugin registers)."""
    from corecall import RouteDefinition

    texts = {"code": "N", "name": "Night", "button": "[Night]", "description": "", field: value}

    class Night:
        @hookimpl
        def corecall_register_routes(self, registry):
            registry.register(RouteDefinition(**texts))

    app = App(make_config(), extra_plugins=[("night", Night())])
    info = {i.name: i for i in app.plugins.list()}["night"]
    assert "N" not in app.plugins.routes and f"route 'N': {said}" in info.error


def test_a_route_definitions_length_limits_are_the_documented_ones(make_config):
    """docs/writing-a-plugin.md: code 1 to 8 characters, name and button at most 32,
    description at most 200; one more is refused, saying the length and the limit."""
    from corecall import RouteDefinition

    longest = {"code": "ABCDEFG8", "name": "n" * 32, "button": "b" * 32, "description": "d" * 200}
    too_long = [
        ("code", "ABCDEFGH9", "route 'ABCDEFGH9': code is 9 characters long; at most 8"),
        ("name", "n" * 33, "route 'ABCDEFG8': name is 33 characters long; at most 32"),
        ("button", "b" * 33, "route 'ABCDEFG8': button is 33 characters long; at most 32"),
        ("description", "d" * 201,
         "route 'ABCDEFG8': description is 201 characters long; at most 200"),
    ]  # fmt: skip
    for field, value, said in [(None, None, None), *too_long]:
        texts = {**longest, **({field: value} if field else {})}

        class Route:
            @hookimpl
            def corecall_register_routes(self, registry, texts=texts):
                registry.register(RouteDefinition(**texts))

        app = App(make_config(), extra_plugins=[("night", Route())])
        info = {i.name: i for i in app.plugins.list()}["night"]
        if said is None:
            assert info.error is None and "ABCDEFG8" in app.plugins.routes.names()
        else:
            assert said in (info.error or ""), (field, info.error)
            assert not set(app.plugins.routes.names()) & {"ABCDEFG8", "ABCDEFGH9"}
        app.close()


def test_the_core_s_own_distributions_are_the_ones_under_plugins():
    """FIRST_PARTY (found before third parties) lists exactly the distributions shipped in
    plugins/, by entry-point name."""
    from corecall.plugins import FIRST_PARTY

    shipped = {}
    for pyproject in Path(__file__).parents[1].joinpath("plugins").glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        for entry_point in project["entry-points"]["corecall"]:
            shipped[entry_point] = project["name"]
    assert FIRST_PARTY == shipped


def test_unknown_hook_breaks_only_that_plugin(plugin_site):
    install_distribution(
        plugin_site, "corecall-typo", {"typo": "typo_plugin"},
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


PARSE_ANSWERS = {  # a parse plugin's answer -> what the log and the refusal say
    "raises": ("raise RuntimeError('lookup table missing')", "RuntimeError: lookup table missing"),
    "accept() refuses": ("return NumberVerdict.accept(text)", "not an E.164 number"),
    "bypasses accept()": ("return NumberVerdict(ok=True, e164=text)", "non-E.164"),
    "not a verdict": ("return text", "returned str, not a NumberVerdict"),
    "empty refusal": ("return NumberVerdict.refuse('', '')", "is not a stable code"),
    "blank message": ("return NumberVerdict.refuse('nope', '  ')", "is empty"),
    "code with spaces": ("return NumberVerdict.refuse('Not OK!', 'No.')", "is not a stable code"),
}


@pytest.mark.parametrize("answer", list(PARSE_ANSWERS))
async def test_a_broken_parse_plugin_fails_closed_and_is_named(
    answer, plugin_site, tmp_path, started_calls, capsys, caplog
):
    """A parse plugin that breaks its contract refuses the number, naming itself: the agent
    reads why and whom to tell (was "Sorry, something went wrong on my side", or the core's
    own ValueError with no plugin named at the CLI), nothing is dialed, and a refusal always
    has a code and a message."""
    from corecall.errors import RefusedError

    code, said = PARSE_ANSWERS[answer]
    install_distribution(
        plugin_site, "corecall-t5-parser", {"t5_parser": "t5_parser_mod"},
        {"t5_parser_mod": f"""
            from corecall import hookimpl
            from corecall.domain import NumberVerdict

            @hookimpl
            def corecall_parse_number(text, route):
                {code}
        """},
    )  # fmt: skip
    app, manager = await started_calls()
    for text in ("+1 (212) 555-0123", "+1212555abcd", "+1911"):
        with pytest.raises(RefusedError) as refused:
            await manager.place(AGENT_ON_ROUTE_M, text)
        assert refused.value.reason == "policy_error"
        assert "the t5_parser number check failed" in refused.value.message
        assert said in refused.value.message and "Nothing was dialed" in refused.value.message
    assert app.store.recent_calls(10) == []
    assert "plugin 't5_parser' failed in corecall_parse_number: " in caplog.text

    path = write_toml(tmp_path / "c.toml", config_dict(tmp_path))
    assert (
        main(["--config", str(path), "number", "check", "+1 (212) 555-0123", "--route", "M"]) == 1
    )
    out = capsys.readouterr()
    assert "policy_error" in out.out + out.err and "t5_parser" in out.out + out.err
    assert "unexpected" not in out.err


async def test_a_broken_route_resolver_fails_the_call_not_every_screen(
    plugin_site, tmp_path, started_calls, capsys, caplog
):
    """A resolver that raised took down /start, /settings, /agents and `agents list` with
    'something went wrong', naming no plugin (tester5). The call fails closed, naming it;
    what only shows a route falls back to the agent's own selected route."""
    from corecall.agents import AgentAdmin
    from corecall.errors import RefusedError

    install_distribution(
        plugin_site, "corecall-t5-resolver", {"t5_resolver": "t5_resolver_mod"},
        {"t5_resolver_mod": """
            from corecall import hookimpl

            @hookimpl
            def corecall_resolve_route(agent, routes):
                raise RuntimeError("t5 resolver exploded")
        """},
    )  # fmt: skip
    app, manager = await started_calls()
    with pytest.raises(RefusedError) as refused:
        await manager.place(AGENT_ON_ROUTE_M, "+12125550123")
    assert refused.value.reason == "policy_error"
    assert refused.value.message.startswith("The call was not placed: the t5_resolver plugin")
    assert "t5 resolver exploded" in refused.value.message
    assert app.store.recent_calls(10) == []
    assert "plugin 't5_resolver' failed in corecall_resolve_route" in caplog.text
    admin = AgentAdmin(app)
    agent = admin.get(AGENT_ON_ROUTE_M)
    assert admin.route_of(agent).code == "M"
    assert admin.caller_id_line(agent) == "Caller ID: +12125550100 [M]"

    path = write_toml(tmp_path / "c.toml", config_dict(tmp_path))
    main(["--config", str(path), "agents", "add", "--telegram-id", "7", "--phone",
          "+12125550177", "--authorize"])  # fmt: skip
    main(["--config", str(path), "agents", "set-route", "7", "D"])
    capsys.readouterr()
    assert main(["--config", str(path), "agents", "list"]) == 0
    assert "\tD\t+12125550199 [D]" in capsys.readouterr().out
    code = main(["--config", str(path), "policy", "check", "--agent", "7", "--target",
                 "+12125550123"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 1 and "the t5_resolver plugin" in out.out + out.err
    assert "unexpected" not in out.err


async def test_a_hook_that_holds_the_event_loop_is_named(started_calls, monkeypatch, caplog):
    """A policy doing an 8 s lookup without @blocking froze every call and message, and no
    log line at any level said why (tester5)."""
    import logging
    import time

    import corecall.plugins

    monkeypatch.setattr(corecall.plugins, "SLOW_HOOK_SECONDS", 0.05)

    class SlowLookup:
        @hookimpl
        def corecall_check_call(self, request):
            time.sleep(0.1)

    class SlowListener:
        @hookimpl
        def corecall_call_refused(self, agent_id, reason):
            time.sleep(0.1)

    caplog.set_level(logging.INFO, logger="corecall.plugins")
    _app, manager = await started_calls(
        extra_plugins=[("slow_lookup", SlowLookup()), ("slow_listener", SlowListener())]
    )
    await manager.place(AGENT_ON_ROUTE_M, "+12125550123")
    assert "plugin 'slow_lookup' held the event loop 0.1 s in corecall_check_call" in caplog.text
    assert "mark it @corecall.hookspecs.blocking" in caplog.text
    with pytest.raises(RefusedError):
        await manager.place(AGENT_ON_ROUTE_M, "911")
    assert "plugin 'slow_listener' held the event loop 0.1 s in corecall_call_refused" in (
        caplog.text
    )


async def test_a_slow_hook_on_the_store_thread_is_only_noted(started_calls, monkeypatch, caplog):
    import logging
    import time

    import corecall.plugins
    from corecall.hookspecs import blocking

    monkeypatch.setattr(corecall.plugins, "SLOW_HOOK_SECONDS", 0.05)

    class SlowButBlocking:
        @blocking
        @hookimpl
        def corecall_check_call(self, request):
            time.sleep(0.1)

    caplog.set_level(logging.INFO, logger="corecall.plugins")
    _app, manager = await started_calls(extra_plugins=[("careful", SlowButBlocking())])
    await manager.place(AGENT_ON_ROUTE_M, "+12125550124")
    assert "plugin 'careful' took 0.1 s in corecall_check_call" in caplog.text
    assert "held the event loop" not in caplog.text


@pytest.mark.parametrize("stop", [SystemExit(3), KeyboardInterrupt()])
async def test_a_plugin_cannot_stop_corecall_from_a_hook(started_calls, caplog, stop):
    """A policy calling sys.exit(3) (some libraries do on a bad config) ended the whole
    process at once, cutting every live call, with no word anywhere (tester5). It is that
    plugin's failure: the call is refused naming it, the rest goes on."""

    class Exits:
        @hookimpl
        def corecall_check_call(self, request):
            if request.target == "+12125550124":
                raise stop

        @hookimpl
        def corecall_call_state_changed(self, call, previous):
            if call.target == "+12125550125":
                raise stop

    _app, manager = await started_calls(extra_plugins=[("exits", Exits())])
    live = await manager.place(AGENT_ON_ROUTE_M, "+12125550123")
    with pytest.raises(RefusedError) as refused:
        await manager.place(AGENT_ON_ROUTE_M, "+12125550124")
    assert refused.value.reason == "policy_error" and "the exits check failed" in (
        refused.value.message
    )
    assert f"raised {type(stop).__name__}" in refused.value.message
    assert (await manager.wait_final(live.id, timeout=5)).reason is EndReason.COMPLETED
    heard = await manager.place(AGENT_ON_ROUTE_M, "+12125550125")  # a listener that exits
    assert (await manager.wait_final(heard.id, timeout=5)).reason is EndReason.COMPLETED
    assert "plugin 'exits' failed in corecall_call_state_changed" in caplog.text


async def test_a_refusal_s_message_reaches_people_as_one_safe_line(started_calls, tmp_path):
    """A message quoting an external API's text put an ESC sequence and a forged line
    ('allowed: the call would be placed') into policy check, the agent's message and the
    audit (tester5)."""
    from corecall.domain import Refusal

    class Quoting:
        @hookimpl
        def corecall_check_call(self, request):
            return Refusal("api_says_no", "msg \x1b[31mRED\nallowed: the call would be placed")

    app, manager = await started_calls(extra_plugins=[("quoting", Quoting())])
    with pytest.raises(RefusedError) as refused:
        await manager.place(AGENT_ON_ROUTE_M, "+12125550123")
    message = refused.value.message
    assert "\x1b" not in message and "\n" not in message
    assert message == "msg \ufffd[31mRED allowed: the call would be placed"
    [entry] = [e for e in app.store.audit_log(10) if e.action == "call.refused"]
    assert "\x1b" not in entry.detail and "\n" not in entry.detail


def test_a_parse_plugin_s_acceptance_still_meets_the_safety_check(make_config):
    class Lenient:
        @hookimpl
        def corecall_parse_number(self, text, route):
            return NumberVerdict.accept("+19005550123")  # US premium rate

    app = App(make_config(), extra_plugins=[("lenient", Lenient())])
    verdict = app.plugins.parse_number("anything", app.route("M"))
    assert not verdict.ok and verdict.reason == "premium_rate"


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


@pytest.mark.parametrize(
    "reason, message, said",
    [
        ("", "", "is not a stable code"),
        ("Closed Now!", "The desk is closed.", "is not a stable code"),
        ("closed", "", "is empty"),
        ("closed", " \n ", "is empty"),
        (None, "The desk is closed.", "is not a stable code"),
    ],
)
def test_a_refusal_without_a_code_or_a_message_fails_closed_naming_the_plugin(
    make_config, reason, message, said
):
    """An agent would have read '⛔ Not dialed. ' with nothing after it."""
    from corecall.domain import CallRequest, Refusal

    class Terse:
        @hookimpl
        def corecall_check_call(self, request):
            return Refusal(reason, message)

    app = App(make_config(), extra_plugins=[("terse", Terse())])
    agent = Agent(telegram_id=1, phone="+12125550123", authorized=True, route_code="M")
    request = CallRequest(agent, "+12125550123", app.route("M"), "+12125550100")
    refusal = app.plugins.check_call(request)
    assert refusal.plugin == "terse" and refusal.reason == "policy_error"
    assert "the terse check failed" in refusal.message and said in refusal.message


def test_a_plugin_broken_while_registering_is_switched_off_entirely(plugin_site, make_config):
    install_distribution(
        plugin_site, "corecall-halfway", {"halfway": "halfway_plugin"},
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
