"""corecall route plugin: the Night route ([N]) for after-hours calls.

A route plugin only says what the route is called and how agents pick it. The trunk it
uses, its caller IDs and the countries it may call come from the ``[routes.N]`` table of
the configuration, so operators rewire the route without touching this code.

Its own settings live in ``[plugins.route_night]`` (:class:`NightOptions`); the pager token
is a secret, best set as ``CORECALL_PLUGINS_ROUTE_NIGHT_PAGER_TOKEN``. It adds one command,
``corecall night status``.
"""

import attrs
import typer

from corecall import RouteDefinition, hookimpl, option

ROUTE = RouteDefinition(
    code="N",
    name="Night",
    button="[Night Route]  🌙",
    description="After-hours calls through the night trunk.",
)


@attrs.frozen
class NightOptions:
    supervisor: str = option("", doc="Who supervises the night shift (shown by `night status`).")
    pager_token: str = option("", doc="Token for paging the night supervisor.", secret=True)


@hookimpl
def corecall_register_routes(registry):
    registry.register(ROUTE)


@hookimpl
def corecall_plugin_options():
    return NightOptions


@hookimpl
def corecall_register_commands(cli, context):
    night = typer.Typer(help="The Night route.", no_args_is_help=True)

    @night.command("status")
    def status():
        """Who supervises the night shift, and how many agents are on route N."""
        options = context.options
        on_night = [a for a in context.store.list_agents() if a.route_code == ROUTE.code]
        pager = "set" if options.pager_token else "not set"
        typer.echo(f"supervisor: {options.supervisor or '(nobody)'}; pager token {pager}")
        typer.echo(f"agents on route N: {len(on_night)}")

    cli.add_typer(night, name="night")
