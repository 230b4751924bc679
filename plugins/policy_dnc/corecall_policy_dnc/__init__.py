"""Do-not-call list: refuse calls to numbers on the operator's list, kept in the store.

The list lives in the store (table ``do_not_call``, schema v3) so every bot, console and
CLI on one store shares it, and it survives restarts. This plugin enforces it before every
call (reason ``do_not_call``; the agent is told the number may not be called, not why it
was listed) and adds the ``corecall dnc`` commands. See docs/compliance.md.
"""

from __future__ import annotations

from corecall import hookimpl
from corecall.domain import CallRequest, Refusal
from corecall.store import Store

NAME = "policy_dnc"

REFUSAL_MESSAGE = "This number is on the do-not-call list: it may not be called."


def refusal(request: CallRequest, store: Store) -> Refusal | None:
    """Refuse when ``request.target`` is listed (one indexed lookup)."""
    if store.dnc_contains(request.target):
        return Refusal("do_not_call", REFUSAL_MESSAGE, NAME)
    return None


@hookimpl
def corecall_check_call(request, context):
    return refusal(request, context.store)


@hookimpl
def corecall_register_commands(cli, context):
    from corecall_policy_dnc.commands import make_dnc_app

    cli.add_typer(make_dnc_app(context), name="dnc")


__all__ = ["NAME", "REFUSAL_MESSAGE", "refusal"]
