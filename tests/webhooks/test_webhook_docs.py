"""The receiver-side verification snippet in docs/operations.md, run against real signed
deliveries received over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from corecall_webhooks.service import WebhookOptions, WebhookService
from corecall_webhooks.signing import sign

from corecall.app import App

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SECRET = "documented-secret"


def documented_verifier():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    [code] = [b for b in blocks if "def verify_corecall" in b]
    namespace: dict = {}
    exec(compile(code, "<docs/operations.md>", "exec"), namespace)
    return namespace["verify_corecall"], namespace["TOLERANCE"]


async def test_documented_snippet_verifies_real_deliveries(make_config, receiver):
    verify_corecall, tolerance = documented_verifier()
    assert tolerance == 300
    receiver.up()
    app = App(make_config())
    options = WebhookOptions(urls=(receiver.url,), secret=SECRET, poll_interval=0.1)
    service = WebhookService(app.store, options)
    await service.start()
    try:
        for n in range(3):
            service.add_event({"id": f"test-{n}", "type": "webhook.test", "data": {"n": n,
                               "text": "Zoë 😀"}}, ordering_key="test")  # fmt: skip
        await asyncio.to_thread(receiver.wait_for, 3)
    finally:
        await service.stop()
        app.close()
    for headers, body in receiver.accepted:
        header = headers["Corecall-Signature"]
        assert verify_corecall(SECRET, header, body)
        assert not verify_corecall("wrong secret", header, body)
        assert not verify_corecall(SECRET, header, body.replace(b'"n":', b'"m":'))
        assert not verify_corecall(SECRET, "v1=" + header.split("v1=")[1], body)
        assert not verify_corecall(SECRET, "garbage", body)
    # outside the replay window: refused even with the right key
    body = b'{"id":"old"}'
    assert verify_corecall(SECRET, sign(SECRET, body, int(time.time())), body)
    assert not verify_corecall(SECRET, sign(SECRET, body, int(time.time()) - 301), body)
    assert not verify_corecall(SECRET, sign(SECRET, body, int(time.time()) + 301), body)


def test_the_documented_sequence_numbers_are_the_ones_sent():
    """A receiver that follows the doc must read ``sequence`` as corecall sends it (the doc
    said 7 for ended after the press-1 stage had made it 8)."""
    from corecall_webhooks import events

    from corecall.domain import CallState

    text = DOC.read_text(encoding="utf-8")
    numbers = re.search(r"^\s*\| sequence \|(.*)\|$", text, re.MULTILINE)[1]
    states = re.search(r"^\s*\| state \|(.*)\|$", text, re.MULTILINE)[1]
    documented = {
        state.strip(" `"): int(number)
        for number, state in zip(numbers.split("|"), states.split("|"), strict=True)
    }
    assert documented == {state.value: state.order for state in CallState}
    sample = re.search(r'"id":"call-6f1c…e2-(\d+)".*?"sequence":(\d+)', text)
    assert int(sample[1]) == int(sample[2]) == CallState.ENDED.order
    assert events.__doc__ is not None and f"{CallState.ENDED.order} ended" in events.__doc__
