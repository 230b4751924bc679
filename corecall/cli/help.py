"""Plain ``--help`` for every command, applied once to the click tree typer builds.

typer 0.29 labels values with their Python types (``<str>``, ``<int range>``, ``<bool>``)
and writes required arguments as ``{text}``. Operators read ``--phone PHONE`` and
``TEXT`` more easily, so each value gets a metavar named after the parameter, and each
command's one-line summary in the command lists is its whole first sentence (click cuts
it at 45 characters otherwise).
"""

from __future__ import annotations

from typing import Any

#: Metavars that say more than the parameter's name.
_METAVARS = {
    "config": "FILE",
    "route": "CODE",
    "code": "CODE",
    "timeout": "SECONDS",
    "wait": "SECONDS",
    "speed": "FACTOR",
    "limit": "N",
    "agent": "TELEGRAM_ID",
    "telegram_id": "TELEGRAM_ID",
    "as_": "TELEGRAM_ID",
    "as_id": "TELEGRAM_ID",
}


#: Help for arguments declared without one.
_ARGUMENT_HELP: dict[str, str] = {
    "text": 'The number as a person would type it, e.g. "(212) 555-0123".',
    "telegram_id": "The agent's numeric Telegram user id.",
    "phone": "The agent's own phone, in any format /call accepts.",
    "number": "One of the route's caller IDs, in any format /call accepts.",
    "code": "A route code, e.g. M or D.",
    "name": "A plugin's name, as `corecall plugins list` shows it.",
}


#: One or more examples for each main command, shown at the end of its --help (a plugin's
#: command group sets its own ``epilog``).
EXAMPLES: dict[str, list[str]] = {
    "init": ["corecall init", "corecall --config /etc/corecall.toml init"],
    "plugins": ["corecall plugins list", "corecall plugins disable route_dev"],
    "number": ['corecall number check "(212) 555-0123"',
               "corecall number check +16243051111 --route D --json"],
    "agents": ['corecall agents add --telegram-id 123456789 --phone "(212) 555-0123" '
               "--name Alice --authorize",
               "corecall agents set-route 123456789 D",
               'corecall agents set-caller-id 123456789 "(212) 555-0199"'],
    "calls": ["corecall calls list --limit 20", "corecall calls list --agent 123456789 --json"],
    "audit": ["corecall audit --limit 50", "corecall audit --json"],
    "call": ['corecall call --route M --agent-phone "(212) 555-0123" --target +12125550199 '
             "--timeout 60"],
    "run": ["CORECALL_BOT_TOKEN=... corecall run --config /etc/corecall.toml"],
    "console": ["corecall console --as 123456789",
                "printf '/call +12125550123\\n' | corecall console --as 123456789"],
    "demo": ["corecall demo", "corecall demo --speed 4 --reset"],
    "health": ["corecall health", "corecall health --json --max-age 60"],
    "config": ["corecall config show", "corecall --config /etc/corecall.toml config show --json"],
    "policy": ['corecall policy check --target "(212) 555-0123" --agent 123456789 '
               "--at 2026-07-01T11:30:00Z",
               "corecall policy check --target +12125550123 --route D --json"],
}  # fmt: skip


def tidy(command: Any) -> Any:
    """Give every parameter of ``command`` and its subcommands a plain metavar.

    ``command`` is the click command typer built (typer vendors click privately, so it is
    used by its public attributes only: ``params``, ``help``, ``commands``).
    """
    for param in command.params:
        is_option = param.param_type_name == "option"
        if is_option and (param.is_flag or param.count):
            continue
        name = _METAVARS.get(param.name or "", (param.name or "value").upper())
        if param.metavar is None:
            param.metavar = name
        if param.param_type_name == "argument":
            shown = param.metavar
            # typer writes required arguments as "{text}": plain NAME in the usage line.
            param._usage_display_name = lambda shown=shown: shown
            param.display_type_rich = lambda ctx: None  # no "<str>" after the name
            if not param.help:
                param.help = _ARGUMENT_HELP.get(param.name or "", "")
    if command.help and not command.short_help:
        command.short_help = _first_sentence(command.help)
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            tidy(sub)
            examples = EXAMPLES.get(name)
            if examples and sub.epilog is None and command.name == "corecall":
                # "\b": click prints the paragraph as is (a command is never re-wrapped).
                sub.epilog = "\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples)
    return command


def _first_sentence(text: str) -> str:
    paragraph = text.strip().split("\n\n", 1)[0]
    paragraph = " ".join(paragraph.split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]
