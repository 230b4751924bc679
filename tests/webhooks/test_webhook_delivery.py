"""Webhook delivery against a real HTTP receiver on 127.0.0.1, with the real SQLite store and
calls placed through the CallManager on the simulated PBX.

Covers the issue's cases: receiver down (during 20 calls, corecall restarted in between:
everything arrives once it is back, each id once, in order per call), slow, answering 500,
signatures that verify, admin actions, and a dead receiver never slowing calls.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time

import pytest
from corecall_testing import config_dict, write_toml
from corecall_webhooks.service import WebhookOptions, WebhookService
from corecall_webhooks.signing import verify

from corecall import hookimpl
from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.cli import main
from corecall.config import parse_config
from corecall.domain import CallState

#: One event per state a simulated call passes (queued ... ended, press-1 step included).
PER_CALL = len(CallState)

SECRET = "s3cret-for-tests"
AGENTS = range(501, 506)


class Bridge:
    """Hands state changes to the service, as the webhooks plugin's hook does."""

    def __init__(self) -> None:
        self.service: WebhookService | None = None

    @hookimpl
    def corecall_call_state_changed(self, call, previous):
        if self.service is not None:
            self.service.call_state_changed(call, previous)


class Corecall:
    """One corecall 'process': App + CallManager + WebhookService on a shared SQLite file."""

    def __init__(self, tmp_path, options: WebhookOptions) -> None:
        self.bridge = Bridge()
        raw = config_dict(tmp_path, limits={"calls_per_minute": 1000})
        self.app = App(parse_config(raw, path=None), extra_plugins=[("bridge", self.bridge)])
        self.options = options

    async def __aenter__(self) -> Corecall:
        admin = AgentAdmin(self.app)
        for agent in AGENTS:
            if self.app.store.get_agent(agent) is None:
                admin.add(agent, "+12125550177", authorized=True, actor="test")
                self.app.store.set_route(agent, "M", actor="test")
        self.service = WebhookService(self.app.store, self.options)
        self.bridge.service = self.service
        await self.service.start()
        self.manager = self.app.call_manager()
        await self.manager.start()
        return self

    async def calls(self, n: int) -> list[str]:
        """Place ``n`` calls (5 agents at a time) and wait for all to end."""
        ids: list[str] = []
        for start in range(0, n, len(AGENTS)):
            batch = await asyncio.gather(*(
                self.manager.place(agent, "+12125550123")
                for agent in list(AGENTS)[: min(len(AGENTS), n - start)]
            ))  # fmt: skip
            for record in batch:
                await self.manager.wait_final(record.id, timeout=10)
                ids.append(record.id)
        return ids

    async def __aexit__(self, *exc) -> None:
        await self.manager.stop()
        await self.service.stop()
        self.app.close()


def options(receiver, **kw) -> WebhookOptions:
    defaults = dict(urls=(receiver.url,), secret=SECRET, timeout=1.0, first_backoff=0.05,
                    max_backoff=0.3, poll_interval=0.1)  # fmt: skip
    return WebhookOptions(**{**defaults, **kw})


async def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def call_events(events):
    return [e for e in events if e["type"] == "call.state_changed"]


def assert_in_order_per_call(events, call_ids):
    by_call = collections.defaultdict(list)
    for e in call_events(events):
        by_call[e["data"]["call_id"]].append(e["sequence"])
    assert sorted(by_call) == sorted(call_ids)
    for call_id, seqs in by_call.items():
        assert seqs == sorted(seqs), f"call {call_id} events out of order: {seqs}"
        assert seqs[0] == 0 and seqs[-1] == CallState.ENDED.order


async def test_every_state_change_arrives_signed_once_in_order(tmp_path, receiver):
    receiver.up()
    async with Corecall(tmp_path, options(receiver)) as cc:
        [call_id] = await cc.calls(1)
        events = await asyncio.to_thread(receiver.wait_for, PER_CALL)
    states = [e["data"]["state"] for e in call_events(events)]
    assert states == [s.value for s in CallState]  # queued ... ended, each once
    ended = events[-1]
    assert ended["id"] == f"call-{call_id}-{CallState.ENDED.order}"
    assert ended["data"]["reason"] == "completed" and ended["data"]["talk_seconds"] > 0
    assert ended["data"]["target"] == "+12125550123" and ended["data"]["route"] == "M"
    for headers, body in receiver.accepted:
        assert verify(SECRET, headers["Corecall-Signature"], body)
        assert not verify("another secret", headers["Corecall-Signature"], body)
        assert int(headers["Corecall-Event-Count"]) == len(json.loads(body)["events"])
        assert len(headers["Idempotency-Key"]) == 32
        assert headers["Content-Type"] == "application/json"
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == PER_CALL


