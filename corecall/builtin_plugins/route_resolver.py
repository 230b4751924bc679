"""Built-in route resolver: the agent's own selected route, if it is still offered.

``trylast`` so a third-party resolver (e.g. time-of-day routing) can answer first.
"""

from __future__ import annotations

from corecall.domain import Agent, Route
from corecall.hookspecs import hookimpl


@hookimpl(trylast=True)
def corecall_resolve_route(agent: Agent, routes: dict[str, Route]) -> Route | None:
    if agent.route_code is None:
        return None
    return routes.get(agent.route_code)
