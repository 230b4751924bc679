"""corecall: click-to-call for outbound call centres, driven from Telegram.

Plugin authors need only::

    from corecall import hookimpl, option, PluginContext, RouteDefinition

Importing corecall loads no plugin and starts nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corecall.context import PluginContext
    from corecall.domain import RouteDefinition
    from corecall.hookspecs import hookimpl
    from corecall.options import option

__all__ = ["PluginContext", "RouteDefinition", "hookimpl", "option"]
__version__ = "0.1.0"

#: What ``from corecall import X`` offers, and where it lives.
_EXPORTS = {
    "PluginContext": "corecall.context",
    "RouteDefinition": "corecall.domain",
    "hookimpl": "corecall.hookspecs",
    "option": "corecall.options",
}


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562), so ``corecall --version`` and ``--help`` don't pay
    # for attrs, cattrs and pluggy.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corecall' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
