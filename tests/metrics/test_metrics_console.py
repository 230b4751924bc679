"""The issue's acceptance test: a `corecall console` process configured with
``[plugins.metrics] listen`` places simulated calls; /metrics is scraped over HTTP while it
runs and shows the counters and histograms with the right values and labels."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from corecall_testing import config_dict, write_toml
from prometheus_client.parser import text_string_to_metric_families

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_console_process_serves_metrics_of_its_calls(tmp_path):
    port = free_port()
    raw = config_dict(tmp_path, limits={"calls_per_minute": 100, "live_calls_per_agent": 10})
    raw["plugins"]["metrics"] = {"listen": f"127.0.0.1:{port}"}  # keeps the any-hour window
    config = write_toml(tmp_path / "config.toml", raw)
    app = App(parse_config(raw, path=None))
    AgentAdmin(app).authorize(501, actor="test", phone="+12125550111", name="Alice")
    app.store.set_route(501, "D", actor="test")
    app.close()

    proc = subprocess.Popen(
        [sys.executable, "-m", "corecall", "--config", str(config), "console", "--as", "501",
         "--wait", "5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ},
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        # completed, target busy (…0486), agent busy (…0486 on the agent's own phone is not
        # ours to choose here), premium number refused before dialing
        for line in ("/call +12125550123", "/call +12125550486", "/call +1 900 200 0000",
                     "/call +12125550123"):  # fmt: skip
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 120
        samples: dict = {}
        ended = ("corecall_calls_ended_total", (("reason", "completed"), ("route", "D")))
        while time.monotonic() < deadline:
            try:
                samples = scrape(url)
            except OSError:
                samples = {}
            if samples.get(ended) == 2:
                break
            time.sleep(0.5)
        assert samples.get(ended) == 2, "".join(output)
    finally:
        proc.stdin.close()
        proc.wait(60)
    D = (("route", "D"),)
    assert samples[("corecall_calls_started_total", D)] == 3
    assert samples[("corecall_calls_live", D)] == 0
    busy = ("corecall_calls_ended_total", (("reason", "target_busy"), ("route", "D")))
    assert samples[busy] == 1
    assert samples[("corecall_calls_refused_total", (("reason", "premium_rate"),))] == 1
    assert samples[("corecall_call_agent_ringing_seconds_count", D)] == 3
    assert samples[("corecall_call_connect_seconds_count", D)] == 2
    assert samples[("corecall_call_target_answer_seconds_count", D)] == 2
    assert 0 < samples[("corecall_call_connect_seconds_sum", D)] < 10
    assert samples[("corecall_store_write_seconds_count", (("operation", "create_call"),))] == 3
    assert samples[("corecall_chat_edits_total", ())] >= 3  # console status edits
    labels = {value for (_n, pairs) in samples for key, value in pairs if key != "le"}
    assert not any(ch.isdigit() for value in labels for ch in value), labels  # no numbers/ids
    assert proc.returncode == 0
    # stopped: the port is closed
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
        raise AssertionError("still serving after the console stopped")
    except OSError:
        pass
