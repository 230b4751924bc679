"""The Development route ([D]): For configuring and testing outbound dialing.

A route plugin only says what the route is called and how agents pick it. Which trunk it
uses, its operator-owned caller IDs and the countries it may call come from the
configuration's ``[routes.D]`` table, so operators rewire routes without code changes.
"""

from __future__ import annotations

from corecall.domain import RouteDefinition
from corecall.hookspecs import hookimpl

ROUTE = RouteDefinition(
    code="D",
    name="Development",
    button="[Development Route]  🛠️",
    description="For configuring and testing outbound dialing.",
)


@hookimpl
def corecall_register_routes(registry) -> None:
    registry.register(ROUTE)
