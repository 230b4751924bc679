"""The ``asterisk_ami`` plugin's hook implementations (the ``corecall`` entry point)."""

from __future__ import annotations

from corecall.hookspecs import hookimpl
from corecall_asterisk.driver import AsteriskAmiDriver


@hookimpl
def corecall_register_trunk_drivers(registry) -> None:
    registry.register(AsteriskAmiDriver)
