"""Helpers shared by corecall's tests, as an installed package (``tests/support``).

Modules: this one (config builders), ``lab`` and ``lab_fixtures`` (the Asterisk lab),
``pg_server`` (a throwaway PostgreSQL), ``fakes`` (clocks, ports, a scripted trunk driver),
``ami`` (a fake AMI server and a cutting proxy), ``telegram_harness`` (a real
TelegramClient, offline) and ``bot_under_test`` (the bot those tests drive).
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

FAST_SIMULATION = {
    "ring_seconds": 0.01,
    "answer_seconds": 0.02,
    "slow_answer_seconds": 0.05,
    "confirm_seconds": 0.01,
    "talk_seconds": 0.05,
    "timeout_seconds": 0.05,
}


#: A calling-hours window that is always open.
ANY_HOUR = {"opens": "00:00", "closes": "24:00"}

# The agent the suite's ``started_calls`` fixture authorizes on route M.
AGENT_ON_ROUTE_M = 501


def config_dict(tmp_path: Path, **sections) -> dict:
    """A complete config as a dict: SQLite in tmp_path, fast simulated trunks, M and D."""
    raw = {
        "data_dir": str(tmp_path),
        "bot": {"super_admins": [1000]},
        "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "corecall.sqlite3")},
        "trunks": {
            "main": {"driver": "simulated", **FAST_SIMULATION},
            "dev": {"driver": "simulated", **FAST_SIMULATION},
        },
        "routes": {
            "M": {"trunk": "main", "caller_ids": ["+12125550100", "+12125550101"]},
            "D": {"trunk": "dev", "caller_ids": ["+12125550199"]},
        },
        # Tests place calls at the wall clock's hour: calling hours open round the clock
        # here (the calling-hours tests set their own window and moment).
        "plugins": {"policy_calling_hours": dict(ANY_HOUR)},
    }
    for key, value in sections.items():
        if key == "store" and isinstance(value, dict) and "backend" in value:
            raw[key] = value  # another backend: none of SQLite's keys apply
        elif isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def write_toml(path: Path, raw: dict) -> Path:
    """Write a (simple) config dict as TOML: tables of scalars, lists and sub-tables."""
    lines: list[str] = []

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        # A JSON string is a TOML basic string (\uXXXX for controls); TOML also bars DEL.
        return json.dumps(str(v), ensure_ascii=False).replace("\x7f", "\\u007f")

    def table(prefix: str, t: dict) -> None:
        scalars = {k: v for k, v in t.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in t.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", raw)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def install_distribution(
    site: Path,
    dist: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    version: str = "1.2.3",
) -> None:
    """Install a tiny distribution into ``site`` (a directory on ``sys.path``) the way pip
    would: a dist-info with its ``corecall`` entry points, and each module's source."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[corecall]\n{eps}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(module, None)  # a module of that name imported by an earlier test
    importlib.invalidate_caches()
