"""corecall: click-to-call for outbound call centres, driven from Telegram.

Plugin authors need only::

    from corecall import hookimpl, option, PluginContext, RouteDefinition

Importing corecall loads no plugin and starts nothing.
"""

from corecall.context import PluginContext
from corecall.domain import RouteDefinition
from corecall.hookspecs import hookimpl
from corecall.options import option

__all__ = ["PluginContext", "RouteDefinition", "hookimpl", "option"]
__version__ = "0.1.0"
