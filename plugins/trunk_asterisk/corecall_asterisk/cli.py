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
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from corecall.errors import ConfigError, UsageError
from corecall.fields import echo, show_path
from corecall_asterisk.options import (
    PLUGIN_NAME,
    AmiServerConfig,
    resolve_server,
    servers_table,
)

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


def _masked(manager_conf: str, secret: str) -> str:
    """``manager.conf`` as it may be printed: the secret line masked, saying where it goes."""
    return manager_conf.replace(
        f"\nsecret={secret}\n",
        "\n; the configured secret, masked: `corecall asterisk render --output-dir DIR` "
        "writes it\nsecret=***\n",
    ).replace(secret, "***")


def register(cli: typer.Typer, context: PluginContext) -> None:
    asterisk = typer.Typer(
        help="Asterisk wiring: print the config corecall needs, check a live server.",
        no_args_is_help=True,
        # "\b": click prints the paragraph as is (the core's help pages do the same).
        epilog="\b\nExamples:\n  corecall asterisk check\n  corecall asterisk render --only pjsip\n"
        "  corecall asterisk render --output-dir /etc/asterisk/corecall",
    )

    @asterisk.command("render")
    def render(
        only: str = typer.Option(
            None, "--only", metavar="FILE", help="Just one file: pjsip, extensions or manager."
        ),
        output_dir: str = typer.Option(
            None,
            "--output-dir",
            metavar="DIR",
            help="Write the files into DIR (an existing, writable directory) with mode 0640, "
            "manager.conf with the configured AMI secret, instead of printing them. With "
            "several Asterisk servers each gets DIR/SERVER/.",
        ),
        force: bool = typer.Option(
            False, "--force", help="Replace files in DIR that corecall did not write."
        ),
        show_secret: bool = typer.Option(False, "--show-secret", hidden=True),
        sip_bind: str = typer.Option(
            "127.0.0.1:5060",
            "--sip-bind",
            metavar="IP:PORT",
            help="Where Asterisk listens for the providers (the address facing them).",
        ),
    ) -> None:
        """Print (or write) pjsip.conf, extensions.conf and manager.conf for the routes.

        One set per Asterisk server. Each trunk's provider address comes from its table
        (provider_host, provider_port); without them a documentation address is used and a
        warning says so. On stdout the AMI secret is masked; only --output-dir writes it,
        into manager.conf (mode 0640).
        """
        from corecall_asterisk import render as asterisk_conf
        from corecall_asterisk.output import (
            check_output_dir,
            check_replaceable,
            server_dir,
            write_all_private,
        )

        if show_secret:
            raise UsageError(
                "--show-secret is gone: corecall never prints a secret. Use --output-dir DIR: "
                "it writes manager.conf with the configured AMI secret (mode 0640)"
            )
        if only is not None and only not in FILES:
            raise UsageError(f"--only {echo(only)}: must be one of: {', '.join(FILES)}")
        try:  # checked before anything is rendered or written
            asterisk_conf._check_hostport(sip_bind, "--sip-bind")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        wanted = [name for name in FILES if only is None or name == only]
        directory = check_output_dir(output_dir) if output_dir is not None else None
        dial_timeout = context.config.calls.target_ring_timeout
        none = (
            f'no route uses an "{PLUGIN_NAME}" trunk; set driver = "{PLUGIN_NAME}", server and '
            "endpoint in the route's [trunks.NAME] table"
        )
        servers = _servers(context, none)
        # Everything is rendered (and checked) before anything is written or printed: a bad
        # name or a missing secret changes nothing.
        rendered: list[tuple[AmiServerConfig, dict[str, str]]] = []
        for server_name, (server, endpoints) in servers.items():
            if directory is not None and "manager" in wanted and not server.secret:
                raise ConfigError(
                    f"server {server_name!r} has no AMI secret configured, and manager.conf "
                    f"must carry it: set CORECALL_AMI_SECRET_{server_name.upper()} (or "
                    f"secret in [{servers_table(server_name)}]) first, or leave manager.conf "
                    "out with --only pjsip / --only extensions"
                )
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
            try:
                texts = {
                    "pjsip": asterisk_conf.render_pjsip(trunks, bind=sip_bind),
                    "extensions": asterisk_conf.render_extensions(
                        server.context, dial_timeout_default=dial_timeout
                    ),
                    "manager": asterisk_conf.render_manager(
                        server.username,
                        *([server.secret] if server.secret else []),
                        bind=server.host,
                        port=server.port,
                    ),
                }
            except ValueError as exc:
                raise ConfigError(
                    f"cannot render the Asterisk configuration of server {server_name!r}: {exc}"
                ) from None
            rendered.append((server, texts))

        several = len(rendered) > 1
        files: list[tuple[Path, str]] = []
        owners: list[str] = []  # the server each file belongs to
        for server, texts in rendered:
            if directory is None:
                for name in wanted:
                    text = texts[name]
                    if name == "manager" and server.secret:
                        text = _masked(text, server.secret)
                    sys.stdout.write(f"; ===== server {server.name}: {name}.conf =====\n")
                    sys.stdout.write(text.rstrip("\n") + "\n\n")
                continue
            for name in wanted:
                path = server_dir(directory, server.name, several=several) / f"{name}.conf"
                files.append((path, texts[name]))
                owners.append(server.name)
        if directory is not None:
            if not force:
                check_replaceable([path for path, _text in files])
            write_all_private(files)  # all or nothing: never a mix of old and new files
            for (path, _text), owner in zip(files, owners, strict=True):
                secret = path.name == "manager.conf"
                note = f", with the AMI secret of server {owner!r}" if secret else ""
                typer.echo(f"wrote {show_path(path)} (mode 0640{note})")
        if directory is not None and "manager" in wanted:
            typer.echo(
                "manager.conf holds the AMI secret: keep it readable by root and Asterisk's "
                "group only (chgrp asterisk, or a setgid directory of that group)"
            )

    @asterisk.command("check")
    def check(
        timeout: float = typer.Option(
            5.0, "--timeout", min=0.1, max=600, help="Seconds per AMI step."
        ),
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
