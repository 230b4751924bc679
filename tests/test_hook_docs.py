"""Every hook is documented in docs/plugin_hooks.md, and tested (llm/datasette style).

For each function ``corecall_*`` in :mod:`corecall.hookspecs` this fails when:

* docs/plugin_hooks.md has no ``## corecall_<name>`` heading for it (or has one for a hook
  that does not exist);
* that section does not start with a signature matching the spec (argument names and
  annotations), or does not say ``firstresult`` when the hook is one;
* no test under tests/ names the hook (this file and other docs tests do not count: running
  the doc's examples is not testing the hook).

It also runs the examples of docs/plugin_hooks.md and docs/writing-a-plugin.md.
"""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import inspect
import logging
import re
import tomllib
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest
import typer
from corecall_testing import ANY_HOUR
from typer.testing import CliRunner

from corecall import hookspecs
from corecall.app import App
from corecall.config import parse_config
from corecall.domain import (
    Agent,
    CallRecord,
    CallRequest,
    CallState,
    EndReason,
    Route,
    TrunkConfig,
)
from corecall.errors import ConfigError
from corecall.plugins import load_plugins
from corecall.store import Store
from corecall.telephony.driver import OriginateRequest, TrunkDriver

TESTS = Path(__file__).resolve().parent
DOCS = TESTS.parent / "docs"
HOOK_DOC = DOCS / "plugin_hooks.md"
GUIDE = DOCS / "writing-a-plugin.md"

HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("corecall_"))

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def sections(path: Path) -> dict[str, str]:
    """``## `` heading (without backticks) -> the text up to the next ``## `` heading."""
    found: dict[str, str] = {}
    parts = re.split(r"^## (.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        title = title.strip().strip("`")
        assert title not in found, f"{path.name}: two sections named {title!r}"
        found[title] = body
    return found


def python_blocks(text: str) -> list[str]:
    return [m["body"] for m in _FENCE.finditer(text) if m["lang"] == "python"]


def hook_section(hook: str) -> str:
    doc = sections(HOOK_DOC)
    if hook not in doc:
        pytest.fail(f"docs/plugin_hooks.md has no '## {hook}' section")
    return doc[hook]


# --------------------------------------------------------------------------- documented


def test_hooks_are_found():
    assert HOOKS
    for hook in HOOKS:
        assert hasattr(getattr(hookspecs, hook), f"{hookspecs.PROJECT}_spec"), hook


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    section = hook_section(hook)
    blocks = python_blocks(section)
    assert blocks, f"{hook}: the section has no python code block"
    tree = ast.parse(blocks[0])
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef), (
        f"{hook}: the section's first code block must be the signature, "
        f"`def {hook}(...) -> ...: ...`"
    )
    func = tree.body[0]
    assert func.name == hook
    spec = getattr(hookspecs, hook)
    wanted = inspect.signature(spec)
    documented = [(a.arg, ast.unparse(a.annotation) if a.annotation else None)
                  for a in func.args.args]  # fmt: skip
    assert documented == [(p.name, p.annotation) for p in wanted.parameters.values()], hook
    assert func.returns is not None and ast.unparse(func.returns) == wanted.return_annotation
    firstresult = getattr(spec, f"{hookspecs.PROJECT}_spec")["firstresult"]
    assert ("firstresult" in section) == firstresult, (
        f"{hook}: the section must say `firstresult` exactly when the hook is firstresult"
    )


def test_no_section_for_a_hook_that_does_not_exist():
    stale = [t for t in sections(HOOK_DOC) if t.startswith("corecall_") and t not in HOOKS]
    assert not stale, f"docs/plugin_hooks.md documents hooks that do not exist: {stale}"


def test_driver_and_store_contracts_are_summarized():
    text = HOOK_DOC.read_text(encoding="utf-8")
    driver = {n for n, v in vars(TrunkDriver).items() if callable(v) and not n.startswith("_")}
    store = set(Store.__abstractmethods__)
    missing = sorted(
        n for n in driver | store | {"NAME"} if not re.search(rf"`(async )?{n}\b", text)
    )
    assert not missing, f"docs/plugin_hooks.md does not mention: {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_docs_point_at_headings():
    anchors = {
        path.name: {_slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE)}
        for path in (HOOK_DOC, GUIDE)
    }
    for path in (HOOK_DOC, GUIDE):
        for target, anchor in re.findall(r"\]\(([\w.-]*)#([\w-]+)\)", path.read_text()):
            assert anchor in anchors[target or path.name], f"{path.name}: broken #{anchor}"
        for target in re.findall(r"\]\(([\w.-]+\.md)[)#]", path.read_text()):
            assert (DOCS / target).exists(), f"{path.name}: broken link to {target}"


