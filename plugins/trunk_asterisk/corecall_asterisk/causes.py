"""Why a call ended: Q.850 hangup causes, ``OriginateResponse`` reasons and ``DialStatus``
mapped to corecall's :class:`~corecall.domain.EndReason`.

Sources: ITU-T Q.850 (cause values); Asterisk's mapping of SIP responses to causes
(``ast_sip_hangup_sip2cause``, after RFC 3398); ``app_dial``'s ``DIALSTATUS`` values; the
OriginateResponse ``Reason`` (an ``AST_CONTROL_*`` value, not a cause); and the events
recorded against the lab in ``docs/asterisk-events.md`` (``corecall-lab-record``).

Pure functions of the values Asterisk reported; no I/O, no state.
"""

from __future__ import annotations

from corecall.domain import EndReason

#: Q.850 causes, grouped by what they mean for corecall.
BUSY_CAUSES = frozenset({17})
NO_ANSWER_CAUSES = frozenset({18, 19})
#: The far end (or its network) said no: 403/603 (21), 404 (1), 410 (22), 484 (28), ...
REJECTED_CAUSES = frozenset({1, 2, 3, 20, 21, 22, 28})
#: The trunk or the network could not carry the call: 503 (34), 500 (38), 502 (27), ...
UNAVAILABLE_CAUSES = frozenset({27, 34, 38, 41, 42, 44, 47, 58, 63, 65, 79, 88, 102, 111, 127})

#: OriginateResponse ``Reason`` (an AST_CONTROL value, not a hangup cause).
_ORIGINATE_REASONS = {
    1: (EndReason.AGENT_REJECTED, "the agent's phone hung up while ringing"),
    3: (EndReason.AGENT_NO_ANSWER, "the agent did not answer"),
    5: (EndReason.AGENT_BUSY, "the agent's phone is busy"),
    8: (EndReason.AGENT_REJECTED, "the agent's phone rejected the call (congestion)"),
}


def parse_int(text: str) -> int | None:
    """An integer header value, or None when it is empty or not a number."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def agent_leg_failure(
    cause: int | None,
    originate_reason: int | None,
    cause_text: str = "",
    tech: str = "",
    *,
    rang: bool = True,
) -> tuple[EndReason, str]:
    """Why a call ended when the agent's own phone never answered.

    ``rang``: the agent leg reported Ringing. A leg that times out without ever ringing
    never reached a phone: the trunk (provider) did not answer at all.
    """
    sip = f" (SIP {tech})" if tech else ""
    no_answer = cause in NO_ANSWER_CAUSES or (cause is None and originate_reason == 3)
    if no_answer and not rang:
        return EndReason.TRUNK_UNAVAILABLE, (
            "the trunk never answered the agent leg (no ringing before the timeout): is the "
            "provider reachable?"
        )
    if cause in BUSY_CAUSES:
        return EndReason.AGENT_BUSY, f"the agent's phone is busy{sip}"
    if cause in NO_ANSWER_CAUSES:
        return EndReason.AGENT_NO_ANSWER, "the agent did not answer"
    if cause in REJECTED_CAUSES or cause == 16:
        return EndReason.AGENT_REJECTED, f"the agent's phone rejected the call{sip}"
    if cause in UNAVAILABLE_CAUSES:
        what = cause_text or f"cause {cause}"
        return EndReason.TRUNK_UNAVAILABLE, f"the trunk could not reach the agent: {what}{sip}"
    if originate_reason in _ORIGINATE_REASONS:
        return _ORIGINATE_REASONS[originate_reason]
    detail = "Asterisk could not place the agent leg"
    if cause is not None:
        detail += f" (cause {cause}{' ' + cause_text if cause_text else ''}){sip}"
    elif originate_reason is not None:
        detail += f" (OriginateResponse reason {originate_reason})"
    return EndReason.TRUNK_UNAVAILABLE, detail


def end_after_answer(
    dial_status: str, cause: int | None, dialplan_reason: str = "ok", target_cause: str = ""
) -> tuple[EndReason, str]:
    """Why a call ended once the agent had answered (the bridge dialplan ran)."""
    if dialplan_reason == "not-confirmed":
        return EndReason.AGENT_NOT_CONFIRMED, (
            "the agent's phone answered but nobody pressed 1 (no key in time, a wrong key "
            "twice, or a hang-up during the prompt): voicemail?"
        )
    if dialplan_reason and dialplan_reason != "ok":
        detail = f"the bridge dialplan refused the call ({dialplan_reason})"
        if dialplan_reason in ("invalid-target", "no-such-target"):
            return EndReason.TARGET_UNREACHABLE, detail
        return EndReason.TRUNK_UNAVAILABLE, detail
    why = f" ({target_cause})" if target_cause and "200 OK" not in target_cause else ""
    if dial_status == "ANSWER":
        return EndReason.COMPLETED, "call completed"
    if dial_status in ("CANCEL", ""):
        return EndReason.CANCELLED, "the agent hung up before the target answered"
    if dial_status == "BUSY" or cause in BUSY_CAUSES:
        return EndReason.TARGET_BUSY, f"the target is busy{why}"
    if dial_status == "NOANSWER" and (cause is None or cause in NO_ANSWER_CAUSES | {0, 16}):
        return EndReason.TARGET_NO_ANSWER, "the target did not answer"
    if dial_status in ("NOANSWER", "CONGESTION", "CHANUNAVAIL"):
        return EndReason.TARGET_UNREACHABLE, (
            f"the target could not be reached: {dial_status.lower()}, cause {cause}{why}"
        )
    return EndReason.UNKNOWN, f"unexpected dial status {dial_status!r} (cause {cause})"
