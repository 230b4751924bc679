"""Render the Asterisk configuration corecall needs: ``pjsip.conf``, ``extensions.conf`` and
``manager.conf``.

Pure functions: they take plain values, return the file text, and do no I/O. Names
(endpoints, contexts, the AMI user) follow :mod:`corecall_asterisk.names`, the rule the
configuration and the driver apply too; a bad value raises ``ValueError`` (names:
:class:`~corecall.errors.UnsafeValueError`, a ``ValueError``). The files
committed under ``asterisk/`` are exactly :func:`render_defaults` (a test checks it), and the
lab (``corecall_lab``, in ``asterisk/``) renders its own copies with lab addresses.

API
---
``render_pjsip(trunks, bind="127.0.0.1:5060", *, inbound_context=..., media_address=None)``
    One PJSIP endpoint per route trunk. ``trunks`` is a list of mappings with ``name`` (the
    endpoint), ``provider_host`` (IPv4 address of the provider) and optional
    ``provider_port`` (default 5060). The provider is identified by source IP only: no
    registration, no password, no username matching. Calls arriving from a provider land in
    ``inbound_context``, a dead end.

``render_extensions(context="corecall-bridge", *, dial_timeout_default=45, ...)``
    The bridge context entered by the AMI ``Originate`` once the agent answered: it checks every
    variable, sets the target leg's caller ID to the route's number, dials the target over the
    agent's trunk and leaves a ``UserEvent(CorecallEnd)`` when the agent leg ends.

``render_manager(username="corecall", secret=..., permit=..., bind=..., port=...)``
    A dedicated AMI user with least privilege and an event filter that lets through only the
    events the driver uses (:data:`AMI_EVENTS`).

The bridge context is entered by the Originate that
:func:`corecall_asterisk.actions.originate_headers` builds (its docstring shows it).
``<call id>`` is 32 lower-case hex characters. Every AMI event of both legs carries
``Linkedid: <call id>-a`` (the agent leg's preset unique id), which is how events are
correlated. See ``docs/asterisk-events.md`` for the events each outcome produces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from corecall_asterisk.actions import DEFAULT_CONTEXT
from corecall_asterisk.names import check_name, ipv4_problem

__all__ = [
    "AMI_EVENTS",
    "AMI_READ",
    "AMI_WRITE",
    "DEFAULT_TRUNKS",
    "END_EVENT",
    "render_defaults",
    "render_extensions",
    "render_manager",
    "render_pjsip",
]

#: Trunks rendered into the committed ``asterisk/pjsip.conf`` (documentation addresses,
#: RFC 5737): the operator replaces them with the provider's signalling addresses.
DEFAULT_TRUNKS: tuple[dict[str, Any], ...] = (
    {"name": "corecall-main", "provider_host": "203.0.113.10", "provider_port": 5060},
    {"name": "corecall-dev", "provider_host": "203.0.113.20", "provider_port": 5060},
)

#: Name of the UserEvent the bridge dialplan emits when the agent leg ends.
END_EVENT = "CorecallEnd"
#: Name of the UserEvent the bridge dialplan emits at the confirmation step
#: (``Step: prompt`` when it starts asking for 1, ``Step: confirmed`` when the 1 came).
CONFIRM_EVENT = "CorecallConfirm"

#: The confirmation prompt, from Asterisk's own core sound files (asterisk-core-sounds-en):
#: "calling" + the target's digits (digits/0..9) + "if this is correct, press" + "1".
#: After a wrong key "invalid" comes first; "goodbye" before hanging up unconfirmed.
PROMPT_SOUNDS = {
    "intro": "calling",
    "question": "if-correct-press",
    "key": "digits/1",
    "wrong_key": "invalid",
    "goodbye": "goodbye",
}

#: The only events the AMI user receives (manager.conf event filter).
AMI_EVENTS: tuple[str, ...] = (
    "FullyBooted",
    "Shutdown",
    "OriginateResponse",
    "Newchannel",
    "Newstate",
    "DialBegin",
    "DialEnd",
    # DialState carries RINGING and PROGRESS (183 Session Progress: early media). Mobile
    # networks often send only 183, never 180: without it an unanswered agent phone looks
    # like a dead line.
    "DialState",
    "BridgeEnter",
    "BridgeLeave",
    "Hangup",
    "UserEvent",
)

#: Read (event) classes: ``call`` carries channel, dial, bridge and OriginateResponse events,
#: ``user`` carries UserEvent, ``system`` carries FullyBooted/Shutdown.
AMI_READ: tuple[str, ...] = ("call", "user", "system")

#: Write (action) classes: ``originate`` for Originate, ``call`` for Hangup and Status (list live
#: channels after a reconnect). Ping, Login, Logoff and Events need no class.
AMI_WRITE: tuple[str, ...] = ("originate", "call")

_SECRET_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{12,128}$")


def _check_ipv4(value: str, what: str) -> str:
    if ipv4_problem(value) is not None:
        raise ValueError(f"{what} must be an IPv4 address, got {value!r:.60}")
    return value


def _check_port(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{what} must be a port number 1-65535, got {value!r}")
    return value


def _check_hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{what} must look like 127.0.0.1:5060, got {value!r}")
    return _check_ipv4(host, what), _check_port(int(port), what)


def _check_mask(value: str, what: str) -> str:
    """``a.b.c.d/e.f.g.h`` or ``a.b.c.d/nn`` as manager.conf's permit/deny accept."""
    addr, sep, mask = value.partition("/")
    _check_ipv4(addr, what)
    if sep and not (mask.isdigit() and int(mask) <= 32) and ipv4_problem(mask) is not None:
        raise ValueError(f"{what} must be address/mask, got {value!r}")
    return value