async def test_receiver_down_during_20_calls_and_a_restart_loses_nothing(tmp_path, receiver):
    """The issue's acceptance case: the receiver is down while 20 calls are made, corecall
    is restarted in between (events pending in the outbox), the receiver comes back: every
    event arrives, each id once, in order per call."""
    opts = options(receiver)
    async with Corecall(tmp_path, opts) as cc:
        first = await cc.calls(10)
    async with Corecall(tmp_path, opts) as cc:  # restarted with 10 calls' events pending
        pending = cc.app.store.outbox_counts()[receiver.url][0]
        assert pending == 10 * PER_CALL
        second = await cc.calls(10)
        await asyncio.sleep(0.5)  # retries keep failing while it is down
        assert receiver.accepted == []
        receiver.up()
        events = await asyncio.to_thread(receiver.wait_for, 20 * PER_CALL)
        await wait_until(lambda: cc.app.store.outbox_counts()[receiver.url] == (0, 20 * PER_CALL))
    await asyncio.sleep(0.3)
    assert len(receiver.events()) == 20 * PER_CALL  # nothing sent twice after its 2xx
    # the backlog went out in few requests (up to max_batch events each), still in order
    assert len(receiver.accepted) < 20 * PER_CALL
    ids = [e["id"] for e in events]
    assert len(set(ids)) == 20 * PER_CALL
    assert_in_order_per_call(events, first + second)
    failed = [m for m in App(cc.app.config).store.outbox_list(limit=200) if m.attempts]
    assert failed, "the outage should show as failed tries in the outbox"


async def test_answering_500_is_retried_until_accepted(tmp_path, receiver):
    receiver.up()
    receiver.status = 500
    async with Corecall(tmp_path, options(receiver)) as cc:
        [call_id] = await cc.calls(1)
        await wait_until(lambda: receiver.attempts >= 3)
        assert receiver.accepted == []
        head = cc.app.store.outbox_pending(receiver.url)[0]
        assert head.attempts >= 2 and head.last_error.startswith("HTTP 500")
        receiver.status = 200
        events = await asyncio.to_thread(receiver.wait_for, PER_CALL)
    assert_in_order_per_call(events, [call_id])
    assert len({e["id"] for e in events}) == PER_CALL


async def test_slow_receiver_times_out_and_never_slows_calls(tmp_path, receiver):
    receiver.up()
    receiver.delay = 2.0  # longer than the 0.3 s timeout: every request fails
    async with Corecall(tmp_path, options(receiver, timeout=0.3)) as cc:
        started = time.monotonic()
        ids = await cc.calls(10)
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"10 simulated calls took {elapsed:.1f} s with a slow receiver"
        assert receiver.accepted == []
        receiver.delay = 0.0
        await wait_until(lambda: cc.app.store.outbox_counts()[receiver.url] == (0, 10 * PER_CALL))
    # A request that timed out on corecall's side may still have been processed by the slow
    # receiver: at-least-once. Deduplicating on the id, as receivers must, gives every
    # event once, in order per call.
    first_seen: dict[str, dict] = {}
    for event in receiver.events():
        first_seen.setdefault(event["id"], event)
    assert len(first_seen) == 10 * PER_CALL
    assert_in_order_per_call(list(first_seen.values()), ids)


async def test_calls_are_as_fast_with_a_dead_receiver(tmp_path, receiver):
    """No receiver at all: calls take as long as without webhooks (the hook only queues)."""

    async def timed(opts) -> float:
        async with Corecall(tmp_path, opts) as cc:
            t = time.monotonic()
            await cc.calls(20)
            return time.monotonic() - t

    without = await timed(WebhookOptions())
    dead = await timed(options(receiver))  # never brought up: connection refused
    assert dead < without * 2 + 1.0, (without, dead)


async def test_an_event_that_cannot_be_built_is_logged_and_holds_back_nothing(
    tmp_path, receiver, monkeypatch, caplog
):
    """The hook only queues a call's (immutable) record; the writer builds the events. A
    record its builder chokes on (a bug) is logged with the error, and every other event
    still goes out, in order."""
    from corecall_webhooks import events as webhook_events

    real = webhook_events.call_event

    def call_event(call, previous):
        if call.state is CallState.AGENT_RINGING:
            raise RuntimeError("builder bug")
        return real(call, previous)

    monkeypatch.setattr(webhook_events, "call_event", call_event)
    receiver.up()
    async with Corecall(tmp_path, options(receiver)) as cc:
        ids = await cc.calls(3)
        events = await asyncio.to_thread(receiver.wait_for, 3 * (PER_CALL - 1))
        await wait_until(
            lambda: cc.app.store.outbox_counts()[receiver.url] == (0, 3 * (PER_CALL - 1))
        )
    states = {e["data"]["state"] for e in events}
    assert CallState.AGENT_RINGING.value not in states and len(states) == PER_CALL - 1
    assert_in_order_per_call(events, ids)
    errors = [r for r in caplog.records if "could not be built" in r.getMessage()]
    assert len(errors) == 3 and "builder bug" in errors[0].exc_text


