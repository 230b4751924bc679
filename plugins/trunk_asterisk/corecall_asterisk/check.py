"""``corecall asterisk check``: is an Asterisk server wired the way corecall needs it?

AMI reachable, login accepted, the AMI user's privileges (enough, and not more than needed),
every route's PJSIP endpoint, the bridge context and its hangup handler. Each result says
what is wrong and how to fix it. Nothing is dialed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from corecall.errors import TelephonyError, UnsafeValueError
from corecall_asterisk.errors import AmiLoginError
from corecall_asterisk.link import AmiLink, describe_error
from corecall_asterisk.names import check_name
from corecall_asterisk.options import servers_table

if TYPE_CHECKING:
    from corecall_asterisk.options import AmiServerConfig


#: Seconds the check waits after the login for FullyBooted (sent at once when Asterisk is up).
BOOT_WAIT = 2.0


@attrs.frozen
class CheckResult:
    """One line of ``corecall asterisk check``."""

    ok: bool
    what: str
    fix: str = ""
    warning: bool = False


async def check_server(
    server: AmiServerConfig, endpoints: dict[str, str], *, timeout: float | None = None
) -> list[CheckResult]:
    """Check one Asterisk server: AMI reachable, login, privileges, endpoints, bridge context.

    ``endpoints`` maps each PJSIP endpoint name to a description of who uses it (route and
    trunk). Nothing is dialed. Endpoints and contexts are looked up with ``Getvar`` of
    ``PJSIP_ENDPOINT()`` / ``DIALPLAN_EXISTS()`` (``call`` privilege); when those functions
    are not loaded, ``PJSIPQualify`` / ``ShowDialPlan`` are tried (``reporting``).
    """
    results: list[CheckResult] = []
    where = f"{server.name} ({server.host}:{server.port})"
    link = AmiLink(attrs.evolve(server, action_timeout=timeout or server.action_timeout))
    try:
        await link._connect_once()
    except AmiLoginError as exc:
        results.append(CheckResult(True, f"{where}: AMI reachable"))
        results.append(
            CheckResult(
                False, f"{where}: {exc.args[0].split(':')[0]}",
                f"use the same secret in manager.conf [{server.username}] and in "
                f"[{servers_table(server.name)}] secret (or CORECALL_AMI_SECRET_"
                f"{server.name.upper()}); the [{server.username}] permit= must allow this host; "
                "then `manager reload` in Asterisk",
            )
        )  # fmt: skip
        return results
    except (OSError, TimeoutError, TelephonyError) as exc:
        results.append(
            CheckResult(
                False, f"{where}: AMI not reachable: {describe_error(exc)}",
                f"start Asterisk; in manager.conf set enabled=yes, bindaddr={server.host}, "
                f"port={server.port} (or fix [{servers_table(server.name)}] host/port)",
            )
        )  # fmt: skip
        return results
    try:
        results.append(
            CheckResult(True, f"{where}: AMI reachable, logged in as {server.username!r}")
        )
        results.extend(await _check_privileges(link, where, server))
        if not await link.wait_ready(BOOT_WAIT):
            # Before FullyBooted the endpoints and the dialplan may not be loaded yet: saying
            # "the bridge context is missing" now would send the operator down a wrong path.
            results.append(
                CheckResult(
                    False, f"{where}: Asterisk is still starting (logged in, but no "
                    f"FullyBooted within {BOOT_WAIT:g} s); corecall places no call until it is",
                    "wait a few seconds and run the check again; if this persists, the AMI user "
                    f"does not receive FullyBooted: in manager.conf [{server.username}] read= "
                    "must include system and the eventfilter must let FullyBooted through "
                    "(`corecall asterisk render` prints one that does)",
                )
            )  # fmt: skip
            return results
        results.extend(await _check_endpoints(link, where, endpoints))
        results.extend(await _check_context(link, where, server.context))
    finally:
        link._close_protocol()
    return results


_NEEDED_ACTIONS = {
    "Originate": "originate",
    "Hangup": "call",
    "Status": "call",
    "Getvar": "call",
}


async def _check_privileges(link: AmiLink, where: str, server) -> list[CheckResult]:
    reply = await link.action({"Action": "ListCommands"})
    allowed = {k for k in reply if k not in ("Response", "ActionID", "Message")}
    missing = {a: c for a, c in _NEEDED_ACTIONS.items() if a not in allowed}
    out = []
    if missing:
        classes = ",".join(sorted(set(missing.values())))
        out.append(
            CheckResult(
                False, f"{where}: AMI user {server.username!r} may not use "
                f"{', '.join(sorted(missing))}",
                f"in manager.conf [{server.username}] set write=originate,call "
                f"(missing: {classes}) and read=call,user,system; then `manager reload`",
            )
        )  # fmt: skip
    else:
        out.append(CheckResult(True, f"{where}: privileges suffice (write=originate,call)"))
    extra = sorted(a for a in ("Command", "Reload", "UpdateConfig", "GetConfig") if a in allowed)
    if extra:
        out.append(
            CheckResult(
                True, f"{where}: AMI user {server.username!r} can also use {', '.join(extra)}; "
                "corecall does not need that",
                "remove system, command and config from write= in manager.conf", warning=True,
            )
        )  # fmt: skip
    return out


async def _getvar(link: AmiLink, expression: str) -> str:
    reply = await link.action({"Action": "Getvar", "Variable": expression})
    return reply.get("Value", "") if reply.success else ""


async def _check_endpoints(link: AmiLink, where: str, endpoints: dict[str, str]):
    """One result per endpoint. PJSIP_ENDPOINT (func_pjsip_endpoint) needs only ``call``;
    every existing endpoint has a context, so an empty answer means "no such endpoint" once
    any endpoint answered (the function is loaded), else it is ambiguous."""
    contexts: dict[str, str] = {}
    out: list[CheckResult] = []
    for endpoint in endpoints:
        try:
            check_name(endpoint, "endpoint")
        except UnsafeValueError:
            contexts[endpoint] = ""
            continue
        contexts[endpoint] = await _getvar(link, f"PJSIP_ENDPOINT({endpoint},context)")
    function_loaded = any(contexts.values())
    missing_fix = (
        "add it to pjsip.conf (`corecall asterisk render` prints it), then `pjsip reload` "
        "in Asterisk; or fix the trunk's endpoint name in the config"
    )
    for endpoint, users in endpoints.items():
        exists = CheckResult(True, f"{where}: PJSIP endpoint {endpoint!r} exists ({users})")
        try:
            check_name(endpoint, "endpoint")
        except UnsafeValueError as exc:
            out.append(CheckResult(False, f"{where}: {exc}", "fix the trunk's endpoint name"))
            continue
        if contexts[endpoint]:
            out.append(exists)
            continue
        reply = await link.action({"Action": "PJSIPQualify", "Endpoint": endpoint})
        denied = "permission" in reply.get("Message", "").lower()
        if reply.success:
            out.append(exists)
        elif denied and not function_loaded:
            out.append(
                CheckResult(
                    False, f"{where}: PJSIP endpoint {endpoint!r} not found ({users}), or "
                    "func_pjsip_endpoint is not loaded so it cannot be checked",
                    f"{missing_fix}; if it exists, `module load func_pjsip_endpoint.so`",
                )
            )  # fmt: skip
        else:
            out.append(
                CheckResult(
                    False, f"{where}: PJSIP endpoint {endpoint!r} does not exist ({users})",
                    missing_fix,
                )
            )  # fmt: skip
    return out


async def _check_context(link: AmiLink, where: str, context: str) -> list[CheckResult]:
    out = []
    fix = "add extensions.conf from `corecall asterisk render`, then `dialplan reload`"
    probes = (
        (context, "+12125550123", "bridge context", "its _+X. extension"),
        (f"{context}-end", "s", "hangup handler", "its s extension"),
    )
    check_name(context, "dialplan context")  # the handler's name is derived from it
    for ctx, exten, purpose, what in probes:
        # DIALPLAN_EXISTS (func_dialplan) needs only `call`; ShowDialPlan needs `reporting`.
        found = await _getvar(link, f"DIALPLAN_EXISTS({ctx},{exten},1)")
        if found == "1":
            out.append(CheckResult(True, f"{where}: dialplan {purpose} {ctx!r} exists"))
            continue
        if found == "0":  # the function answered: it is not there
            out.append(
                CheckResult(
                    False, f"{where}: dialplan {purpose} {ctx!r} ({what}) does not exist", fix
                )
            )
            continue
        reply = await link.action({"Action": "ShowDialPlan", "Context": ctx, "Extension": exten})
        messages = reply if isinstance(reply, list) else [reply]
        head = messages[0] if messages else {}
        if head.get("Response") == "Success":
            out.append(CheckResult(True, f"{where}: dialplan {purpose} {ctx!r} exists"))
        elif "permission" in head.get("Message", "").lower():
            out.append(
                CheckResult(
                    False, f"{where}: dialplan {purpose} {ctx!r} ({what}) not found, or "
                    "func_dialplan is not loaded so it cannot be checked",
                    f"{fix}; if it exists, `module load func_dialplan.so`",
                )
            )  # fmt: skip
        else:
            out.append(
                CheckResult(
                    False, f"{where}: dialplan {purpose} {ctx!r} ({what}) does not exist", fix
                )
            )
    return out
