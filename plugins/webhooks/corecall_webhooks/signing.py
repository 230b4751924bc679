"""Signing webhook requests: HMAC-SHA256 over ``"<timestamp>.<body>"``.

The scheme is Stripe's (``t=...,v1=...``), which receivers already know how to check:

* header ``Corecall-Signature: t=1732900000,v1=<hex>``, where ``<hex>`` is
  ``HMAC-SHA256(secret, f"{t}.".encode() + body)`` and ``t`` is the Unix time (seconds) the
  request was signed (each retry is signed anew);
* a receiver recomputes the HMAC over the raw body bytes, compares in constant time, and
  refuses a ``t`` more than :data:`DEFAULT_TOLERANCE` seconds away from its clock (the
  replay window);
* the body is ``{"events": [...]}``; each event has an ``id``: a receiver that sees an id
  again (a retry after a lost answer) acknowledges it without acting twice.
  ``Idempotency-Key`` is the same for a retry of the same events; ``Corecall-Event-Count``
  says how many events the request carries.

docs/operations.md shows a receiver-side check in plain Python; a test runs that snippet
against real deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Corecall-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_COUNT_HEADER = "Corecall-Event-Count"

#: Seconds a signature stays acceptable (receivers refuse older ones: replays).
DEFAULT_TOLERANCE = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Corecall-Signature`` header value for ``body``, signed now (or at ``timestamp``,
    Unix seconds)."""
    t = int(time.time() if timestamp is None else timestamp)
    return f"t={t},v1={signature(secret, body, t)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """True when ``header`` is a valid signature of ``body`` made less than ``tolerance``
    seconds from ``now``. Never raises on a malformed header (it is simply not valid)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - t) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, body, t), parts.get("v1", ""))


__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_COUNT_HEADER",
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "sign",
    "signature",
    "verify",
]
