"""Telling systemd how ``corecall run`` is doing (``Type=notify``), and the health file.

**Readiness.** systemd starts a ``Type=notify`` service with ``$NOTIFY_SOCKET`` set to a
datagram socket; the service sends ``READY=1`` once it really serves (here: the store is
open, every trunk driver reports no problem, i.e. every AMI link is logged in, and Telegram
accepted the bot's login), ``STATUS=...`` lines shown by ``systemctl status``, and
``STOPPING=1`` when it shuts down. The protocol is sd_notify(3): one datagram of
newline-separated ``KEY=VALUE`` lines; an address starting with ``@`` is in the abstract
namespace. Without ``$NOTIFY_SOCKET`` (not under systemd) nothing is sent. It is written here
rather than taken from the ``sdnotify`` package, whose last release (2017) swallows every
error silently.

**Health.** The running bot rewrites ``<data_dir>/health.json`` every
:data:`HEALTH_INTERVAL` seconds (atomically): whether Telegram is connected, each trunk
link's state, whether the store answers, the process id and the time. ``corecall health``
reads it: healthy only if the file is fresh (younger than :data:`HEALTH_STALE` seconds) and
every part is up.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Seconds between rewrites of the health file.
HEALTH_INTERVAL = 5.0
#: Seconds after which a health file that was not rewritten means the bot is not running.
HEALTH_STALE = 20.0


def notify(*lines: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``lines`` (``"READY=1"``, ``"STATUS=..."``) to systemd's notify socket.

    Returns False (and sends nothing) when ``$NOTIFY_SOCKET`` is unset; a socket that
    cannot be reached is logged, never raised: the service keeps running."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    payload = "\n".join(lines).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(payload)
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", lines[0] if lines else "", exc)
        return False
    return True


# --------------------------------------------------------------------------- health


def health_path(data_dir: Path) -> Path:
    return data_dir / "health.json"


def write_health(path: Path, report: dict[str, Any]) -> None:
    """Write the report atomically (a reader never sees half a file)."""
    report = {**report, "pid": os.getpid(), "updated_at": _now().isoformat()}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_health(
    path: Path, *, now: _dt.datetime | None = None, max_age: float = HEALTH_STALE
) -> tuple[bool, dict[str, Any]]:
    """(healthy, report). A missing, unreadable or stale file (written more than
    ``max_age`` seconds ago, or dated more than that in the future) is unhealthy, with a
    ``problems`` list saying why."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, {"problems": [f"corecall run is not running (no {path})"]}
    except (OSError, ValueError) as exc:
        return False, {"problems": [f"cannot read {path}: {exc}"]}
    if not isinstance(report, dict) or not isinstance(report.get("problems", []), list):
        return False, {"problems": [f"{path} is not a health report (corecall run writes it)"]}
    problems = list(report.get("problems", []))
    try:
        updated = _dt.datetime.fromisoformat(report["updated_at"])
        age = ((now or _now()) - updated).total_seconds()
    except (KeyError, TypeError, ValueError):
        problems.insert(0, f"{path} has no time of writing: corecall run did not write it")
        age = 0.0
    if age > max_age:
        problems.insert(0, f"the health report is {age:.0f} s old: corecall run is not running"
                        " or is stuck")  # fmt: skip
    elif age < -max_age:  # a running bot rewrites it every few seconds with the clock's time
        problems.insert(0, f"the health report is dated {-age:.0f} s in the future: the clock"
                        " was set back since, and corecall run has not rewritten it (it is"
                        " not running or is stuck)")  # fmt: skip
    report["problems"] = problems
    return not problems, report


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


__all__ = [
    "HEALTH_INTERVAL",
    "HEALTH_STALE",
    "health_path",
    "notify",
    "read_health",
    "write_health",
]