async def test_admin_actions_are_sent(tmp_path, receiver):
    receiver.up()
    async with Corecall(tmp_path, options(receiver)) as cc:
        cc.app.store.audit("cli:alice", "plugin.disable", "route_dev", "from the CLI")
        events = await asyncio.to_thread(receiver.wait_for, 1)
    [action] = [e for e in events if e["type"] == "admin.action"]
    assert action["data"]["actor"] == "cli:alice"
    assert (action["data"]["action"], action["data"]["subject"]) == ("plugin.disable", "route_dev")
    assert action["id"] == f"audit-{action['data']['audit_id']}"
    # the agents added before the service started are history, not re-sent
    assert not [e for e in events if e["data"].get("action") == "agent.add"]


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://x", "127.0.0.1:80", "http://127.0.0.1:99999/a", "http://[::1/a",
        "http://exa mple.com/a", "http://x\x1b/a", "http:///a", "http://:80/a",
    ],
)  # fmt: skip
def test_options_name_their_problems_when_the_configuration_is_read(bad, tmp_path, capsys):
    """A URL httpx cannot use crashed the deliverer every second (tester4): refused when
    the file is read, naming the key and the problem."""
    with pytest.raises(ValueError, match="is not a webhook URL"):
        WebhookOptions(urls=(bad,), secret="x")
    with pytest.raises(ValueError, match="webhooks need a secret"):
        WebhookOptions(urls=("http://127.0.0.1/",))
    assert WebhookOptions().problems() == []
    # ... so `config show` (any command) refuses the configuration, naming the table.
    raw = config_dict(tmp_path)
    raw["plugins"]["webhooks"] = {"urls": [bad], "secret": "signing-key-1"}
    path = write_toml(tmp_path / "corecall.toml", raw)
    assert main(["--config", str(path), "config", "show"]) == 1
    err = capsys.readouterr().err
    # (a raw ESC in the file is already refused by the TOML parser)
    assert ("[plugins.webhooks.urls]" in err and "is not a webhook URL" in err) or (
        "\x1b" in bad and "is not valid TOML" in err
    )
    assert "\x1b" not in err


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("timeout", "0", "expected more than 0 seconds, got 0"),
        ("timeout", "-1", "expected more than 0 seconds, got -1"),
        ("timeout", "nan", "expected a finite number (not nan or inf)"),
        ("first_backoff", "0", "expected more than 0 seconds"),
        ("max_backoff", "inf", "expected a finite number (not nan or inf)"),
        ("poll_interval", "0", "expected more than 0 seconds"),
        ("write_delay", "-3", "expected 0 or more seconds, got -3"),
        ("keep_delivered", "0", "expected more than 0 seconds, got 0"),
        ("keep_delivered", "-604800", "expected more than 0 seconds, got -604800"),
    ],
)
def test_durations_that_would_spin_or_never_deliver_are_refused(
    key, value, expected, tmp_path, capsys, monkeypatch
):
    """A zero or negative backoff retried a dead receiver in a hot loop; a timeout of 0, -1
    or nan failed every request. Refused when the file is read, naming file, key and value;
    the same value from the environment is named as coming from there."""
    raw = config_dict(tmp_path)
    raw["plugins"]["webhooks"] = {
        "urls": ["http://127.0.0.1:9/"], "secret": "signing-key-1", key: float(value),
    }  # fmt: skip
    path = write_toml(tmp_path / "corecall.toml", raw)
    assert main(["--config", str(path), "config", "show"]) == 1
    assert f"[plugins.webhooks.{key}] {expected}" in capsys.readouterr().err

    del raw["plugins"]["webhooks"][key]
    write_toml(path, raw)
    variable = f"CORECALL_PLUGINS_WEBHOOKS_{key.upper()}"
    monkeypatch.setenv(variable, value)
    assert main(["--config", str(path), "webhooks", "list"]) == 1
    err = capsys.readouterr().err
    assert f"[plugins.webhooks.{key}] {expected}" in err and f"(from ${variable})" in err