# --------------------------------------------------------------------------- tested


def _test_sources() -> list[Path]:
    """Test code that counts as testing a hook: not this file, not docs tests, not the
    example package (it is code under test, not a test)."""
    return [
        path
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()
        and "doc" not in path.name
        and "example_plugin" not in path.relative_to(TESTS).parts
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    pattern = re.compile(rf"\b{hook}\b")
    users = [p.name for p in _test_sources() if pattern.search(p.read_text(encoding="utf-8"))]
    assert users, (
        f"no test under tests/ names {hook}: write one that exercises it (running the "
        "example in docs/plugin_hooks.md does not count)"
    )


# --------------------------------------------------------------------------- the examples

FAST = {"ring_seconds": 0.01, "answer_seconds": 0.01, "talk_seconds": 0.01}


def make_config(tmp_path: Path, extra_toml: str = "", **store):
    raw = tomllib.loads(
        f'data_dir = "{tmp_path.as_posix()}"\n'
        '[trunks.main]\ndriver = "simulated"\n'
        '[trunks.dev]\ndriver = "simulated"\n'
        '[routes.M]\ntrunk = "main"\ncaller_ids = ["+12125550100"]\n'
        '[routes.D]\ntrunk = "dev"\ncaller_ids = ["+12125550199"]\n' + extra_toml
    )
    # sqlite_path is the SQLite store's own key: only the sqlite backend takes it.
    sqlite = (
        {}
        if store.get("backend", "sqlite") != "sqlite"
        else {"sqlite_path": str(tmp_path / "corecall.sqlite3")}
    )
    raw["store"] = {**sqlite, **store}
    # Calls are placed at the wall clock's hour: calling hours open round the clock, as in
    # corecall_testing.config_dict (without it these tests failed every night in New York).
    raw.setdefault("plugins", {}).setdefault("policy_calling_hours", dict(ANY_HOUR))
    return parse_config(raw, path=None)


def make_route(code="M", countries=("US", "CA"), driver="simulated") -> Route:
    trunk = TrunkConfig(name=code.lower(), driver=driver, options=FAST)
    return Route(code=code, name=code, button=code, trunk=trunk, caller_ids=("+12125550100",),
                 countries=countries)  # fmt: skip


def make_request(target="+12125550123", route_code="M", at=None) -> CallRequest:
    return CallRequest(
        agent=Agent(telegram_id=7, phone="+12125550177", authorized=True, route_code=route_code),
        target=target, route=make_route(route_code), caller_id="+12125550100",
        **({"at": at} if at is not None else {}),
    )  # fmt: skip


def load_example(code: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    return module


def hook_example(hook: str) -> types.ModuleType:
    blocks = python_blocks(hook_section(hook))
    assert len(blocks) >= 2, f"{hook}: the section has no example after its signature"
    example = load_example(blocks[-1], f"doc_example_{hook}")
    assert callable(getattr(example, hook, None)), f"{hook}: the example does not implement it"
    return example


def with_example(module: types.ModuleType):
    return load_plugins(extra=[("doc_example", module)])


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))


def test_example_parse_number():
    plugins = with_example(hook_example("corecall_parse_number"))
    route = make_route(countries=("US", "CA", "GB"))
    assert plugins.parse_number("00 44 20 7946 0018", route).e164 == "+442079460018"
    assert plugins.parse_number("00 1 900 200 0000", route).reason == "premium_rate"
    assert plugins.parse_number("+1 212 555 0123", route).e164 == "+12125550123"
    assert not load_plugins().parse_number("00 44 20 7946 0018", route).ok


def test_example_check_call():
    # The installed compliance policies read the store and the clock; this is about the
    # doc's example alone.
    compliance = {"policy_calling_hours", "policy_dnc", "policy_repeat_calls"}
    example = hook_example("corecall_check_call")
    plugins = load_plugins(disabled=compliance, extra=[("doc_example", example)])
    refusal = plugins.check_call(make_request(target="+12125550111"))
    assert (refusal.reason, refusal.plugin) == ("do_not_call", "doc_example")
    assert plugins.check_call(make_request(target="+12125550123")) is None


def test_example_register_stores(tmp_path):
    example = hook_example("corecall_register_stores")
    config = make_config(tmp_path, backend="sqlite_agents")
    app = App(config, extra_plugins=[("doc_example", example)])
    assert app.plugins.stores.get("sqlite_agents").plugin == "doc_example"
    assert app.plugins.infos["doc_example"].essential
    try:
        app.store.add_agent(5, "+12125550123", actor="test")
        assert [a.telegram_id for a in app.store.list_agents()] == [5]
    finally:
        app.close()
    assert (tmp_path / "agents.db").exists()


