"""The Asterisk plugin's configuration: its own tables, validated by the core's options
mechanism (:mod:`corecall.options`) with the same messages as every other table.

``[plugins.asterisk_ami.servers.NAME]`` (:class:`AmiServerOptions`), one per Asterisk server
(one AMI connection each)::

    [plugins.asterisk_ami.servers.pbx1]
    host = "127.0.0.1"
    port = 5038
    username = "corecall"
    secret = ""              # or CORECALL_AMI_SECRET_PBX1 / CORECALL_AMI_SECRET
    context = "corecall-bridge"

The extra keys of a ``[trunks.X]`` table with ``driver = "asterisk_ami"``
(:class:`AsteriskTrunkOptions`)::

    [trunks.main]
    driver = "asterisk_ami"
    server = "pbx1"              # a [plugins.asterisk_ami.servers.NAME] table
    endpoint = "corecall-main"   # the PJSIP endpoint
    provider_host = "198.51.100.7"   # for `corecall asterisk render`

Names that reach Asterisk (``endpoint``, ``context``, ``username``) follow the one rule of
:mod:`corecall_asterisk.names`, the rule the render and the driver apply too. Secrets come
from the environment by the core's rule (``CORECALL_PLUGINS_ASTERISK_AMI_SERVERS_<NAME>_SECRET``)
or the older ``CORECALL_AMI_SECRET_<NAME>`` / ``CORECALL_AMI_SECRET`` (looked at first).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from corecall import option
from corecall.errors import ConfigError
from corecall.options import seconds
from corecall_asterisk.actions import DEFAULT_CONTEXT
from corecall_asterisk.names import ipv4_problem, name_problem

#: The plugin's name (its entry point), the NAME of ``[plugins.NAME]``.
PLUGIN_NAME = "asterisk_ami"


def _asterisk_name(_inst, _attribute, value) -> None:
    problem = name_problem(value)
    if problem is not None:
        raise ValueError(problem)


def _ipv4_or_unset(_inst, _attribute, value) -> None:
    if value:
        problem = ipv4_problem(value)
        if problem is not None:
            raise ValueError(problem)


def _server_names(_inst, _attribute, value) -> None:
    for name in value:
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(f"server name {name!r:.40}: {problem}")


def _port(_inst, _attribute, value) -> None:
    if not 0 < value < 65536:
        raise ValueError(f"expected a TCP port between 1 and 65535, got {value}")


@attrs.frozen
class AmiServerOptions:
    """One ``[plugins.asterisk_ami.servers.NAME]`` table: one Asterisk server."""

    host: str = option("127.0.0.1", doc="Address of Asterisk's AMI (manager.conf bindaddr).")
    port: int = option(5038, doc="AMI TCP port (manager.conf port).", validator=_port)
    username: str = option(
        "corecall", doc="The AMI user (a manager.conf section).", validator=_asterisk_name
    )
    secret: str = option(
        "",
        doc="The AMI user's secret.",
        secret=True,
        env=("CORECALL_AMI_SECRET_{NAME}", "CORECALL_AMI_SECRET"),
    )
    context: str = option(
        DEFAULT_CONTEXT,
        doc="The bridge dialplan context the Originate enters.",
        validator=_asterisk_name,
    )
    ping_interval: float = option(5.0, doc="Seconds between keep-alive Pings.", validator=seconds())
    action_timeout: float = option(
        5.0, doc="Seconds to wait for each AMI reply.", validator=seconds()
    )


@attrs.frozen
class AsteriskOptions:
    """The ``[plugins.asterisk_ami]`` table."""

    PER_ROUTE: ClassVar[bool] = False  # process-wide: no [plugins.NAME.routes.CODE]

    servers: dict[str, AmiServerOptions] = option(
        factory=dict,
        doc="One sub-table per Asterisk server; each asterisk_ami trunk names one.",
        validator=_server_names,
    )


@attrs.frozen
class AsteriskTrunkOptions:
    """The keys of a ``[trunks.X]`` table with ``driver = "asterisk_ami"``."""

    server: str = option(doc="Name of the [plugins.asterisk_ami.servers.NAME] table to use.")
    endpoint: str = option(
        doc="The trunk's PJSIP endpoint, e.g. corecall-main.", validator=_asterisk_name
    )
    provider_host: str = option(
        "",
        doc="The provider's signalling IPv4 address (for `corecall asterisk render`).",
        validator=_ipv4_or_unset,
    )
    provider_port: int = option(
        5060, doc="The provider's SIP port (for `corecall asterisk render`).", validator=_port
    )


@attrs.frozen
class AmiServerConfig:
    """One Asterisk server as the link uses it: its table's name plus its options."""

    name: str
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "corecall"
    secret: str = attrs.field(default="", repr=False)  # never in a repr, a log, a traceback
    context: str = DEFAULT_CONTEXT
    ping_interval: float = 5.0
    action_timeout: float = 5.0

    @classmethod
    def of(cls, name: str, options: AmiServerOptions) -> AmiServerConfig:
        return cls(name=name, **attrs.asdict(options))


def servers_table(name: str) -> str:
    return f"plugins.{PLUGIN_NAME}.servers.{name}"


def resolve_server(
    trunk_name: str,
    trunk: AsteriskTrunkOptions,
    options: AsteriskOptions,
    *,
    path: str | None,
) -> AmiServerConfig:
    """The server ``[trunks.<trunk_name>] server`` names; ConfigError (file, key, the known
    servers) when there is no such table."""
    server = options.servers.get(trunk.server)
    if server is None:
        known = ", ".join(sorted(options.servers)) or "none defined"
        raise ConfigError(
            f"no [{servers_table(trunk.server)}] table (servers: {known})",
            path=path,
            key=f"trunks.{trunk_name}.server",
        )
    return AmiServerConfig.of(trunk.server, server)