async def test_admin_actions_made_while_corecall_is_stopped_are_sent_when_it_starts(
    tmp_path, receiver
):
    """The first run with a receiver starts at the newest admin action (history is not
    replayed) and remembers that point: actions made while nothing runs (the CLI) are sent
    at the next start, even when no admin action had been sent yet."""
    receiver.up()
    async with Corecall(tmp_path, options(receiver)):
        pass  # started and stopped: nothing to send
    app = App(parse_config(config_dict(tmp_path, limits={"calls_per_minute": 1000}), path=None))
    AgentAdmin(app).add(777, "+12125550112", authorized=True, actor="cli:alice")
    app.store.audit("cli:bob", "plugin.disable", "route_dev", "")
    app.close()
    async with Corecall(tmp_path, options(receiver)) as cc:
        events = await asyncio.to_thread(receiver.wait_for, 2)
        # restarted again: nothing is sent twice, and the mark is never sent or listed
        await wait_until(lambda: cc.app.store.outbox_counts()[receiver.url] == (0, 2))
    async with Corecall(tmp_path, options(receiver)):
        await asyncio.sleep(0.5)
    actions = [(e["data"]["actor"], e["data"]["action"]) for e in receiver.events()]
    assert actions == [("cli:alice", "agent.add"), ("cli:bob", "plugin.disable")]
    assert [e["type"] for e in events] == ["admin.action"] * 2


async def test_delivered_events_are_deleted_after_keep_delivered_and_nothing_else(
    tmp_path, receiver
):
    """Retention: the running service deletes what was delivered more than keep_delivered
    seconds ago. What is not delivered yet stays however old it gets and is delivered when
    the receiver is back; and an admin action deleted from the outbox is not sent again
    after a restart (the follower keeps its place)."""
    receiver.up()
    opts = options(receiver, keep_delivered=1.0)
    async with Corecall(tmp_path, opts) as cc:
        store = cc.app.store
        store.audit("cli:alice", "plugin.disable", "route_dev", "")
        await cc.calls(2)
        await asyncio.to_thread(receiver.wait_for, 2 * PER_CALL + 1)
        receiver.down()
        [late] = await cc.calls(1)
        # the 2 calls' events go; the admin action (the follower's resume point) and the
        # late call's events, never delivered, stay
        await wait_until(lambda: store.outbox_counts()[receiver.url] == (PER_CALL, 1), 10)
        await asyncio.sleep(2.5)  # keep_delivered and two pruner rounds more
        assert store.outbox_counts()[receiver.url] == (PER_CALL, 1)
        assert cc.service.pruned >= 2 * PER_CALL
        receiver.up()
        await asyncio.to_thread(receiver.wait_for, 3 * PER_CALL + 1)
        # ... and once delivered they go too, but the newest call event
        await wait_until(lambda: store.outbox_counts()[receiver.url] == (0, 2), 10)
    async with Corecall(tmp_path, opts):
        await asyncio.sleep(0.5)
    events = receiver.events()
    assert [e["data"]["action"] for e in events if e["type"] == "admin.action"] == [
        "plugin.disable"
    ]
    assert [e["data"]["call_id"] for e in call_events(events)].count(late) == PER_CALL


@pytest.mark.parametrize("linger", [1.0, 0.0])
async def test_events_that_keep_coming_gather_into_few_requests(tmp_path, receiver, linger):
    """A burst of calls writes a batch to the outbox every write_delay: with ``linger`` the
    deliverer waits while they keep coming (at most ``linger`` seconds) and sends them in a
    request or two after it, instead of a store read, a request and a mark per batch
    competing with the calls' set-up; with ``linger = 0`` each batch goes at once. Either
    way every event arrives once, in order."""
    from corecall.app import App

    receiver.up()
    app = App(parse_config(config_dict(tmp_path), path=None))
    opts = options(receiver, write_delay=0.05, linger=linger, poll_interval=5.0)
    service = WebhookService(app.store, opts)
    await service.start()
    try:
        for n in range(12):  # 0.6 s of a steady stream: a batch written every write_delay
            service.add_event({"id": f"burst-{n}", "type": "webhook.test", "data": {}}, "b")
            await asyncio.sleep(0.05)
        events = await asyncio.to_thread(receiver.wait_for, 12)
    finally:
        await service.stop()
        app.close()
    assert [e["id"] for e in events] == [f"burst-{n}" for n in range(12)]
    requests = len(receiver.accepted)
    if linger:
        assert requests <= 2, requests
    else:
        assert requests >= 4, requests


async def test_keeping_delivered_events_for_ever_is_a_large_keep_time(
    tmp_path, receiver, monkeypatch, caplog
):
    """An operator who never wants events deleted sets a huge keep_delivered (1e12 s, ~31,700
    years): the pruner finds nothing due instead of crashing on a date before year 1."""
    from corecall_webhooks import service as service_module

    monkeypatch.setattr(service_module, "PRUNE_FIRST", 0.05)
    monkeypatch.setattr(service_module, "PRUNE_EVERY", 0.05)
    receiver.up()
    async with Corecall(tmp_path, options(receiver, keep_delivered=1e12)) as cc:
        await cc.calls(1)
        await asyncio.to_thread(receiver.wait_for, PER_CALL)
        await asyncio.sleep(0.5)  # several pruner rounds
        assert cc.app.store.outbox_counts()[receiver.url] == (0, PER_CALL)
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]
