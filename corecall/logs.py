"""Logging: readable lines by default, one JSON object per line with ``--log-format json``.

Every record carries ``call_id`` and ``agent_id`` when it is about a call or an agent:

* code running for a call (``CallManager.place`` and everything it awaits or spawns: the
  driver's originate, the watchdog) inherits them from context variables set by
  :func:`log_context`;
* code called back from outside that context (a PBX event reported through
  ``CallManager.progress``) passes them explicitly: ``log.info(..., extra=call_extra(id))``.

The JSON formatter is python-json-logger's; fields: ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message``, ``call_id``, ``agent_id`` (null when not about one), plus
``exc_info`` for exceptions. Messages never contain secrets (config values that are secrets
are never logged).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import logging
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")

call_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "corecall_call_id", default=None
)
agent_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "corecall_agent_id", default=None
)


def call_extra(call_id: str | None, agent_id: int | None = None) -> dict[str, Any]:
    """``extra=`` for a log call about a call made outside its context."""
    return {"call_id": call_id, "agent_id": agent_id}


def bind(*, call_id: str | None = None, agent_id: int | None = None) -> None:
    """Set the call/agent for the rest of the current task (and tasks it creates)."""
    if call_id is not None:
        call_id_var.set(call_id)
    if agent_id is not None:
        agent_id_var.set(agent_id)


@contextlib.contextmanager
def log_context(*, call_id: str | None = None, agent_id: int | None = None) -> Iterator[None]:
    """Within the block, log records carry ``call_id`` / ``agent_id``."""
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    if call_id is not None:
        tokens.append((call_id_var, call_id_var.set(call_id)))
    if agent_id is not None:
        tokens.append((agent_id_var, agent_id_var.set(agent_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Fills ``record.call_id`` / ``record.agent_id`` from the context unless given."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.__dict__["call_id"] = call_id_var.get()
        if getattr(record, "agent_id", None) is None:
            record.__dict__["agent_id"] = agent_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-29 21:00:00,123 INFO corecall.calls [call=ab12… agent=7]: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        call_id, agent_id = getattr(record, "call_id", None), getattr(record, "agent_id", None)
        if call_id:
            parts.append(f"call={call_id}")
        if agent_id is not None:
            parts.append(f"agent={agent_id}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line, with the fields listed in the module docstring."""

    def __init__(self) -> None:
        super().__init__(
            "%(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        stamp = _dt.datetime.fromtimestamp(record.created, _dt.UTC)
        log_data["time"] = stamp.isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["call_id"] = getattr(record, "call_id", None)
        log_data["agent_id"] = getattr(record, "agent_id", None)


def setup_logging(
    level: int = logging.WARNING, fmt: str = "text", stream: TextIO | None = None
) -> logging.Handler | None:
    """Configure the root logger (replacing the handler a previous call installed). Like
    ``logging.basicConfig``, it adds no handler when someone else (an embedding program,
    pytest) already configured logging; it then only sets the level. Returns the handler
    installed, or None."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if h.get_name() == "corecall"]
    if len(ours) < len(root.handlers):
        return None
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.set_name("corecall")
    root.addHandler(handler)
    return handler


__all__ = [
    "FORMATS",
    "ContextFilter",
    "JsonLineFormatter",
    "TextFormatter",
    "agent_id_var",
    "bind",
    "call_extra",
    "call_id_var",
    "log_context",
    "setup_logging",
]
