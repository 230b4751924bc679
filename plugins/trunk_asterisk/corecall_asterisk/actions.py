"""AMI actions and the injection guard: the one place an action's bytes are made.

Every action corecall writes to Asterisk is built from validated values and checked again
just before it is serialised: no CR, LF or NUL in any header (panoramisk writes values
verbatim and Asterisk also splits on a bare LF); numbers are ``+`` and digits (E.164);
endpoint and context names follow :mod:`corecall_asterisk.names`; nothing in a ``Variable``
value can contain ``,`` (Asterisk splits on it); nothing in a dial string can contain ``/``,
``@`` or ``&`` (PJSIP splits on them). Anything else raises
:class:`~corecall.errors.UnsafeValueError` and nothing is written.

:func:`originate_headers` is the **only** Originate builder: the driver, the lab, the event
recorder and the benchmark all send what it returns. The Originate (``Async: true``, never
``Application``/``Data``)::

    Action: Originate
    ActionID: <call id>-o                    (the driver's; omitted when panoramisk adds one)
    Channel: PJSIP/<agent +E164>@<endpoint>
    Context: <bridge context>
    Exten: <target +E164>
    Priority: 1
    CallerID: <agent leg caller ID +E164>    (an owned number: the route's, by default)
    Timeout: <agent ring timeout, ms>
    ChannelId: <call id>-a
    Variable: CORECALL_CALL_ID=<call id>,CORECALL_TRUNK=<endpoint>,CORECALL_CALLER_ID=<+E164>,
              CORECALL_DIAL_TIMEOUT=<target ring timeout, s>,CORECALL_CONFIRM=<key|none>,
              CORECALL_CONFIRM_TIMEOUT=<s>
    Async: true
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from corecall.domain import is_e164
from corecall.errors import UnsafeValueError
from corecall.telephony.driver import OriginateRequest
from corecall_asterisk.names import check_name

_HEADER_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,40}")
CALL_ID_RE = re.compile(r"[0-9a-f]{32}")
_VARIABLE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,40}")
_BAD_HEADER_CHARS = ("\r", "\n", "\0")

#: The bridge context the render writes and the Originate enters, unless configured.
DEFAULT_CONTEXT = "corecall-bridge"


#: Headers whose values are secrets (Login's Secret, a challenge login's Key): errors name
#: them and never show their values.
SECRET_HEADERS = frozenset({"secret", "key"})


def check_header(name: str, value: str) -> None:
    """Raise :class:`UnsafeValueError` unless ``name: value`` is one harmless AMI header line."""
    if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
        raise UnsafeValueError(f"AMI header name {name!r} is not allowed")
    if not isinstance(value, str):
        raise UnsafeValueError(f"AMI header {name} must be text, got {type(value).__name__}")
    if any(c in value for c in _BAD_HEADER_CHARS):
        # Name the header, and show its value only when it is no secret (issue #7: a stray
        # CR at the end of CORECALL_AMI_SECRET used to print the whole secret here).
        shown = "(value hidden)" if name.lower() in SECRET_HEADERS else repr(value)
        raise UnsafeValueError(f"AMI header {name} contains CR, LF or NUL: {shown}")


def check_call_id(value: object) -> str:
    """A call id: 32 lower-case hex characters (a UUID4's hex)."""
    if not isinstance(value, str) or not CALL_ID_RE.fullmatch(value):
        raise UnsafeValueError(f"call id must be 32 lower-case hex characters, got {value!r}")
    return value


def check_number(value: object, what: str) -> str:
    """A number that reaches a dial string or caller ID: ``+`` and digits (E.164) only."""
    if not is_e164(value):
        raise UnsafeValueError(f"{what} must be + and digits only (E.164), got {value!r}")
    return value  # type: ignore[return-value]


def check_dial_part(value: str, what: str) -> str:
    """A piece of ``PJSIP/<number>@<endpoint>``: PJSIP splits on ``/``, ``@`` and ``&``."""
    if any(c in value for c in "/@&,;|\r\n\0 "):
        raise UnsafeValueError(f"{what} contains a dial-string separator: {value!r}")
    return value


def check_variable(name: str, value: str) -> str:
    """One ``NAME=value`` of the Originate ``Variable`` header (split on ``,`` by Asterisk)."""
    if not _VARIABLE_RE.fullmatch(name):
        raise UnsafeValueError(f"channel variable name {name!r} is not allowed")
    if any(c in value for c in ",=\r\n\0") or not value:
        raise UnsafeValueError(f"channel variable {name} has an unsafe value {value!r}")
    return f"{name}={value}"


def _bounded_int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeValueError(f"{what} must be a whole number {low}-{high}, got {value!r}")
    return value


def action_bytes(headers: Iterable[tuple[str, str]]) -> bytes:
    """Serialise one AMI action after checking every header. Raises UnsafeValueError."""
    lines = []
    for name, value in headers:
        check_header(name, value)
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("ascii", "strict")


def originate_action_id(call_id: str) -> str:
    """The ``ActionID`` of a call's Originate; its ``OriginateResponse`` carries it back."""
    return f"{call_id}-o"


def agent_uniqueid(call_id: str) -> str:
    """The agent leg's preset unique id (``ChannelId``): Asterisk makes it the ``Linkedid``
    of every channel of the call, which is how events are correlated."""
    return f"{call_id}-a"


def originate_headers(
    *,
    call_id: str,
    agent: str,
    target: str,
    endpoint: str,
    caller_id: str,
    context: str = DEFAULT_CONTEXT,
    agent_ring_timeout: int = 30,
    target_ring_timeout: int = 45,
    agent_caller_id: str | None = None,
    confirm: str = "key",
    confirm_timeout: int = 10,
    action_id: bool = True,
) -> dict[str, str]:
    """The Originate that places one bridged call, as ordered AMI headers.

    ``agent``, ``target`` and ``caller_id`` are E.164; ``endpoint`` (the trunk's PJSIP
    endpoint) and ``context`` follow :data:`corecall_asterisk.names.NAME_RULE`;
    ``agent_ring_timeout`` (1-600 s) is how long the agent's phone rings,
    ``target_ring_timeout`` (1-3600 s) the bridge dialplan's Dial timeout.
    ``agent_caller_id`` (E.164, default ``caller_id``) is what the agent's phone shows: an
    operator-owned number, since carriers that enforce caller-ID ownership answer 403 to any
    other. ``confirm`` ``"key"`` makes the dialplan ask the agent to press 1 before it dials
    the target, waiting ``confirm_timeout`` (1-120 s) for the key; ``"none"`` dials at once.
    ``action_id`` False leaves ``ActionID`` out (for clients such as panoramisk that add
    their own).
    Raises :class:`~corecall.errors.UnsafeValueError` naming the first bad value.
    """
    check_call_id(call_id)
    agent = check_dial_part(check_number(agent, "agent phone"), "agent phone")
    target = check_number(target, "target")
    caller_id = check_number(caller_id, "caller ID")
    agent_caller_id = check_number(
        caller_id if agent_caller_id is None else agent_caller_id, "agent leg caller ID"
    )
    if confirm not in ("key", "none"):
        raise UnsafeValueError(f'confirm must be "key" or "none", got {confirm!r}')
    confirm_s = _bounded_int(confirm_timeout, "confirm timeout", 1, 120)
    endpoint = check_dial_part(check_name(endpoint, "trunk endpoint"), "endpoint")
    check_name(context, "dialplan context")
    agent_ms = _bounded_int(agent_ring_timeout, "agent ring timeout", 1, 600) * 1000
    dial_s = _bounded_int(target_ring_timeout, "target ring timeout", 1, 3600)
    variables = ",".join(
        (
            check_variable("CORECALL_CALL_ID", call_id),
            check_variable("CORECALL_TRUNK", endpoint),
            check_variable("CORECALL_CALLER_ID", caller_id),
            check_variable("CORECALL_DIAL_TIMEOUT", str(dial_s)),
            check_variable("CORECALL_CONFIRM", confirm),
            check_variable("CORECALL_CONFIRM_TIMEOUT", str(confirm_s)),
        )
    )
    headers = {"Action": "Originate"}
    if action_id:
        headers["ActionID"] = originate_action_id(call_id)
    headers.update(
        {
            "Channel": f"PJSIP/{agent}@{endpoint}",
            "Context": context,
            "Exten": target,
            "Priority": "1",
            # The agent's phone shows an operator-owned number, never the target's.
            "CallerID": agent_caller_id,
            "Timeout": str(agent_ms),
            "ChannelId": agent_uniqueid(call_id),
            "Variable": variables,
            "Async": "true",
        }
    )
    return headers


def build_originate(request: OriginateRequest, *, endpoint: str, context: str) -> bytes:
    """The Originate for ``request`` as the bytes the driver writes (see
    :func:`originate_headers`). Everything is re-checked here even though
    :class:`OriginateRequest` validated it on construction: this is the last gate before the
    socket, and data read back from the store is untrusted too."""
    # Named here so the message says which trunk is misconfigured.
    endpoint = check_name(endpoint, f"trunk {request.trunk.name!r} endpoint")
    headers = originate_headers(
        call_id=request.call_id,
        agent=request.agent_phone,
        target=request.target,
        endpoint=endpoint,
        caller_id=request.caller_id,
        context=context,
        agent_ring_timeout=request.agent_ring_timeout,
        target_ring_timeout=request.target_ring_timeout,
        agent_caller_id=request.agent_caller_id,
        confirm=request.confirm,
        confirm_timeout=request.confirm_timeout,
    )
    return action_bytes(headers.items())