# --------------------------------------------------------------------------- pjsip.conf


def render_pjsip(
    trunks: Iterable[Mapping[str, Any]] = DEFAULT_TRUNKS,
    bind: str = "127.0.0.1:5060",
    *,
    inbound_context: str = "corecall-inbound",
    media_address: str | None = None,
) -> str:
    """Render ``pjsip.conf``: one UDP transport and one IP-authenticated trunk per route.

    ``media_address`` (an IPv4 address) pins RTP sockets to that address; the lab uses it so
    nothing listens beyond loopback. Leave it ``None`` on a real server.
    """
    bind_host, bind_port = _check_hostport(bind, "bind")
    check_name(inbound_context, "inbound_context")
    if media_address is not None:
        _check_ipv4(media_address, "media_address")
    trunks = list(trunks)
    if not trunks:
        raise ValueError("at least one trunk is needed")
    names: set[str] = set()
    hosts: set[str] = set()
    out: list[str] = [
        "; pjsip.conf for corecall — generated by corecall_asterisk.render.render_pjsip",
        "; (Asterisk 18+ with res_pjsip). One endpoint per route trunk; each provider is",
        "; recognised by its source IP address only. There is no registration and no",
        "; password: the provider must whitelist this server's public address instead.",
        ";",
        "; The AMI driver dials PJSIP/<+E164>@<endpoint>, so the endpoint names below must match",
        "; the trunk names configured for corecall's routes.",
        "",
        "[global]",
        "type=global",
        "; Identify peers by source IP only. Never by the From user: an unauthenticated",
        "; endpoint matched by username would let anyone on the internet claim to be the trunk.",
        "endpoint_identifier_order=ip",
        "user_agent=corecall",
        "",
        "[corecall-udp]",
        "type=transport",
        "protocol=udp",
        "; The address the providers send to and receive from. On a real server use the",
        "; address facing the providers (e.g. 198.51.100.5:5060); keep SIP off other interfaces.",
        f"bind={bind_host}:{bind_port}",
        "",
    ]
    for trunk in trunks:
        name = check_name(trunk["name"], "trunk name")
        host = _check_ipv4(trunk["provider_host"], f"provider_host of {name}")
        port = _check_port(trunk.get("provider_port", 5060), f"provider_port of {name}")
        if name in names:
            raise ValueError(f"duplicate trunk name {name!r}")
        if host in hosts:
            raise ValueError(
                f"two trunks share provider_host {host}: IP identification could not tell "
                "them apart"
            )
        names.add(name)
        hosts.add(host)
        out += [
            f"; ---- trunk {name}: provider at {host}:{port}",
            f"[{name}]",
            "type=endpoint",
            "transport=corecall-udp",
            "; Anything the provider sends us lands in a dead-end context: corecall only places",
            "; calls, it never takes them.",
            f"context={inbound_context}",
            "disallow=all",
            "allow=ulaw,alaw",
            "; Keep media anchored in Asterisk: no re-INVITEs that would point the two legs",
            "; (both at the same provider) at each other.",
            "direct_media=no",
            "; Only the provider's IP can match this endpoint (see the identify section).",
            "identify_by=ip",
            "; The provider must not be able to redirect or transfer a call somewhere else.",
            "allow_transfer=no",
            "allow_subscribe=no",
            "; The caller ID the dialplan sets is sent in From; nothing is trusted from the",
            "; provider and no identity headers are passed on.",
            "trust_id_inbound=no",
            "trust_id_outbound=no",
            "send_pai=no",
            "send_rpid=no",
            "; RTP from the provider may come from a different port than offered (NAT).",
            "rtp_symmetric=yes",
        ]
        if media_address is not None:
            out += [
                f"media_address={media_address}",
                "bind_rtp_to_media_address=yes",
            ]
        out += [
            f"aors={name}",
            "",
            f"[{name}]",
            "type=aor",
            "; Where calls for this trunk go. No failover: one provider address per trunk.",
            f"contact=sip:{host}:{port}",
            "; OPTIONS pings are off; set e.g. qualify_frequency=60 if the provider answers them",
            "; and you want an unreachable provider to fail fast as CHANUNAVAIL.",
            "qualify_frequency=0",
            "",
            f"[{name}]",
            "type=identify",
            f"endpoint={name}",
            "; Requests from this address (and only this one) are this trunk.",
            f"match={host}",
            "",
        ]
    return "\n".join(out)


