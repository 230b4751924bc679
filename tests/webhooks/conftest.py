"""A real HTTP receiver on 127.0.0.1 for the webhook tests.

:class:`Receiver` is a ``ThreadingHTTPServer`` on a fixed loopback port that records every
request it accepted (headers and raw body). It can be taken down (the port refuses
connections) and brought back on the same port, made slow, or made to answer 500, as a real
receiver's outage would look to corecall.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/corecall"
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0  # every request that reached the handler, whatever the answer
        self.status = 200
        self.delay = 0.0  # seconds before answering
        self.reason: str | None = None  # the status line's reason phrase (None: the standard)
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # ---- control
    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.attempts += 1
                    status, delay, reason = receiver.status, receiver.delay, receiver.reason
                if delay:
                    time.sleep(delay)
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.accepted.append((dict(self.headers.items()), body))
                self.send_response(status, reason)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- what arrived
    def events(self) -> list[dict[str, Any]]:
        """Every event of every accepted request, in arrival order."""
        with self._lock:
            return [event for _h, body in self.accepted for event in json.loads(body)["events"]]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` events (not requests) arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events()) >= count:
                return self.events()
            time.sleep(0.02)
        raise AssertionError(f"{len(self.events())} events arrived, expected {count}")


@pytest.fixture
def receiver():
    r = Receiver()
    try:
        yield r
    finally:
        r.down()
