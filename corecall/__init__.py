"""corecall: click-to-call for outbound call centres, driven from Telegram.

Plugin authors need only::

    from corecall import hookimpl, RouteDefinition

Importing corecall loads no plugin and starts nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corecall.domain import RouteDefinition
    from corecall.hookspecs import hookimpl

__all__ = ["RouteDefinition", "hookimpl"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562), so ``corecall --version`` and ``--help`` don't pay
    # for attrs and pluggy.
    if name == "RouteDefinition":
        from corecall.domain import RouteDefinition

        return RouteDefinition
    if name == "hookimpl":
        from corecall.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'corecall' has no attribute {name!r}")
