"""``corecall asterisk render`` and ``corecall asterisk check``: the plugin's own commands
(added through ``corecall_register_commands``).

``render`` prints pjsip.conf, extensions.conf and manager.conf for the routes on
``asterisk_ami`` trunks (one set per Asterisk server); ``check`` connects to every server
those routes use and checks AMI, login, privileges, endpoints and the bridge context,
printing each problem with its fix. Neither dials anything.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import typer

from corecall.errors import ConfigError
from corecall_asterisk.options import PLUGIN_NAME, AmiServerConfig, resolve_server

if TYPE_CHECKING:
    from corecall.context import PluginContext

FILES = ("pjsip", "extensions", "manager")


def _servers(
    context: PluginContext, none_message: str
) -> dict[str, tuple[AmiServerConfig, dict[str, list]]]:
    """{server: (its config, {endpoint: [(route code, trunk name, trunk options), ...]})}
    for the routes on asterisk_ami trunks; ConfigError when none is."""
    app = context.app
    config = app.config
    where = str(config.path) if config.path else None
    out: dict[str, tuple[AmiServerConfig, dict[str, list]]] = {}
    for code, route in sorted(config.routes.items()):
        trunk = app.trunk(route.trunk)
        if trunk.driver != PLUGIN_NAME:
            continue
        options = trunk.options
        server = resolve_server(trunk.name, options, context.options, path=where)
        _, endpoints = out.setdefault(server.name, (server, {}))
        endpoints.setdefault(options.endpoint, []).append((code, trunk.name, options))
    if not out:
        raise ConfigError(none_message)
    return out


def register(cli: typer.Typer, context: PluginContext) -> None:
    asterisk = typer.Typer(
        help="Asterisk wiring: print the config corecall needs, check a live server.",
        no_args_is_help=True,
    )

    @asterisk.command("render")
    def render(
        only: str = typer.Option(
            None, "--only", help="Print just one file: pjsip, extensions or manager."
        ),
        show_secret: bool = typer.Option(
            False, "--show-secret", help="Put the configured AMI secret into manager.conf."
        ),
        sip_bind: str = typer.Option(
            "127.0.0.1:5060",
            "--sip-bind",
            metavar="IP:PORT",
            help="Where Asterisk listens for the providers (the address facing them).",
        ),
    ) -> None:
        """Print pjsip.conf, extensions.conf and manager.conf for the configured routes.

        One set per Asterisk server. Each trunk's provider address comes from its table
        (``provider_host``, ``provider_port``); without them a documentation address is used
        and a warning says so.
        """
        from corecall_asterisk import render as asterisk_conf

        if only is not None and only not in FILES:
            raise ConfigError(f"--only must be one of: {', '.join(FILES)}")
        dial_timeout = context.config.calls.target_ring_timeout
        none = (
            f'no route uses an "{PLUGIN_NAME}" trunk; set driver = "{PLUGIN_NAME}", server and '
            "endpoint in the route's [trunks.NAME] table"
        )
        for server_name, (server, endpoints) in _servers(context, none).items():
            trunks = []
            for n, (endpoint, users) in enumerate(endpoints.items()):
                _code, trunk_name, options = users[0]
                host = options.provider_host
                if not host:
                    host = f"203.0.113.{10 * (n + 1)}"
                    typer.echo(
                        f"warning: [trunks.{trunk_name}] has no provider_host; using the "
                        f"documentation address {host}. Set provider_host (and provider_port) "
                        "to the provider's signalling address.",
                        err=True,
                    )
                trunks.append(
                    {
                        "name": endpoint,
                        "provider_host": host,
                        "provider_port": options.provider_port,
                    }
                )
            secret = server.secret if show_secret and server.secret else None
            try:
                texts = {
                    "pjsip": asterisk_conf.render_pjsip(trunks, bind=sip_bind),
                    "extensions": asterisk_conf.render_extensions(
                        server.context, dial_timeout_default=dial_timeout
                    ),
                    "manager": asterisk_conf.render_manager(
                        server.username,
                        *([secret] if secret else []),
                        bind=server.host,
                        port=server.port,
                    ),
                }
            except ValueError as exc:
                raise ConfigError(
                    f"cannot render the Asterisk configuration of server {server_name!r}: {exc}"
                ) from None
            for name in FILES:
                if only and name != only:
                    continue
                sys.stdout.write(f"; ===== server {server_name}: {name}.conf =====\n")
                sys.stdout.write(texts[name].rstrip("\n") + "\n\n")

    @asterisk.command("check")
    def check(
        timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds per AMI step."),
    ) -> None:
        """Check every Asterisk server the routes use: AMI reachable, login, privileges, each
        route's PJSIP endpoint, the bridge context. Prints each problem with its fix; exit 1
        if there is any. Dials nothing."""
        from corecall_asterisk.check import check_server

        # Whatever would make a /call fail for a configuration reason fails the check
        # first, with its true cause (a disabled route plugin, an unknown driver name).
        setup = context.app.call_problems()
        for what, fix in setup:
            typer.echo(f"PROBLEM  {what}\n         fix: {fix}")
        if setup:
            typer.echo(f"{len(setup)} problem(s) found", err=True)
            raise typer.Exit(1)
        servers = _servers(
            context,
            f'no route uses an "{PLUGIN_NAME}" trunk: nothing to check (routes on the '
            '"simulated" driver dial nothing)',
        )

        def users(endpoints: dict[str, list]) -> dict[str, str]:
            return {
                endpoint: "; ".join(f"route {code}, trunk {trunk}" for code, trunk, _ in rows)
                for endpoint, rows in endpoints.items()
            }

        async def run():
            return await asyncio.gather(
                *(check_server(server, users(endpoints), timeout=timeout)
                  for server, endpoints in servers.values())
            )  # fmt: skip

        problems = 0
        for results in asyncio.run(run()):
            for r in results:
                if r.ok and not r.warning:
                    typer.echo(f"ok       {r.what}")
                elif r.ok:
                    typer.echo(f"warning  {r.what}\n         fix: {r.fix}")
                else:
                    problems += 1
                    typer.echo(f"PROBLEM  {r.what}\n         fix: {r.fix}")
        if problems:
            typer.echo(f"{problems} problem(s) found", err=True)
            raise typer.Exit(1)
        typer.echo("Asterisk wiring looks right")

    cli.add_typer(asterisk, name="asterisk")
