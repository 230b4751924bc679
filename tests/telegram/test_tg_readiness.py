"""``corecall run`` under systemd: READY=1 on the notify socket once serving, the health
report while it runs, STOPPING=1 on SIGTERM-like stop. A real AF_UNIX datagram socket, a
real TelegramClient (offline harness)."""

from __future__ import annotations

import asyncio
import socket

from corecall_testing import config_dict
from corecall_testing.fakes import Switchboard
from corecall_testing.telegram_harness import OfflineTelegram

from corecall import systemd
from corecall.app import App
from corecall.config import parse_config
from corecall.telegram.runner import serve, start_calls


async def test_ready_health_and_stopping(tmp_path, monkeypatch):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setattr(systemd, "HEALTH_INTERVAL", 0.05)
    board = Switchboard()
    raw = config_dict(tmp_path)
    raw["trunks"] = {"main": {"driver": "scripted"}, "dev": {"driver": "scripted"}}
    app = App(parse_config(raw, path=None), extra_plugins=[("test_driver", board.plugin())])
    calls = await start_calls(app)
    calls.drivers["scripted"].link_state_changed("pbx1", True)
    client = OfflineTelegram()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        serving = asyncio.create_task(serve(app, client, calls, stop=stop))
        ready = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert ready.split(b"\n") == [b"READY=1", b"STATUS=serving; trunk links up: scripted/pbx1"]

        path = systemd.health_path(app.config.data_dir)
        for _ in range(100):
            if path.exists():
                break
            await asyncio.sleep(0.05)
        healthy, report = systemd.read_health(path)
        assert healthy, report
        assert report["parts"] == {"telegram": True, "store": True, "link scripted/pbx1": True}

        calls.drivers["scripted"].link_state_changed("pbx1", False)  # the PBX went away
        await asyncio.sleep(0.3)
        healthy, report = systemd.read_health(path)
        assert not healthy and "link scripted/pbx1 is down" in report["problems"]

        stop.set()
        stopping = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert stopping.startswith(b"STOPPING=1\n")
        await asyncio.wait_for(serving, 10)
    finally:
        sock.close()
        await client.aclose()
        app.close()
