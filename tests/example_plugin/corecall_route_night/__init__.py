"""corecall route plugin: the Night route ([N]) for after-hours calls.

A route plugin only says what the route is called and how agents pick it. The trunk it
uses, its caller IDs and the countries it may call come from the ``[routes.N]`` table of
the configuration, so operators rewire the route without touching this code.
"""

from corecall import RouteDefinition, hookimpl

ROUTE = RouteDefinition(
    code="N",
    name="Night",
    button="[Night Route]  🌙",
    description="After-hours calls through the night trunk.",
)


@hookimpl
def corecall_register_routes(registry):
    registry.register(ROUTE)
