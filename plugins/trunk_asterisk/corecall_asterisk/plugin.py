"""The ``asterisk_ami`` plugin's hook implementations (the ``corecall`` entry point).

Imports stay inside the hooks: ``corecall --help`` and commands that need no driver never
import panoramisk.
"""

from __future__ import annotations

from corecall.hookspecs import hookimpl


@hookimpl
def corecall_plugin_options():
    """``[plugins.asterisk_ami]``: the Asterisk servers (:mod:`corecall_asterisk.options`)."""
    from corecall_asterisk.options import AsteriskOptions

    return AsteriskOptions


@hookimpl
def corecall_register_trunk_drivers(registry) -> None:
    from corecall_asterisk.driver import AsteriskAmiDriver

    registry.register(AsteriskAmiDriver)


@hookimpl
def corecall_register_commands(cli, context) -> None:
    """``corecall asterisk render`` and ``corecall asterisk check``."""
    from corecall_asterisk.cli import register

    register(cli, context)
