"""Policy plugins (``corecall_check_call``) run on the event loop as far as they can (issue 11:
the store-thread hop on every call was most of place()'s p99).

A plugin's store reads are served by the store's non-blocking view (SQLite); from the first
plugin that cannot be answered that way (PostgreSQL, a read the view does not offer, a plugin
marked ``blocking``) the rest are asked on the store thread, in the same order, so the
verdict and the refusal that wins are the same either way.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from corecall_testing import AGENT_ON_ROUTE_M

from corecall import hookimpl
from corecall.calls import CallManager
from corecall.domain import Refusal
from corecall.errors import RefusedError
from corecall.hookspecs import blocking
from corecall.store import NowaitReads, StoreWouldBlock
from corecall.telephony.driver import TrunkDriver

AGENT = AGENT_ON_ROUTE_M
TARGET = "+12125550123"
LISTED = "+12125550177"


class NullDriver(TrunkDriver):
    NAME = "null"
    originated: list = []

    async def originate(self, request, progress):
        NullDriver.originated.append(request)

    async def hangup(self, call_id):
        return True


class Seen:
    """A policy plugin that records where it ran and what its context.store was."""

    def __init__(self, name: str, *, read=None, refuse: str | None = None) -> None:
        self.name, self.read, self.refuse = name, read, refuse
        self.calls: list[tuple[str, str]] = []  # (thread: "loop"/"store", store kind)

    def plugin(self, log: list):
        seen = self

        class Plugin:
            @hookimpl(trylast=True)
            def corecall_check_call(self, request, context):
                on_loop = threading.current_thread() is threading.main_thread()
                log.append((seen.name, "loop" if on_loop else "store"))
                if seen.read is not None:
                    seen.read(context.store, request)
                if seen.refuse:
                    return Refusal(seen.refuse, f"{seen.name} says no", seen.name)
                return None

        return Plugin()


@pytest.fixture
def build(started_calls):
    async def make(*seen: Seen, **sections):
        NullDriver.originated.clear()
        log: list = []

        class Drivers:
            @hookimpl
            def corecall_register_trunk_drivers(self, registry):
                registry.register(NullDriver)

        sections.setdefault("trunks", {"main": {"driver": "null"}, "dev": {"driver": "null"}})
        plugins = [("null_driver", Drivers())] + [(s.name, s.plugin(log)) for s in seen]
        app, manager = await started_calls(extra_plugins=plugins, **sections)
        return app, manager, log

    return make


async def test_a_call_is_checked_on_the_loop_with_no_store_thread_trip(build):
    """SQLite: the agent read, every policy (the do-not-call lookup included) and the call
    record are done on the event loop; the store thread is not asked before the Originate."""
    reader = Seen("reader", read=lambda store, request: store.dnc_contains(request.target))
    _app, manager, log = await build(reader)
    trips = manager.store_executor.jobs

    async def originate(request, progress):
        NullDriver.originated.append((request, manager.store_executor.jobs))

    manager.drivers["null"].originate = originate
    await manager.place(AGENT, TARGET)
    ((_request, trips_at_originate),) = NullDriver.originated
    assert trips_at_originate == trips
    assert log == [("reader", "loop")]


async def test_the_dnc_list_refuses_on_the_loop_and_the_refusal_is_audited(build):
    app, manager, log = await build(Seen("after"))
    app.store.dnc_add(LISTED, reason="asked", actor="cli:ops")
    with pytest.raises(RefusedError) as err:
        await manager.place(AGENT, LISTED)
    assert err.value.reason == "do_not_call"
    assert "do-not-call list" in err.value.message
    assert NullDriver.originated == []
    assert log == []  # the DNC plugin refused first: the ones after it were not asked
    (entry,) = [e for e in app.store.audit_log() if e.action == "call.refused"]
    assert entry.subject == LISTED and "do_not_call by policy_dnc" in entry.detail
    # Listed by another connection a moment ago (the CLI): the loop's read sees it at once.
    other = "+12125550188"
    app.store.dnc_add(other, actor="cli:ops")
    with pytest.raises(RefusedError, match="do-not-call"):
        await manager.place(AGENT, other)


def _unoffered_read(store, request):
    store.list_agents()  # a scan: not offered on the loop


async def test_a_read_the_loop_cannot_answer_moves_the_rest_to_the_store_thread_in_order(build):
    first = Seen("first")
    scanner = Seen("scanner", read=_unoffered_read)
    last = Seen("last", refuse="last_says_no")
    _app, manager, log = await build(first, scanner, last)
    with pytest.raises(RefusedError) as err:
        await manager.place(AGENT, TARGET)
    assert err.value.reason == "last_says_no"
    assert log == [
        ("first", "loop"), ("scanner", "loop"),  # scanner's read would block: stop here
        ("scanner", "store"), ("last", "store"),  # ...and go on, in order, on the thread
    ]  # fmt: skip


async def test_a_plugin_cannot_swallow_the_move_to_the_store_thread(build):
    """A plugin that catches every Exception around its read (and would then allow the call
    without the data) still gets asked on the store thread, where the read is answered."""
    answers = []

    def careless(store, request):
        try:
            answers.append(len(store.list_agents()))
        except Exception:
            answers.append("swallowed")

    _app, manager, log = await build(Seen("careless", read=careless))
    await manager.place(AGENT, TARGET)
    assert answers == [1]
    assert log == [("careless", "loop"), ("careless", "store")]


async def test_a_plugin_marked_blocking_always_runs_on_the_store_thread(build):
    log: list = []

    class Slow:
        @hookimpl(trylast=True)
        @blocking
        def corecall_check_call(self, request, context):
            log.append(threading.current_thread() is threading.main_thread())

    app, manager, _ = await build()
    app.plugins.pm.register(Slow(), name="slow")
    await manager.place(AGENT, TARGET)
    assert log == [False]


@pytest.mark.parametrize("cap", [0, 1])
async def test_every_policy_verdict_is_the_same_on_the_loop_and_on_the_store_thread(build, cap):
    """The shipped policies (calling hours, do-not-call, repeat-call cap, the built-in
    limits) answer the same requests identically both ways, refusals word for word."""
    app, manager, _ = await build(
        plugins={"policy_repeat_calls": {"max_calls": cap},
                 "policy_calling_hours": {"opens": "09:00", "closes": "17:00"}},
    )  # fmt: skip
    noon = dt.datetime(2030, 1, 2, 17, 0, tzinfo=dt.UTC)  # 12:00 in New York
    night = dt.datetime(2030, 1, 2, 5, 0, tzinfo=dt.UTC)  # 00:00 in New York
    manager._clock = lambda: noon
    await manager.place(AGENT, TARGET)  # on record: the repeat-call cap counts it
    app.store.dnc_add(LISTED, actor="cli:ops")
    reasons = set()
    for target in (TARGET, LISTED, "+12125550199"):
        for at in (noon + dt.timedelta(minutes=5), night):
            manager._clock = lambda at=at: at
            request = await _request(manager, target)
            on_loop, rest = app.plugins.check_call_on_loop(request, app.store.nowait_reads())
            assert rest is None  # SQLite: every shipped policy answers on the loop
            on_thread = await manager.store_executor.run(app.plugins.check_call, request)
            assert on_loop == on_thread
            reasons.add(on_loop.reason if on_loop else None)
    expected = {None, "do_not_call", "outside_calling_hours"} | (
        {"repeat_call_cap"} if cap else set()
    )
    assert reasons == expected


async def _request(manager: CallManager, target: str):
    """The CallRequest prepare() would check (prepare() itself raises on a refusal)."""
    from corecall.calls import effective_caller_id
    from corecall.domain import AgentActivity, CallRequest

    agent = manager.store.get_agent(AGENT)
    route = manager.plugins.resolve_route(agent, manager._routes())
    verdict = manager.plugins.parse_number(target, route)
    return CallRequest(
        agent=agent, target=verdict.e164, route=route,
        caller_id=effective_caller_id(agent, route),
        activity=AgentActivity(live_calls=0, calls_last_minute=0),
        at=manager._clock(),
    )  # fmt: skip


def test_the_read_view_offers_indexed_reads_only():
    class Fake:
        def dnc_contains(self, number):
            return number == LISTED

        def list_agents(self):
            raise AssertionError("never reached")

    reads = NowaitReads(Fake())
    assert reads.dnc_contains(LISTED) is True
    for name in ("list_agents", "audit", "dnc_add", "create_call", "dnc_count"):
        with pytest.raises(StoreWouldBlock):
            getattr(reads, name)
    assert issubclass(StoreWouldBlock, BaseException)
    assert not issubclass(StoreWouldBlock, Exception)