def test_example_register_routes(tmp_path):
    example = hook_example("corecall_register_routes")
    night = '[trunks.night]\ndriver = "simulated"\n[routes.N]\ntrunk = "night"\ncaller_ids = ["+12125550150"]\n'  # noqa: E501
    app = App(make_config(tmp_path, night), extra_plugins=[("doc_example", example)])
    route = app.routes()["N"]
    assert (route.name, route.button, route.plugin) == ("Night", "[Night Route]  🌙", "doc_example")


def test_example_resolve_route():
    plugins = with_example(hook_example("corecall_resolve_route"))
    routes = {"M": make_route("M"), "D": make_route("D")}
    agent = Agent(telegram_id=7, phone="+12125550177")
    assert plugins.resolve_route(agent, routes) is routes["M"]
    assert plugins.resolve_route(Agent(7, "+12125550177", route_code="D"), routes) is routes["D"]
    assert load_plugins().resolve_route(agent, routes) is None


def _place_one_call(driver: TrunkDriver, trunk: TrunkConfig) -> list[CallState]:
    async def scenario() -> list[CallState]:
        states: list[CallState] = []
        done = asyncio.Event()

        def progress(call_id, state, reason=None, detail=""):
            states.append(state)
            if state is CallState.ENDED:
                done.set()

        await driver.start()
        request = OriginateRequest(
            call_id="ab" * 16, agent_phone="+12125550177", target="+12125550123",
            caller_id="+12125550100", trunk=trunk,
        )  # fmt: skip
        await driver.originate(request, progress)
        await asyncio.wait_for(done.wait(), 5)
        await driver.stop()
        return states

    return asyncio.run(scenario())


def test_example_register_trunk_drivers(tmp_path, caplog):
    plugins = with_example(hook_example("corecall_register_trunk_drivers"))
    registered = plugins.trunk_drivers.get("simulated_logged")
    assert registered.plugin == "doc_example"
    trunk = TrunkConfig(name="night", driver="simulated_logged", options=FAST)
    with caplog.at_level(logging.INFO):
        states = _place_one_call(registered.value(make_config(tmp_path)), trunk)
    assert states[-1] is CallState.ENDED and CallState.CONNECTED in states
    assert f"call {'ab' * 16} on trunk night" in caplog.text


def test_example_call_state_changed():
    example = hook_example("corecall_call_state_changed")
    plugins = with_example(example)
    call = CallRecord(id="cd" * 16, agent_id=7, agent_phone="+12125550177", target="+12125550123",
                      route_code="M", trunk="main", caller_id="+12125550100")  # fmt: skip
    plugins.notify_state_changed(call, None)
    ended = attrs.evolve(call, state=CallState.ENDED, reason=EndReason.COMPLETED)
    plugins.notify_state_changed(ended, CallState.CONNECTED)
    assert dict(example.ENDED) == {"completed": 1}


def guide_block(marker: str) -> str:
    [block] = [b for b in python_blocks(GUIDE.read_text(encoding="utf-8")) if marker in b]
    return block


def test_guide_config_blocks_parse(tmp_path):
    toml_blocks = [m["body"] for m in _FENCE.finditer(GUIDE.read_text()) if m["lang"] == "toml"]
    night, asterisk = (b for b in toml_blocks if "[trunks.night]" in b)
    config = make_config(tmp_path, night)
    assert (config.routes["N"].trunk, config.routes["N"].caller_ids) == ("night", ("+12125550150",))
    pbx = '[plugins.asterisk_ami.servers.pbx1]\nhost = "127.0.0.1"\n'
    app = App(make_config(tmp_path, pbx + asterisk))
    trunk = app.trunk("night")  # validated by the Asterisk driver's own options class
    assert (trunk.driver, trunk.options.server) == ("asterisk_ami", "pbx1")
    assert trunk.options.endpoint == "corecall-night"


