"""``corecall --version``: corecall, every plugin distribution and phonenumbers.

Read from installed distributions' metadata only: no plugin is imported, so it stays fast and
works when a plugin is broken.
"""

from __future__ import annotations

from importlib import metadata


def version_lines() -> list[str]:
    """``corecall 0.1.0`` then one line per distribution that registers ``corecall`` plugins,
    then ``phonenumbers X (number data)``."""
    import corecall

    lines = [f"corecall {corecall.__version__}"]
    seen: dict[str, str] = {}
    for ep in metadata.entry_points(group="corecall"):
        dist = ep.dist
        if dist is None or dist.name in seen or dist.name == "corecall":
            continue
        seen[dist.name] = dist.version
    for name in sorted(seen):
        lines.append(f"  plugin distribution {name} {seen[name]}")
    lines.append(f"phonenumbers {_version('phonenumbers')} (number data)")
    return lines


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "(not installed)"
