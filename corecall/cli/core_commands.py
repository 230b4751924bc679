"""``corecall init``, ``corecall config show``, ``corecall plugins ...`` and
``corecall number check``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from corecall.cli.common import actor, console, print_json, state
from corecall.cli.tables import print_table
from corecall.errors import CorecallError
from corecall.fields import echo, show_path

if TYPE_CHECKING:
    from corecall.plugins import Plugins

plugins_app = typer.Typer(help="List, enable and disable plugins.", no_args_is_help=True)
number_app = typer.Typer(help="Check numbers against the number policy.", no_args_is_help=True)
config_app = typer.Typer(help="Show the configuration in effect.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(config_app, name="config")
    app.add_typer(plugins_app, name="plugins")
    app.add_typer(number_app, name="number")


def plugin_sections(plugins: Plugins) -> str:
    """Commented TOML sections for every loaded plugin that declares options: its
    ``[plugins.NAME]`` table, the extra keys of ``[store]`` per store backend and of
    ``[trunks.X]`` per trunk driver (for ``corecall init``)."""
    from corecall.options import render_commented

    parts = []
    for name, cls in plugins.options_classes.items():
        info = plugins.infos[name]
        title = f"Plugin {name} ({info.distribution} {info.version})"
        parts.append(render_commented(cls, f"plugins.{name}", title=title))
    for name, reg in plugins.stores.items().items():
        if reg.options is not None:
            title = f'Keys of [store] with backend = "{name}" (plugin {reg.plugin})'
            parts.append(render_commented(reg.options, "store", title=title))
    for name, reg in plugins.trunk_drivers.items().items():
        if reg.options is not None:
            title = f'Keys of a [trunks.X] table with driver = "{name}" (plugin {reg.plugin})'
            parts.append(render_commented(reg.options, "trunks.X", title=title))
    if not parts:
        return ""
    head = (
        "\n# ---------------------------------------------------------------- plugin options\n"
        "# Every installed plugin's options, commented out with their defaults. Any key can\n"
        "# also come from the environment: CORECALL_<TABLE>_<KEY>, e.g.\n"
        "# CORECALL_PLUGINS_NAME_KEY for [plugins.NAME] KEY.\n\n"
    )
    return head + "\n".join(parts)


def _disabled_now() -> set[str]:
    """The plugins switched off in the data directory the new configuration will use
    (a disabled plugin is never imported, not even to document its options)."""
    from corecall.config import parse_config
    from corecall.plugins import read_disabled

    try:
        return read_disabled(parse_config({}, path=None).plugin_state_path)
    except CorecallError:
        return set()


def init(
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config file."),
) -> None:
    """Write a commented starter config and create the database."""
    from corecall.config import resolve_config_path, write_starter_config
    from corecall.plugins import load_plugins

    path, _ = resolve_config_path(state.config_path)
    write_starter_config(path, force=force, extra=plugin_sections(load_plugins(_disabled_now())))
    state.config_path = str(path)
    app = state.reload()
    store = app.store  # opening creates the schema
    console.print(f"wrote {show_path(path)}")
    where = getattr(store, "location", "")
    console.print(f"database ready ({app.config.store.backend}, schema v{store.schema_version()}):"
                  f" {where}")  # fmt: skip
    console.print("next: edit the file (bot token, super_admins, trunks), then "
                  "`corecall agents add ...` and `corecall run`")  # fmt: skip


# --------------------------------------------------------------------------- config


@config_app.command("show")
def config_show(json_: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """Every value in effect and where it came from (file, environment, default); secrets
    are shown as ***."""
    from corecall.effective_config import effective_values

    app = state.app()
    rows = effective_values(app.config, app.options)
    problems = app.config_problems()  # e.g. a trunk naming a server that is not configured
    if problems:
        raise CorecallError("; ".join(problems))
    if json_:
        print_json({
            r.key: {"value": r.shown(), "source": r.source, "env": r.env, "secret": r.secret}
            for r in rows
        })  # fmt: skip
        return
    if app.config.exists:
        console.print(f"# {app.config.where}")
    else:
        from corecall.config import resolve_config_path

        missing = resolve_config_path()[0]
        console.print(f"# no configuration file ({missing} does not exist): built-in defaults; "
                      "`corecall init` writes one")  # fmt: skip
    for r in rows:
        origin = f"{r.source} ${r.env}" if r.env else r.source
        note = f"; {r.doc}" if r.doc.startswith("not validated") else ""
        value = json.dumps(r.shown(), ensure_ascii=False, default=str)
        console.print(f"{r.key} = {value}  # {origin}{note}")


# --------------------------------------------------------------------------- plugins


@plugins_app.command("list")
def plugins_list(json_: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """Name, kind, distribution and version, enabled, hooks implemented, commands added."""
    from corecall.cli import build_cli, core_command_names

    plugins = state.app().plugins
    # Counted against the core's names, as the real command line does.
    plugins.command_names(taken=core_command_names(build_cli()))  # fills each info's commands
    infos = plugins.list()
    if json_:
        print_json([i.as_json() for i in infos])
        return
    rows = []
    for i in infos:
        enabled = "yes" if i.enabled else "no"
        if i.essential:
            enabled += " (essential)"
        if i.error:
            enabled = f"broken: {i.error}"
        hooks = ", ".join(h.removeprefix("corecall_") for h in i.hooks) or "-"
        commands = ", ".join(i.commands) or "-"
        if i.commands_error:
            commands = f"none: dropped ({i.commands_error})"
        rows.append((i.name, i.kind, i.distribution, i.version, enabled, hooks, commands))
    headers = ("name", "kind", "distribution", "version", "enabled", "hooks", "commands")
    print_table(headers, rows, wrap=("enabled", "hooks", "commands"), empty="no plugins installed")


def _set_enabled(name: str, enabled: bool) -> None:
    from corecall.errors import NotFoundError
    from corecall.plugins import (
        check_can_disable,
        known_plugin_names,
        read_disabled,
        update_disabled,
    )

    app = state.app()
    config = app.config
    # A toggle is an audited admin action: the store that records it must answer before
    # the choice is written, or the choice would change without a record (and the
    # operator be told the command failed).
    app.store  # noqa: B018
    if enabled:
        # A name left in plugins.json by a plugin since uninstalled may be removed too.
        if name not in known_plugin_names() and name not in read_disabled(config.plugin_state_path):
            raise NotFoundError(
                f"no plugin named {echo(name)}; known plugins: {', '.join(known_plugin_names())}"
            )
        changed = update_disabled(config.plugin_state_path, lambda d: d.discard(name))
        if not changed:  # nothing written, nothing audited (as for agents and /dnc)
            if name in config.disabled_plugins:
                console.print(
                    f"{name} stays disabled: {config.path} lists it under [plugins] disabled "
                    "(remove it there); nothing changed"
                )
            else:
                console.print(f"{name} was already enabled; nothing changed")
            return
        _audit_toggle(app, "plugin.enable", name, changed)
        if name in config.disabled_plugins:
            console.print(
                f"enabled {name} in {config.plugin_state_path.name}, but it stays disabled: "
                f"{config.path} lists it under [plugins] disabled (remove it there)"
            )
        else:
            console.print(f"enabled {name}; takes effect on next start")
    else:
        check_can_disable(
            name,
            active_store_plugin=app.active_store_plugin(),
            trunk_driver_users=app.trunk_driver_users(),
            available_drivers=app.plugins.trunk_drivers.names(),
            route_resolvers=app.plugins.route_resolvers(),
        )
        changed = update_disabled(config.plugin_state_path, lambda d: d.add(name))
        if not changed:
            console.print(f"{name} was already disabled; nothing changed")
            return
        _audit_toggle(app, "plugin.disable", name, changed)
        console.print(f"disabled {name}; takes effect on next start")


def _audit_toggle(app, action: str, name: str, changed: bool) -> None:
    """Plugin toggles are admin actions: recorded with the OS user who ran the command."""
    detail = json.dumps({"plugin": name, "changed": changed, "state_file": str(
        app.config.plugin_state_path)})  # fmt: skip
    app.store.audit(actor(), action, name, detail)


@plugins_app.command("enable")
def plugins_enable(name: str):
    """Enable a plugin (persisted; takes effect on next start)."""
    _set_enabled(name, True)


@plugins_app.command("disable")
def plugins_disable(name: str):
    """Disable a plugin (persisted; from the next start it is never imported)."""
    _set_enabled(name, False)


# --------------------------------------------------------------------------- numbers


@number_app.command("check")
def number_check(
    text: str,
    route: str = typer.Option("M", "--route", help="Check under this route's rules."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable output."),
):
    """The number policy's verdict for TEXT. Exit 0 when accepted, 1 when refused."""
    from rich.text import Text

    app = state.app()
    verdict = app.plugins.parse_number(text, app.route(route.strip().upper()))
    if json_:
        print_json(verdict.as_json())
    elif verdict.ok:
        console.print(Text("accepted ", style="green") + verdict.e164)
    else:
        console.print(Text("refused ", style="red") + f"({verdict.reason}): {verdict.message}")
    raise typer.Exit(0 if verdict.ok else 1)


__all__ = ["register"]