def test_guide_business_hours_policy(tmp_path):
    example = load_example(guide_block("def corecall_check_call"), "doc_business_hours")
    toml_blocks = [m["body"] for m in _FENCE.finditer(GUIDE.read_text()) if m["lang"] == "toml"]
    [table] = [b for b in toml_blocks if "[plugins.policy_business_hours]" in b]
    table = table.replace("policy_business_hours", "doc_example")
    night = '[trunks.night]\ndriver = "simulated"\n[routes.N]\ntrunk = "night"\ncaller_ids = ["+12125550150"]\n'  # noqa: E501

    def app_for(toml: str) -> App:
        return App(make_config(tmp_path, night + toml), extra_plugins=[("doc_example", example)])

    plugins = app_for(table).plugins
    chicago = ZoneInfo("America/Chicago")

    def at(*when, **kwargs):  # the request's moment, in UTC as corecall passes it
        moment = dt.datetime(*when, tzinfo=chicago).astimezone(dt.UTC)
        return plugins.check_call(make_request(at=moment, **kwargs))

    # The policy reads the request's moment, not the wall clock (the guide's example read
    # the clock, so `corecall policy check --at` asked about now; tester5).
    assert "dt.datetime.now" not in guide_block("def corecall_check_call")
    assert at(2024, 6, 3, 10, 0) is None  # a Monday morning
    refusal = at(2024, 6, 3, 17, 30)  # closing time, as configured
    assert (refusal.reason, refusal.plugin) == ("outside_business_hours", "doc_example")
    assert "Monday to Friday, 09:00 to 17:30 (America/Chicago)" in refusal.message
    assert at(2024, 6, 8, 10, 0).reason == "outside_business_hours"  # a Saturday
    assert at(2024, 6, 8, 10, 0, route_code="N") is None  # routes.N: always
    closes = 'closes = "17:30"'
    for old, wrong, key, expected in [
        (
            closes,
            'closes = "5pm"',
            "closes",
            "expected a time of day as HH:MM, e.g. 09:00; got '5pm'",
        ),
        ('timezone = "America/Chicago"', 'timezone = "Mars/Base"', "timezone", "IANA time zone"),
        (closes, "weekends = 1", "weekends", "expected true or false, got 1"),
        (
            closes,
            "closing = 1",
            "closing",
            "expected one of: always, closes, opens, routes, timezone",
        ),
    ]:
        with pytest.raises(ConfigError) as err:
            app_for(table.replace(old, wrong)).plugin_options("doc_example")
        assert f"[plugins.doc_example.{key}] " in str(err.value) and expected in str(err.value)


def test_guide_trunk_driver_skeleton(tmp_path):
    example = load_example(guide_block("class ExamplePBX"), "doc_example_pbx")
    registered = with_example(example).trunk_drivers.get("example_pbx")
    assert registered.plugin == "doc_example"
    driver = registered.value(make_config(tmp_path))
    seen: list[tuple] = []

    async def scenario():
        await driver.start()
        assert await driver.hangup("ef" * 16) is False
        request = OriginateRequest(
            call_id="ef" * 16, agent_phone="+12125550177", target="+12125550123",
            caller_id="+12125550100", trunk=TrunkConfig(name="x", driver="example_pbx"),
        )  # fmt: skip
        await driver.originate(request, lambda *args: seen.append(args))
        driver.on_pbx_event("ef" * 16, CallState.AGENT_RINGING)
        assert await driver.hangup("ef" * 16) is True
        driver.on_pbx_event("ef" * 16, CallState.ENDED, EndReason.CANCELLED)
        assert await driver.hangup("ef" * 16) is False
        await driver.stop()

    asyncio.run(scenario())
    assert seen == [
        ("ef" * 16, CallState.AGENT_RINGING),
        ("ef" * 16, CallState.ENDED, EndReason.CANCELLED, ""),
    ]


def test_example_register_services(tmp_path):
    example = hook_example("corecall_register_services")
    app = App(make_config(tmp_path), extra_plugins=[("doc_example", example)])

    async def scenario():
        manager = app.call_manager(services=True)
        await manager.start()
        service = manager.services.get("live_call_logger")
        try:
            agent = app.store.add_agent(7, "+12125550177", authorized=True, actor="test")
            app.store.set_route(agent.telegram_id, "M", actor="test")
            call = await manager.place(7, "+12125550123")
            service.corecall_call_state_changed(call, None)  # as the writer announces it
            assert call.id in service.live
            await manager.hangup(call.id)
            await manager.wait_final(call.id, timeout=5)
            assert call.id not in service.live  # the hook heard the call end
        finally:
            await manager.stop()
        assert service.task.cancelled()

    try:
        asyncio.run(scenario())
    finally:
        app.close()


