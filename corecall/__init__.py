"""corecall: click-to-call for outbound call centres, driven from Telegram.

Plugin authors need only::

    from corecall import hookimpl, RouteDefinition

Importing corecall loads no plugin and starts nothing.
"""

from corecall.domain import RouteDefinition
from corecall.hookspecs import hookimpl

__all__ = ["RouteDefinition", "hookimpl"]
__version__ = "0.1.0"
