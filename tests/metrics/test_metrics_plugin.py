"""The metrics plugin: simulated calls placed through the CallManager, /metrics scraped over
real HTTP on 127.0.0.1, parsed with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest
from corecall_metrics import Metrics, MetricsOptions
from corecall_metrics.metrics import label
from prometheus_client.parser import text_string_to_metric_families

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.domain import CallState
from corecall.errors import RefusedError

AGENT = 701


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def listen(monkeypatch):
    address = f"127.0.0.1:{free_port()}"
    from corecall_webhooks import WebhookOptions

    options = {"metrics": MetricsOptions(listen=address), "webhooks": WebhookOptions()}
    real = App.plugin_options
    monkeypatch.setattr(
        App, "plugin_options", lambda self, name: options.get(name) or real(self, name)
    )
    return address


async def test_scrape_after_simulated_calls(make_config, listen):
    from corecall_testing import FAST_SIMULATION

    slow_talk = {**FAST_SIMULATION, "driver": "simulated", "talk_seconds": 1.0}
    app = App(make_config(limits={"calls_per_minute": 100}, trunks={"main": slow_talk}))
    admin = AgentAdmin(app)
    admin.add(AGENT, "+12125550111", "Ann", authorized=True, actor="test")
    admin.set_route(AGENT, "M", actor="test")
    manager = app.call_manager(services=True)
    await manager.start()
    try:
        metrics = manager.services.get("metrics")
        assert isinstance(metrics, Metrics) and metrics.url == f"http://{listen}/metrics"
        for target in ("+12125550123", "+12125550486", "+12125550123"):  # 0486: target busy
            call = await manager.place(AGENT, target)
            await manager.wait_final(call.id, timeout=5)
        with pytest.raises(RefusedError):
            await manager.place(AGENT, "+1 900 200 0000")
        live = await manager.place(AGENT, "+12125550123")
        async for record in manager.watch(live.id):
            if record.state is CallState.CONNECTED:
                break
        samples = await asyncio.to_thread(scrape, metrics.url)
        await manager.wait_final(live.id, timeout=5)
        after = await asyncio.to_thread(scrape, metrics.url)
    finally:
        await manager.stop()
        app.close()
    M = (("route", "M"),)
    assert samples[("corecall_calls_started_total", M)] == 4
    assert samples[("corecall_calls_live", M)] == 1
    assert after[("corecall_calls_live", M)] == 0
    assert after[("corecall_calls_ended_total", (("reason", "completed"), ("route", "M")))] == 3
    assert after[("corecall_calls_ended_total", (("reason", "target_busy"), ("route", "M")))] == 1
    assert after[("corecall_calls_refused_total", (("reason", "premium_rate"),))] == 1
    # every call rang the agent; three of four connected
    assert after[("corecall_call_agent_ringing_seconds_count", M)] == 4
    assert after[("corecall_call_connect_seconds_count", M)] == 3
    assert after[("corecall_call_target_answer_seconds_count", M)] == 3
    assert 0 < after[("corecall_call_connect_seconds_sum", M)] < 5
    assert after[("corecall_call_connect_seconds_bucket", (("le", "+Inf"), ("route", "M")))] == 3
    writes = after[("corecall_store_write_seconds_count", (("operation", "create_call"),))]
    assert writes == 4
    assert after[("corecall_store_write_seconds_count", (("operation", "save_progress"),))] >= 1
    # no phone number, call id or agent id anywhere in the labels
    for (_name, labels), _value in after.items():
        for _key, value in labels:
            assert not any(ch.isdigit() for ch in value.replace("+Inf", "")) or _key == "le"
    # the port is closed once the process stops serving
    with pytest.raises(OSError):
        await asyncio.to_thread(urllib.request.urlopen, f"http://{listen}/metrics", timeout=1)


async def test_links_edits_and_flood_waits(make_config, listen):
    app = App(make_config())
    manager = app.call_manager(services=True)
    await manager.start()
    try:
        driver = manager.drivers["simulated"]
        driver.link_state_changed("pbx1", True)
        driver.link_state_changed("pbx1", False)
        driver.link_state_changed("pbx1", True)
        driver.link_state_changed("pbx2", False)
        app.plugins.notify_chat_edit_sent(5)
        app.plugins.notify_chat_edit_sent(5)
        app.plugins.notify_chat_rate_limited(5, 7.0)
        samples = await asyncio.to_thread(scrape, manager.services.get("metrics").url)
    finally:
        await manager.stop()
        app.close()
    pbx1 = (("driver", "simulated"), ("link", "pbx1"))
    pbx2 = (("driver", "simulated"), ("link", "pbx2"))
    assert samples[("corecall_link_up", pbx1)] == 1
    assert samples[("corecall_link_up", pbx2)] == 0
    assert samples[("corecall_link_reconnects_total", pbx1)] == 1
    assert ("corecall_link_reconnects_total", pbx2) not in samples
    assert samples[("corecall_chat_edits_total", ())] == 2
    assert samples[("corecall_chat_flood_waits_total", ())] == 1
    assert samples[("corecall_chat_flood_wait_seconds_total", ())] == 7.0


async def test_a_taken_port_is_a_clear_error_and_calls_go_on(make_config, listen, caplog):
    with socket.socket() as taken:
        host, port = listen.rsplit(":", 1)
        taken.bind((host, int(port)))
        taken.listen()
        app = App(make_config())
        manager = app.call_manager(services=True)
        await manager.start()
        try:
            assert manager.services.get("metrics") is None
            [record] = [r for r in caplog.records if "failed to start" in r.getMessage()]
            assert (
                f"cannot serve metrics on {listen}: Address already in use" in record.getMessage()
            )
            assert record.exc_info is None  # one line that says why, no traceback
            # corecall health says so while the process runs without metrics
            [problem] = manager.services.problems()
            assert problem.startswith("service 'metrics' is off (failed to start: cannot serve")
            from corecall.telegram.runner import health_report

            class Connected:  # the report's only question to the Telegram client
                def is_connected(self):
                    return True

            assert problem in health_report(app, Connected(), manager)["problems"]
        finally:
            await manager.stop()
            app.close()


@pytest.mark.parametrize("bad", ["9464", "127.0.0.1:", "127.0.0.1:99999", ":9464", "x:y"])
def test_bad_listen_values_are_named(bad):
    with pytest.raises(ValueError, match="expected host:port"):
        MetricsOptions(listen=bad)
    assert MetricsOptions().address() is None
    assert MetricsOptions(listen="[::1]:9464").address() == ("::1", 9464)


def test_plugin_codes_cannot_explode_label_values():
    assert label("rate_limited") == "rate_limited"
    assert label("+12125550123 called too often") == "other"
    assert label("x" * 41) == "other"


@pytest.mark.parametrize("bad", ["garbage", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", ":9464"])
def test_a_bad_listen_is_refused_when_the_configuration_is_read(bad, tmp_path, monkeypatch, capsys):
    """By `config show` and every command, from the file or the environment, not by a
    service that fails to start later."""
    from corecall_testing import config_dict, write_toml

    from corecall.cli import main

    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    monkeypatch.setenv("CORECALL_PLUGINS_METRICS_LISTEN", bad)
    assert main(["--config", str(path), "config", "show"]) == 1
    err = capsys.readouterr().err
    assert "[plugins.metrics.listen] expected host:port" in err
    assert err.rstrip().endswith("(from $CORECALL_PLUGINS_METRICS_LISTEN)")  # not the file's