def test_examples_of_the_notification_hooks(caplog):
    refused = hook_example("corecall_call_refused")
    links = hook_example("corecall_link_state_changed")
    edits = hook_example("corecall_chat_edit_sent")
    limited = hook_example("corecall_chat_rate_limited")
    writes = hook_example("corecall_store_write")
    plugins = load_plugins(extra=[("refused", refused), ("links", links), ("edits", edits),
                                  ("limited", limited), ("writes", writes)])  # fmt: skip
    plugins.notify_call_refused(7, "premium_rate")
    plugins.notify_call_refused(7, "premium_rate")
    assert dict(refused.REFUSED) == {"premium_rate": 2}
    plugins.notify_link_state_changed("asterisk_ami", "pbx1", False)
    assert links.DOWN == {("asterisk_ami", "pbx1")}
    plugins.notify_link_state_changed("asterisk_ami", "pbx1", True)
    assert links.DOWN == set()
    plugins.notify_chat_edit_sent(42)
    assert dict(edits.EDITS) == {42: 1}
    plugins.notify_chat_rate_limited(42, 3.0)
    assert limited.WAITED == [3.0]
    with caplog.at_level(logging.WARNING):
        plugins.notify_store_write("save_progress", 0.75)
        plugins.notify_store_write("save_progress", 0.01)
    assert caplog.text.count("store save_progress took") == 1


def test_example_plugin_options(tmp_path, monkeypatch):
    example = hook_example("corecall_plugin_options")
    config = make_config(tmp_path, '[plugins.doc_example]\nopens = "21:00"\n')
    monkeypatch.setenv("CORECALL_PLUGINS_DOC_EXAMPLE_DESK_TOKEN", "s3cret")
    app = App(config, extra_plugins=[("doc_example", example)])
    options = app.plugin_options("doc_example")
    assert (options.opens, options.desk_token, options.max_calls) == ("21:00", "s3cret", 50)
    assert app.plugins.context("doc_example").options is options


def test_example_register_commands(tmp_path):
    example = hook_example("corecall_register_commands")
    app = App(make_config(tmp_path), extra_plugins=[("doc_example", example)])
    cli = typer.Typer()
    cli.callback()(lambda: None)
    app.plugins.register_commands(cli)
    try:
        result = CliRunner().invoke(cli, ["night-desk", "status"])
    finally:
        app.close()
    assert result.exit_code == 0, result.output
    assert result.output == "doc_example: 0 agents\n"


# --------------------------------------------------------------------------- in step with the code


def _paragraph(text: str, start: str) -> str:
    """The paragraph of ``text`` that contains ``start``, joined into one line."""
    at = text.index(start)
    begin = text.rfind("\n\n", 0, at) + 2
    end = text.find("\n\n", at)
    return " ".join(text[begin : end if end >= 0 else None].split())


def test_state_changed_lists_every_state_a_listener_gets():
    """A listener is told every state of CallState that a call can reach (tester5: the list
    left out awaiting_confirmation, which every call on a confirm = "key" route reaches)."""
    when = _paragraph(hook_section("corecall_call_state_changed"), "**When:**")
    named = re.findall(r"`(\w+)`", when)
    assert named, when
    missing = [s.value for s in CallState if s.value not in named and s.name not in named]
    assert not missing, f"corecall_call_state_changed's **When:** leaves out {missing}: {when}"
    values = {s.value for s in CallState}
    first_mentions = [CallState(n) for n in dict.fromkeys(named) if n in values]
    assert first_mentions == list(CallState), f"not in the order calls reach them: {when}"


def test_plugin_kinds_are_the_ones_plugins_list_prints():
    """docs/plugin_hooks.md names every kind `corecall plugins list` can print, with the
    hooks that give it, in the order they are tried (tester5: service, commands, other and
    unknown were missing)."""
    from corecall.plugins import _KIND_BY_HOOK, PluginInfo, _kind

    text = _paragraph(HOOK_DOC.read_text(encoding="utf-8"), "names a plugin's kind")
    documented = {
        kind: sorted(f"corecall_{h}" for h in re.findall(r"`(\w+)`", hooks))
        for kind, hooks in re.findall(r"`(\w+)` \(((?:`\w+`(?:, )?)+)\)", text)
    }
    by_kind: dict[str, list[str]] = {}
    for hook, kind in _KIND_BY_HOOK:
        by_kind.setdefault(kind, []).append(hook)
    assert documented == {kind: sorted(hooks) for kind, hooks in by_kind.items()}, text
    assert list(documented) == list(by_kind), f"kinds out of order: {text}"
    fallbacks = {_kind([]), attrs.fields(PluginInfo).kind.default}  # "other", "unknown"
    for kind in fallbacks:
        assert f"`{kind}`" in text, f"docs/plugin_hooks.md does not say when the kind is {kind}"