# ---------------------------------------------------------------------- extensions.conf


def render_extensions(
    context: str = DEFAULT_CONTEXT,
    *,
    dial_timeout_default: int = 45,
    dial_timeout_max: int = 300,
    inbound_context: str = "corecall-inbound",
    end_event: str = END_EVENT,
    confirm_timeout_default: int = 10,
) -> str:
    """Render ``extensions.conf`` with the bridge context, its hangup handler and the inbound
    dead end.

    Once the agent's phone answers and every variable checked out, the confirmation step
    (unless ``CORECALL_CONFIRM=none``): a ``UserEvent: CorecallConfirm`` with ``Step:
    prompt``, then ``Read()`` on the agent's channel plays :data:`PROMPT_SOUNDS` with the
    target's digits and waits ``CORECALL_CONFIRM_TIMEOUT`` seconds (default
    ``confirm_timeout_default``; 1-120) for one key. Only ``1`` dials (``Step: confirmed``);
    a wrong key gets the prompt once more; no key, a second wrong key, or a hang-up during the
    prompt ends the call with ``Reason: not-confirmed``. Keys are read on the agent's
    channel only and before the target exists, so the called party's keys are never read.

    The hangup handler context is ``<context>-end``. It emits::

        Event: UserEvent
        UserEvent: CorecallEnd
        Channel/Uniqueid/Linkedid/...   (the agent leg's snapshot)
        CallId: <call id>               (filtered: hex only)
        Reason: ok | not-confirmed | invalid-call-id | invalid-trunk | trunk-mismatch
                | invalid-caller-id | invalid-target | no-such-target
        DialStatus: ANSWER | BUSY | NOANSWER | CONGESTION | CHANUNAVAIL | CANCEL | ... | (empty)
        HangupCause: <Q.850 cause of the agent leg>
        DialedTime: <s from Dial start> / AnsweredTime: <s the target was connected>
        HangupSource: <channel that started the hangup>
    """
    check_name(context, "context")
    check_name(inbound_context, "inbound_context")
    if not re.match(r"^[A-Za-z][A-Za-z0-9]{0,39}$", end_event):
        raise ValueError(f"end_event must be alphanumeric, got {end_event!r}")
    for value, what in (
        (dial_timeout_default, "dial_timeout_default"),
        (dial_timeout_max, "dial_timeout_max"),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3600:
            raise ValueError(f"{what} must be 1-3600 seconds, got {value!r}")
    if dial_timeout_default > dial_timeout_max:
        raise ValueError("dial_timeout_default must not exceed dial_timeout_max")
    if (
        isinstance(confirm_timeout_default, bool)
        or not isinstance(confirm_timeout_default, int)
        or not 1 <= confirm_timeout_default <= 120
    ):
        raise ValueError(
            f"confirm_timeout_default must be 1-120 seconds, got {confirm_timeout_default!r}"
        )
    sounds = PROMPT_SOUNDS

    def confirm_event(step: str) -> str:
        return f"UserEvent({CONFIRM_EVENT},CallId: ${{CC_CALL_ID}},Step: {step})"

    end = f"{context}-end"
    len_ = "${{LEN(${{{}}})}}".format  # ${LEN(${VAR})}
    refuse_target = (
        f"$[{len_('CC_TARGET')} != {len_('EXTEN')} | {len_('CC_TARGET')} < 8"
        f" | {len_('CC_TARGET')} > 16]"
    )
    user_event = ",".join(
        [
            f"UserEvent({end_event}",
            "CallId: ${CC_CALL_ID}",
            "Reason: ${CC_REASON}",
            "DialStatus: ${DIALSTATUS}",
            "HangupCause: ${HANGUPCAUSE}",
            "DialedTime: ${DIALEDTIME}",
            "AnsweredTime: ${ANSWEREDTIME}",
            "HangupSource: ${FILTER(-A-Za-z0-9/@._+,${CHANNEL(hangupsource)})})",
        ]
    )
    lines = [
        "; extensions.conf for corecall — generated by corecall_asterisk.render.render_extensions",
        "; (Asterisk 18+). Only two things happen here: the bridge context, entered by",
        "; corecall's AMI Originate once the agent's phone answered, and a dead end for anything",
        "; arriving from the trunks. Keep other contexts off this server: the AMI user may",
        "; Originate into any context that exists.",
        "",
        "[general]",
        "static=yes",
        '; "dialplan save" must never rewrite this file.',
        "writeprotect=yes",
        "autofallthrough=yes",
        "clearglobalvars=no",
        "",
        "[globals]",
        "",
        f"; ---------------------------------------------------------------- {context}",
        "; The AMI driver originates (Async) to the agent's phone:",
        f";   Channel: PJSIP/<agent +E164>@<trunk>   Context: {context}   Exten: <target +E164>",
        ";   Priority: 1   CallerID: <route's +E164>   ChannelId: <call id>-a",
        ";   Variable: CORECALL_CALL_ID=<32 hex>,CORECALL_TRUNK=<trunk>,"
        "CORECALL_CALLER_ID=<+E164>,",
        ";             CORECALL_DIAL_TIMEOUT=<seconds>,CORECALL_CONFIRM=<key|none>,"
        "CORECALL_CONFIRM_TIMEOUT=<seconds>",
        "; When the agent answers, this runs on the agent's channel: it checks every value, asks",
        "; the agent to press 1 (the target's digits are read out first), and only then dials",
        "; the target over the same trunk. Every AMI event of both legs carries",
        "; Linkedid: <call id>-a.",
        ";",
        "; Defence in depth: the driver already validated everything, but each value is passed",
        "; through FILTER() and the call is refused (not repaired) if filtering changed anything:",
        '; only digits and a leading + ever reach a dial string. The pattern\'s "." matches ANY',
        '; characters ("+1555abc" matches _+X.), so the pattern alone does not guarantee digits;',
        "; the FILTER check does. An Exten that matches nothing here is refused by Originate",
        '; itself ("Extension does not exist"), before anything is dialed.',
        "",
        f"[{context}]",
        f"exten => _+X.,1,Set(CHANNEL(hangup_handler_push)={end},s,1)",
        " same => n,Set(CC_REASON=ok)",
        " same => n,Set(CC_CALL_ID=${FILTER(0-9a-f,${CORECALL_CALL_ID})})",
        f" same => n,GotoIf($[{len_('CC_CALL_ID')} != 32 | {len_('CORECALL_CALL_ID')} != 32]"
        "?refuse-call-id)",
        " same => n,Set(CC_TRUNK=${FILTER(a-z0-9-,${CORECALL_TRUNK})})",
        f" same => n,GotoIf($[{len_('CC_TRUNK')} = 0 | {len_('CC_TRUNK')} != "
        f"{len_('CORECALL_TRUNK')}]?refuse-trunk)",
        " ; The target goes out over the trunk the agent leg used: no failover, no mix-ups.",
        ' same => n,GotoIf($["${CC_TRUNK}" != "${FILTER(a-z0-9-,${CHANNEL(endpoint)})}"]'
        "?refuse-mismatch)",
        " same => n,Set(CC_CID=${FILTER(+0-9,${CORECALL_CALLER_ID})})",
        f" same => n,GotoIf($[{len_('CC_CID')} < 2 | {len_('CC_CID')} != "
        f"{len_('CORECALL_CALLER_ID')}]?refuse-cid)",
        " same => n,Set(CC_TARGET=${FILTER(+0-9,${EXTEN})})",
        " ; E.164: + and 7 to 15 digits.",
        f" same => n,GotoIf({refuse_target}?refuse-target)",
        " same => n,Set(CC_TIMEOUT=${FILTER(0-9,${CORECALL_DIAL_TIMEOUT})})",
        f" same => n,Set(CC_TIMEOUT=${{IF($[{len_('CC_TIMEOUT')} = 0 | {len_('CC_TIMEOUT')} > 4]"
        f"?{dial_timeout_default}:${{CC_TIMEOUT}})}})",
        f" same => n,Set(CC_TIMEOUT=${{IF($[${{CC_TIMEOUT}} < 1 | ${{CC_TIMEOUT}} > "
        f"{dial_timeout_max}]?{dial_timeout_default}:${{CC_TIMEOUT}})}})",
        " ; ---- confirmation: the agent presses 1, so an agent's voicemail that answered is",
        " ; never bridged to the customer. Only this channel's keys are read (the agent's leg),",
        " ; and before the target is dialed at all.",
        ' same => n,GotoIf($["${FILTER(a-z,${CORECALL_CONFIRM})}" = "none"]?dial)',
        " same => n,Set(CC_WAIT=${FILTER(0-9,${CORECALL_CONFIRM_TIMEOUT})})",
        f" same => n,Set(CC_WAIT=${{IF($[{len_('CC_WAIT')} = 0 | {len_('CC_WAIT')} > 3]"
        f"?{confirm_timeout_default}:${{CC_WAIT}})}})",
        f" same => n,Set(CC_WAIT=${{IF($[${{CC_WAIT}} < 1 | ${{CC_WAIT}} > 120]"
        f"?{confirm_timeout_default}:${{CC_WAIT}})}})",
        ' ; "calling", the target\'s digits one by one (after the +), "if this is correct,',
        ' ; press 1". CC_TARGET is + and digits only (checked above).',
        f" same => n,Set(CC_PROMPT={sounds['intro']})",
        " same => n,Set(CC_I=1)",
        f" same => n,While($[${{CC_I}} < {len_('CC_TARGET')}])",
        " same => n,Set(CC_PROMPT=${CC_PROMPT}&digits/${CC_TARGET:${CC_I}:1})",
        " same => n,Set(CC_I=$[${CC_I} + 1])",
        " same => n,EndWhile()",
        f" same => n,Set(CC_PROMPT=${{CC_PROMPT}}&{sounds['question']}&{sounds['key']})",
        " ; A hang-up from here on (a voicemail box giving up, the agent) is not-confirmed.",
        " same => n,Set(CC_REASON=not-confirmed)",
        f" same => n,{confirm_event('prompt')}",
        " same => n,Read(CC_KEY,${CC_PROMPT},1,,1,${CC_WAIT})",
        ' same => n,GotoIf($["${CC_KEY}" = "1"]?confirmed)',
        ' same => n,GotoIf($["${CC_KEY}" = ""]?not-confirmed)',
        " ; A wrong key: say so and ask once more.",
        f" same => n,Read(CC_KEY,{sounds['wrong_key']}&${{CC_PROMPT}},1,,1,${{CC_WAIT}})",
        ' same => n,GotoIf($["${CC_KEY}" = "1"]?confirmed:not-confirmed)',
        " same => n(confirmed),Set(CC_REASON=ok)",
        f" same => n,{confirm_event('confirmed')}",
        " ; The target sees the route's operator-owned number (so did the agent leg: Originate",
        " ; CallerID). Clear the name so nothing else leaks into From.",
        " same => n(dial),Set(CALLERID(name)=)",
        " same => n,Set(CALLERID(num)=${CC_CID})",
        " same => n,Dial(PJSIP/${CC_TARGET}@${CC_TRUNK},${CC_TIMEOUT})",
        " same => n,Hangup()",
        " same => n(not-confirmed),Set(CC_REASON=not-confirmed)",
        f" same => n,Playback({sounds['goodbye']})",
        " same => n,Hangup(16)",
        " same => n(refuse-call-id),Set(CC_REASON=invalid-call-id)",
        " same => n,Hangup(21)",
        " same => n(refuse-trunk),Set(CC_REASON=invalid-trunk)",
        " same => n,Hangup(21)",
        " same => n(refuse-mismatch),Set(CC_REASON=trunk-mismatch)",
        " same => n,Hangup(21)",
        " same => n(refuse-cid),Set(CC_REASON=invalid-caller-id)",
        " same => n,Hangup(21)",
        " same => n(refuse-target),Set(CC_REASON=invalid-target)",
        " same => n,Hangup(21)",
        "",
        "; Safety net for anything that reaches this context without matching _+X.",
        f"exten => i,1,Set(CHANNEL(hangup_handler_push)={end},s,1)",
        " same => n,Set(CC_CALL_ID=${FILTER(0-9a-f,${CORECALL_CALL_ID})})",
        " same => n,Set(CC_REASON=no-such-target)",
        " same => n,Hangup(21)",
        "",
        f"; ---------------------------------------------------------------- {end}",
        "; Hangup handler of the agent leg, pushed by the first priority above: it exists only",
        "; once the agent answered (before that, OriginateResponse and Hangup tell what",
        "; happened). It records how the call ended in one AMI event (class user):",
        f";   Event: UserEvent, UserEvent: {end_event}, the agent channel's fields (Uniqueid,",
        ";   Linkedid...), CallId, Reason (ok, not-confirmed when nobody pressed 1, or why the",
        ";   dialplan refused), DialStatus (Dial's",
        ";   DIALSTATUS, empty when Dial never ran), HangupCause (Q.850, agent leg),",
        ";   DialedTime/AnsweredTime (seconds, only when the target answered), HangupSource.",
        "",
        f"[{end}]",
        f"exten => s,1,{user_event}",
        " same => n,Return()",
        "",
        f"; ---------------------------------------------------------------- {inbound_context}",
        "; Calls from the providers land here. The context is empty on purpose: PJSIP answers",
        "; 404 Not Found before any channel or dialplan exists.",
        "",
        f"[{inbound_context}]",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------- manager.conf


def render_manager(
    username: str = "corecall",
    secret: str = "change-me-to-a-long-random-secret",
    *,
    permit: str = "127.0.0.1/255.255.255.255",
    bind: str = "127.0.0.1",
    port: int = 5038,
    events: Iterable[str] = AMI_EVENTS,
) -> str:
    """Render ``manager.conf`` with one least-privilege AMI user for corecall.

    The event filter uses the legacy (regex) syntax, understood by every Asterisk from 11
    to 22: one regex anchored on the ``Event:`` header, so ``Hangup`` does not also let
    ``HangupRequest`` or ``HangupHandlerRun`` through.
    """
    check_name(username, "username")
    if not isinstance(secret, str) or not _SECRET_RE.match(secret):
        raise ValueError("secret must be 12-128 characters of A-Z a-z 0-9 . _ ~ + / = -")
    _check_mask(permit, "permit")
    _check_ipv4(bind, "bind")
    _check_port(port, "port")
    events = list(events)
    for name in events:
        if not re.match(r"^[A-Za-z]+$", name):
            raise ValueError(f"event names are letters only, got {name!r}")
    event_re = "|".join(events)
    read = ",".join(AMI_READ)
    write = ",".join(AMI_WRITE)
    return f"""\
; manager.conf for corecall — generated by corecall_asterisk.render.render_manager
; (Asterisk 18+). One dedicated AMI user for the corecall bot, nothing else.

[general]
enabled=yes
; AMI is plain text with the secret in clear: listen on loopback only and run the bot on the
; same host (or put an encrypted tunnel in front).
bindaddr={bind}
port={port}
webenabled=no
; Do not announce logins on the console.
displayconnects=no

[{username}]
secret={secret}
; Only the bot's own address may log in.
deny=0.0.0.0/0.0.0.0
permit={permit}
; Event classes received:
;   call   - Newchannel, Newstate, DialBegin, DialEnd, BridgeEnter/Leave, Hangup,
;            OriginateResponse (the Async Originate result)
;   user   - UserEvent ({END_EVENT}, emitted by the bridge dialplan)
;   system - FullyBooted (sent at login, and again once a restarted Asterisk is up) and
;            Shutdown (Asterisk is stopping). Nothing else of class system passes the filter.
read={read}
; Action classes allowed:
;   originate - Originate (with Context/Exten only: never Application/Data, which would need
;               system privileges for System(), and this user does not have them)
;   call      - Hangup (needs system OR call; call is the smaller) and Status (needs system,
;               call OR reporting), which lists live channels with their Linkedid after a
;               reconnect. call also allows Redirect/Setvar/Getvar/Atxfer on live channels;
;               with only corecall's contexts on this server and live_dangerously=no (the
;               default) that cannot reach a shell or a file.
; Ping, Login, Logoff, Events need no class. Not granted: system, command, config, reporting,
; agent, dtmf: no CLI commands, no file access, no reload/shutdown, no astdb or dialplan dumps.
write={write}
; Deliver only the events corecall uses. Legacy filter syntax (Asterisk 11-22): a regex on
; the whole event; [[:space:]] anchors the name so e.g. HangupRequest does not match Hangup.
; VarSet, Newexten, NewCallerid, NewConnectedLine, Cdr, Cel, RTCP... are all dropped.
eventfilter=Event: ({event_re})[[:space:]]
; Drop the session if the bot stops reading for 2 s instead of blocking Asterisk.
writetimeout=2000
"""


def render_defaults() -> dict[str, str]:
    """The committed ``asterisk/*.conf`` files, keyed by file name."""
    return {
        "pjsip.conf": render_pjsip(),
        "extensions.conf": render_extensions(),
        "manager.conf": render_manager(),
    }
