"""The one rule for names that reach Asterisk: PJSIP endpoints (trunks), dialplan contexts
and the AMI user.

Used by the configuration (``[trunks.X] endpoint``, ``[plugins.asterisk_ami.servers.X]
context`` and ``username``), by the render of ``pjsip.conf``/``extensions.conf``/
``manager.conf``, by the Originate builder, by ``asterisk check``, by the lab and the
benchmark, so a name is either accepted everywhere or refused everywhere, at the first of
those it reaches.

Why this rule: the name is written into config section headers (``[name]``), into the dial
string ``PJSIP/<number>@<endpoint>`` (PJSIP splits on ``/``, ``@``, ``&``) and into the
``Variable`` header (split on ``,``); the bridge dialplan re-filters the trunk name with
``FILTER(a-z0-9-,…)`` and refuses the call if that changed anything, so an upper-case letter
or ``_`` would be accepted here and refused by Asterisk on every call. Asterisk's own limit is
79 characters (``AST_MAX_CONTEXT``); 40 leaves room for the ``<context>-end`` handler.
"""

from __future__ import annotations

import ipaddress
import re

from corecall.errors import UnsafeValueError

#: What a valid name looks like, in words (used in every error message).
NAME_RULE = "1-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"

#: Example used in error messages.
NAME_EXAMPLE = "corecall-main"

_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


def name_problem(value: object) -> str | None:
    """Why ``value`` is not a valid Asterisk name, or ``None`` when it is."""
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__}"
    if not _NAME_RE.fullmatch(value):
        return f"expected {NAME_RULE} (e.g. {NAME_EXAMPLE!r}), got {value!r}"
    return None


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid Asterisk name, else raise
    :class:`~corecall.errors.UnsafeValueError` (a ``ValueError``) naming ``what``."""
    problem = name_problem(value)
    if problem is not None:
        raise UnsafeValueError(f"{what}: {problem}")
    return value  # type: ignore[return-value]


def ipv4_problem(value: object) -> str | None:
    """Why ``value`` is not a dotted IPv4 address (what pjsip.conf's ``identify`` match and
    ``contact`` take for an IP-authenticated trunk), or ``None`` when it is. Uses
    :mod:`ipaddress`, so a trailing newline or anything after the address is refused."""
    if not isinstance(value, str):
        return f"expected an IPv4 address as text, got {type(value).__name__}"
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"expected an IPv4 address like 203.0.113.10, got {value!r:.60}"
    return None
