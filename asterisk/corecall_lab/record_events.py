#!/usr/bin/env python3
"""Record what the corecall AMI user really receives from Asterisk, scenario by scenario.

Starts its own lab instance (see ``corecall_lab.lab``), places each scenario's call with the exact
Originate the AMI driver uses, and writes:

* ``docs/asterisk-events.md`` — for each outcome, the filtered AMI events with their key
  fields (``--docs``);
* ``bench/data/lab-events.ami`` — the raw bytes received on the AMI socket after login while
  completed calls are placed in bursts, for a parser benchmark (``--stream``).

Run as root on Debian: ``.venv/bin/corecall-lab-record`` (both outputs), or
``--only docs`` / ``--only stream``. Takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from corecall_lab import lab as labmod

REPO = labmod.REPO
AGENT = "+15550001111"  # answers at once, hangs up after 1 s
TARGET = "+15557654321"  # answers at once, hangs up after 1 s
CALLER_ID = "+12125550100"  # owned on corecall-main: the carriers refuse any other From


def number(last4: str, base: str = "+1555765") -> str:
    return base + last4


# ------------------------------------------------------------------------- raw AMI client


class RawAMI:
    """A minimal AMI client that keeps every byte and every parsed message."""

    def __init__(self) -> None:
        self.raw = bytearray()
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._cond = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self.t0 = time.monotonic()

    async def connect(self, host: str, port: int, user: str, secret: str) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        await self._reader.readline()  # banner
        self._writer.write(
            f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: on\r\n\r\n".encode()
        )
        await self._writer.drain()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await asyncio.wait_for(self._reader.read(1), 5)
        if b"Success" not in buf:
            raise RuntimeError(f"AMI login failed: {buf!r}")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader
        pending = b""
        while True:
            chunk = await self._reader.read(65536)
            if not chunk:
                break
            self.raw += chunk
            pending += chunk
            *blocks, pending = pending.split(b"\r\n\r\n")
            now = time.monotonic()
            async with self._cond:
                for block in blocks:
                    msg: dict[str, str] = {}
                    for line in block.decode(errors="replace").split("\r\n"):
                        key, sep, value = line.partition(": ")
                        if sep and key not in msg:
                            msg[key] = value
                    if msg:
                        self.messages.append((now, msg))
                self._cond.notify_all()

    async def send(self, action: dict[str, str]) -> dict[str, str]:
        """Send an action and return its Response message."""
        assert self._writer
        self._seq += 1
        action_id = action.setdefault("ActionID", f"rec-{self._seq}")
        text = "".join(f"{k}: {v}\r\n" for k, v in action.items()) + "\r\n"
        self._writer.write(text.encode())
        await self._writer.drain()
        return await self.wait_for(
            lambda m: "Response" in m and "Event" not in m and m.get("ActionID") == action_id, 10
        )

    async def wait_for(
        self, pred: Callable[[dict[str, str]], bool], timeout: float, start: int = 0
    ) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        async with self._cond:
            while True:
                for _, msg in self.messages[start:]:
                    if pred(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("AMI message not seen")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), remaining)

    async def close(self) -> None:
        if self._writer:
            with contextlib.suppress(Exception):
                self._writer.write(b"Action: Logoff\r\n\r\n")
                await self._writer.drain()
            self._writer.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def belongs(msg: dict[str, str], call_id: str, action_id: str) -> bool:
    linked = f"{call_id}-a"
    return (
        msg.get("Linkedid") == linked
        or msg.get("DestLinkedid") == linked
        or (msg.get("Event") == "OriginateResponse" and msg.get("ActionID") == action_id)
        or msg.get("CallId") == call_id
    )


# ----------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    key: str
    title: str
    agent: str
    target: str
    note: str = ""
    trunk: str = "corecall-main"
    agent_ring_timeout: int = 30  # seconds
    dial_timeout: int = 10
    exten: str | None = None
    variables: str | None = None
    confirm: str = "key"
    confirm_timeout: int = 10
    during: Callable[[RawAMI, str, int], Awaitable[None]] | None = None
    before: Callable[[labmod.Lab], None] | None = None
    after: Callable[[labmod.Lab], None] | None = None
    result: dict = field(default_factory=dict)


async def _hangup_agent_when(ami: RawAMI, call_id: str, start: int, pred) -> None:
    await ami.wait_for(pred, 15, start)
    await asyncio.sleep(0.2)
    resp = await ami.send({"Action": "Hangup", "Channel": f"{call_id}-a", "Cause": "16"})
    ami.messages.append((time.monotonic(), {"_Action": "Hangup (AMI)", **resp}))


def hangup_while_target_rings(ami: RawAMI, call_id: str, start: int) -> Awaitable[None]:
    return _hangup_agent_when(
        ami,
        call_id,
        start,
        lambda m: (
            m.get("Event") == "Newstate"
            and m.get("Linkedid") == f"{call_id}-a"
            and m.get("Uniqueid") != f"{call_id}-a"
            and m.get("ChannelStateDesc") == "Ringing"
        ),
    )


def hangup_when_bridged(ami: RawAMI, call_id: str, start: int) -> Awaitable[None]:
    return _hangup_agent_when(
        ami,
        call_id,
        start,
        lambda m: (
            m.get("Event") == "BridgeEnter"
            and m.get("Linkedid") == f"{call_id}-a"
            and m.get("BridgeNumChannels") == "2"
        ),
    )


SCENARIOS = [
    Scenario(
        "ok-target-hangs-up",
        "Agent answers, target answers, target hangs up",
        number("0999", "+1555000"),
        TARGET,
        "Agent holds; the target's carrier sends BYE 1 s after answering.",
    ),
    Scenario(
        "ok-agent-hangs-up",
        "Agent answers, target answers, agent hangs up",
        AGENT,
        number("0999"),
        "The agent's carrier sends BYE 1 s after answering; the target holds.",
    ),
    Scenario(
        "agent-answers-late",
        "Agent rings 2 s, answers, hangs up 1 s later; the target holds",
        number("0202", "+1555000"),
        number("0999"),
    ),
    Scenario(
        "target-answers-late",
        "Target rings 2 s, answers, hangs up 1 s later",
        number("0999", "+1555000"),
        number("0202"),
    ),
    Scenario(
        "agent-busy", "Agent busy (486)", number("0486", "+1555000"), TARGET, "Target never dialed."
    ),
    Scenario(
        "agent-no-answer",
        "Agent does not answer (Originate Timeout 3000 ms)",
        number("0408", "+1555000"),
        TARGET,
        "The agent's phone rings until the Originate Timeout; Asterisk CANCELs.",
        agent_ring_timeout=3,
    ),
    Scenario("agent-403", "Agent leg rejected 403", number("0403", "+1555000"), TARGET),
    Scenario("agent-503", "Agent leg rejected 503", number("0503", "+1555000"), TARGET),
    Scenario("target-busy", "Target busy (486)", number("0999", "+1555000"), number("0486")),
    Scenario(
        "target-no-answer",
        "Target does not answer (CORECALL_DIAL_TIMEOUT=2)",
        number("0999", "+1555000"),
        number("0408"),
        dial_timeout=2,
    ),
    Scenario("target-403", "Target rejected 403", number("0999", "+1555000"), number("0403")),
    Scenario("target-503", "Target rejected 503", number("0999", "+1555000"), number("0503")),
    Scenario(
        "agent-hangup-target-ringing",
        "AMI Hangup of the agent leg while the target rings",
        number("0999", "+1555000"),
        number("0408"),
        "`Action: Hangup` / `Channel: <call id>-a` (a Uniqueid works as Channel) once the target "
        "leg reports Ringing.",
        during=hangup_while_target_rings,
    ),
    Scenario(
        "ami-hangup-connected",
        "AMI Hangup of a connected call",
        number("0999", "+1555000"),
        number("0999"),
        "Both legs hold; `Action: Hangup` / `Channel: <call id>-a` once both are bridged.",
        during=hangup_when_bridged,
    ),
    Scenario(
        "agent-early-media-no-answer",
        "Agent's network sends 183 with early media, never 180, never answers (Timeout 3000 ms)",
        number("0183", "+1555000"),
        TARGET,
        "No Newstate Ringing: only DialState PROGRESS says the phone was reached.",
        agent_ring_timeout=3,
    ),
    Scenario(
        "agent-early-media-answers",
        "Agent's network sends 183 with early media, answers 2 s later, presses 1",
        number("0184", "+1555000"),
        TARGET,
    ),
    Scenario(
        "target-early-media",
        "Target's network sends 183 with early media and never answers (CORECALL_DIAL_TIMEOUT=2)",
        number("0999", "+1555000"),
        number("0183"),
        dial_timeout=2,
    ),
    Scenario(
        "agent-voicemail",
        "Agent's voicemail answers and never presses 1 (CORECALL_CONFIRM_TIMEOUT=1)",
        number("0777", "+1555000"),
        TARGET,
        "The prompt says the target's digits and waits; no key: not-confirmed, the target is "
        "never dialed.",
        confirm_timeout=1,
    ),
    Scenario(
        "agent-wrong-key",
        "Agent presses 2, hears the prompt again, presses 3",
        number("0778", "+1555000"),
        TARGET,
        "Two wrong keys: not-confirmed, the target is never dialed.",
    ),
    Scenario(
        "confirm-none",
        "CORECALL_CONFIRM=none: the target is dialed as soon as the agent answers",
        number("0999", "+1555000"),
        TARGET,
        confirm="none",
    ),
    Scenario(
        "unknown-endpoint",
        "Unknown endpoint (trunk not in pjsip.conf)",
        AGENT,
        TARGET,
        "Channel: PJSIP/<agent>@corecall-nope.",
        trunk="corecall-nope",
    ),
    Scenario(
        "invalid-caller-id",
        "Tampered variable (caller ID with a letter): refused by the dialplan",
        number("0999", "+1555000"),
        TARGET,
        "CORECALL_CALLER_ID=+1212555010a. The agent leg is answered, the target is never dialed.",
        variables="CORECALL_CALL_ID={call_id},CORECALL_TRUNK=corecall-main,"
        "CORECALL_CALLER_ID=+1212555010a,CORECALL_DIAL_TIMEOUT=10",
    ),
    Scenario(
        "trunk-mismatch",
        "CORECALL_TRUNK differs from the agent leg's trunk: refused by the dialplan",
        number("0999", "+1555000"),
        TARGET,
        "Agent leg on corecall-main, CORECALL_TRUNK=corecall-dev.",
        variables="CORECALL_CALL_ID={call_id},CORECALL_TRUNK=corecall-dev,"
        f"CORECALL_CALLER_ID={CALLER_ID},CORECALL_DIAL_TIMEOUT=10",
    ),
    Scenario(
        "exten-without-plus",
        "Exten without the leading + (refused by Originate itself)",
        number("0999", "+1555000"),
        TARGET,
        "Exten: 15557654321.",
        exten="15557654321",
    ),
    Scenario(
        "target-with-letter",
        "Exten matches `_+X.` but holds a letter: refused by the dialplan",
        number("0999", "+1555000"),
        TARGET,
        "Exten: +1555765432a (the pattern's `.` matches any character; the FILTER check does not).",
        exten="+1555765432a",
    ),
    Scenario(
        "carrier-down",
        "Carrier not running (nothing answers at the trunk's address)",
        AGENT,
        TARGET,
        "The dev carrier's sipp is stopped; Asterisk retransmits the INVITE until timer B "
        "(32 s) unless the Originate Timeout ends it first (here 5000 ms).",
        trunk="corecall-dev",
        agent_ring_timeout=5,
        before=lambda lab: lab.stop_carrier("corecall-dev"),
    ),
]


async def run_scenario(ami: RawAMI, lab: labmod.Lab, sc: Scenario) -> None:
    call_id = uuid.uuid4().hex
    if sc.before:
        sc.before(lab)
    lab.clear_invites()
    start = len(ami.messages)
    t0 = time.monotonic()
    action = labmod.originate_action(
        call_id,
        sc.agent,
        sc.target,
        trunk=sc.trunk,
        agent_ring_timeout=sc.agent_ring_timeout,
        dial_timeout=sc.dial_timeout,
        confirm=sc.confirm,
        confirm_timeout=sc.confirm_timeout,
        exten=sc.exten,
        variables=sc.variables.format(call_id=call_id) if sc.variables else None,
    )
    response = await ami.send(action)
    action_id = action["ActionID"]
    if sc.during:
        await sc.during(ami, call_id, start)
    # Done when the OriginateResponse arrived and no channel of the call is left.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        mine = [m for _, m in ami.messages[start:] if belongs(m, call_id, action_id)]
        live: set[str] = set()
        for m in mine:
            if m.get("Event") == "Newchannel":
                live.add(m["Uniqueid"])
            elif m.get("Event") == "Hangup":
                live.discard(m["Uniqueid"])
        if any(m.get("Event") == "OriginateResponse" for m in mine) and not live:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    events = [
        (round((t - t0) * 1000), m)
        for t, m in ami.messages[start:]
        if belongs(m, call_id, action_id) or (m.get("_Action") and m.get("ActionID"))
    ]
    sc.result = {
        "call_id": call_id,
        "response": response,
        "events": events,
        "invites": {name: lab.invite_rows(name) for name in lab.carriers},
    }
    if sc.after:
        sc.after(lab)


# ------------------------------------------------------------------------------ markdown

KEY_FIELDS = (
    "ChannelStateDesc",
    "DialStatus",
    "Cause",
    "Cause-txt",
    "Response",
    "Reason",
    "CallerIDNum",
    "ConnectedLineNum",
    "UserEvent",
    "Step",
    "CallId",
    "HangupCause",
    "DialedTime",
    "AnsweredTime",
    "HangupSource",
    "Message",
    "BridgeNumChannels",
)


def _subst(value: str, call_id: str, target_uids: dict[str, str]) -> str:
    value = value.replace(call_id, "<id>")
    for uid, label in target_uids.items():
        value = value.replace(uid, label)
    return value


def render_scenario(sc: Scenario) -> str:
    res = sc.result
    call_id = res["call_id"]
    target_uids: dict[str, str] = {}
    for _, m in res["events"]:
        uid = m.get("Uniqueid") or ""
        if m.get("Event") == "Newchannel" and uid and not uid.startswith(call_id):
            target_uids[uid] = "<target-uid>"
    roles = {f"{call_id}-a": "agent"}
    out = [f"### {sc.title}", ""]
    if sc.note:
        out += [sc.note, ""]
    out += [
        f"Agent `{sc.agent}`, target `{sc.target}`, trunk `{sc.trunk}`, Originate Timeout "
        f"{sc.agent_ring_timeout * 1000} ms, CORECALL_DIAL_TIMEOUT {sc.dial_timeout}.",
        "",
        f"Originate reply: `Response: {res['response'].get('Response')}` / "
        f"`Message: {res['response'].get('Message')}`",
        "",
        "| ms | Event | Leg | Channel | Uniqueid | Linkedid | Key fields |",
        "|---:|---|---|---|---|---|---|",
    ]
    for ms, m in res["events"]:
        if "_Action" in m:
            out.append(
                f"| {ms} | *{m['_Action']} → {m.get('Response')}* |  |  |  |  | "
                f"{_subst(m.get('Message', ''), call_id, target_uids)} |"
            )
            continue
        event = m.get("Event", "")
        uid = m.get("Uniqueid", "")
        channel = m.get("Channel", "")
        if event in ("DialBegin", "DialState", "DialEnd"):
            dest_uid = m.get("DestUniqueid", "")
            leg = f"{roles.get(uid, 'target' if uid else '—')}→{roles.get(dest_uid, 'target')}"
            channel = f"{channel or '—'} → {m.get('DestChannel', '')}"
            uid = f"{uid or '—'} → {dest_uid}"
            linked = m.get("Linkedid") or m.get("DestLinkedid", "")
        else:
            leg = roles.get(uid, "target" if uid in target_uids else ("—" if not uid else "?"))
            linked = m.get("Linkedid", "—")
        details = ", ".join(
            f"`{k}={_subst(m[k], call_id, target_uids)}`"
            for k in KEY_FIELDS
            if k in m and not (event == "DialBegin" and k == "ChannelStateDesc")
        )
        if event in ("DialBegin", "DialState", "DialEnd") and "DestChannelStateDesc" in m:
            dest = f"`DestChannelStateDesc={m['DestChannelStateDesc']}`"
            details = f"{dest}, {details}" if details else dest
        cells = [_subst(v, call_id, target_uids) for v in (channel, uid, linked)]
        cells = [f"`{c}`" if c and c != "—" else c for c in cells]
        out.append(f"| {ms} | {event} | {leg} | {' | '.join(cells)} | {details} |")
    invites = res["invites"]
    seen = [
        f"{name}: " + ", ".join(f"`{r}` (From `{f}`)" for r, f, _ in rows)
        for name, rows in invites.items()
        if rows
    ]
    out += ["", "INVITEs seen by the carriers: " + ("; ".join(seen) if seen else "none"), ""]
    return "\n".join(out)


def summarize(sc: Scenario) -> str:
    call_id = sc.result["call_id"]
    ev = [m for _, m in sc.result["events"]]
    orig = next((m for m in ev if m.get("Event") == "OriginateResponse"), None)
    if orig is None:
        reply = sc.result["response"]
        orig = {"Response": f"(none: reply {reply.get('Response')})", "Reason": "—"}
    agent_dial = next(
        (m for m in ev if m.get("Event") == "DialEnd" and m.get("DestUniqueid") == f"{call_id}-a"),
        {},
    )
    target_dial = next(
        (m for m in ev if m.get("Event") == "DialEnd" and m.get("Uniqueid") == f"{call_id}-a"), {}
    )
    hangups = {
        ("agent" if m.get("Uniqueid") == f"{call_id}-a" else "target"): m.get("Cause", "")
        for m in ev
        if m.get("Event") == "Hangup"
    }
    end = next((m for m in ev if m.get("UserEvent") == "CorecallEnd"), None)
    return (
        f"| [{sc.title}](#{sc.key}) | {orig.get('Response', '—')} / {orig.get('Reason', '—')} | "
        f"{agent_dial.get('DialStatus', '—')} | {target_dial.get('DialStatus', '—')} | "
        f"{hangups.get('agent', '—')} | {hangups.get('target', '—')} | "
        + (
            f"{end.get('Reason')} / {end.get('DialStatus') or '(empty)'} / {end.get('HangupCause')}"
            if end
            else "—"
        )
        + " |"
    )


DOC_HEAD = """\
# Asterisk AMI events, recorded

Generated by `corecall-lab-record` against the lab ({version}) on {date}. Do not edit
by hand: re-run `.venv/bin/corecall-lab-record --only docs` (as root).

Every scenario places one call with the AMI driver's exact Originate:

```
Action: Originate
Channel: PJSIP/<agent>@<trunk>
Context: corecall-bridge
Exten: <target>
Priority: 1
CallerID: <route's caller ID>
Timeout: <agent ring ms>
ChannelId: <id>-a
{variable}
Async: true
```

and lists, in arrival order, every event the `corecall` AMI user received for it (the
manager.conf event filter applied: nothing else arrives, no VarSet, Newexten, ...). `<id>` is
the 32-hex call id, `<target-uid>` the target leg's Uniqueid (made by Asterisk), `ms` the time
since the Originate was sent. In DialBegin/DialEnd rows "Leg", "Channel" and "Uniqueid" read
caller → destination. The carriers' behaviour by last 4 digits is in docs/asterisk-lab.md.

## What the driver can rely on (verified below and by tests/lab)

* **Correlation.** Every event of both legs carries `Linkedid: <id>-a`, the agent leg's preset
  Uniqueid (`ChannelId`). Exception: the DialBegin/DialEnd of the *agent* leg come from the
  Originate's own dial, which has no calling channel, so they carry only `Dest*` fields
  (`DestUniqueid`/`DestLinkedid: <id>-a`). `OriginateResponse` carries the Originate's
  `ActionID` and `Uniqueid: <id>-a` (even when no channel could be created) but no Linkedid.
  The target leg is the channel with `Linkedid: <id>-a` and `Uniqueid != <id>-a`.
* **The Originate reply** is `Response: Success` / `Originate successfully queued`, except when
  Exten matches nothing in the context: `Response: Error` / `Extension does not exist.`,
  nothing is dialed and no OriginateResponse follows.
* **Agent answered:** `DialEnd` with `DestUniqueid: <id>-a`, `DialStatus: ANSWER`; the
  agent's `Newstate Up`; `OriginateResponse Response: Success, Reason: 4`. Their order varies.
* **Agent leg failed:** `OriginateResponse Response: Failure`. `Reason` (an AST_CONTROL
  number, not a cause) is `3` only when the Originate `Timeout` ran out (no answer, or nothing
  at the carrier's address) and `0` for everything else (486, 403, 503, unknown endpoint):
  tell them apart by the agent leg's `DialEnd` `DialStatus` (BUSY / NOANSWER for 403 /
  CONGESTION for 503; no DialEnd on a timeout) or its `Hangup` `Cause` (17 / 21 / 34 / 19).
  An unknown endpoint produces the OriginateResponse and nothing else. No `CorecallEnd`:
  the dialplan never ran.
* **Early media:** a carrier that answers the INVITE with `183 Session Progress` (and SDP)
  instead of `180` produces no `Newstate Ringing` at all, only `DialState` with
  `DialStatus: PROGRESS` (180 gives `DialState RINGING` as well as `Newstate Ringing`). For
  the agent leg it carries only `Dest*` fields (like its DialBegin); for the target leg it
  comes from the agent channel. Both mean "reached and alerting".
* **The confirmation step:** once the agent answered, `UserEvent: CorecallConfirm` with
  `Step: prompt` (the prompt plays, `Read()` waits for one key on the agent's channel), then
  `Step: confirmed` when the key was 1, right before the target's DialBegin. No key in time, a
  second wrong key or a hang-up during the prompt: `CorecallEnd` with
  `Reason: not-confirmed`, and the target is never dialed (no INVITE).
* **Target ringing:** `Newstate` `ChannelStateDesc: Ringing` of the target leg, or its
  `DialState` `RINGING`/`PROGRESS`.
  **Target answered:** `DialEnd` with `Uniqueid: <id>-a` and `DialStatus: ANSWER`, then one
  `BridgeEnter` per leg (the second has `BridgeNumChannels: 2`).
* **Target failed:** that `DialEnd` has `DialStatus` BUSY (486), NOANSWER (dial timeout, and
  also 403), CONGESTION (503) or CANCEL (the agent hung up first). The `CorecallEnd`
  `DialStatus` is Dial's final DIALSTATUS, which can differ (403: `DialEnd NOANSWER` but
  DIALSTATUS `CHANUNAVAIL`); causes are in the `Hangup` events (17 / 0 / 21 / 34).
* **End of call:** `UserEvent: CorecallEnd` on the agent leg (only once the agent answered),
  then the agent's `Hangup`; the target's `Hangup` can come before or after. `Reason` is `ok`
  unless the dialplan refused the call (`invalid-call-id`, `invalid-trunk`, `trunk-mismatch`,
  `invalid-caller-id`, `invalid-target`, `no-such-target`); `HangupSource` names the channel
  that hung up first, `dialplan/builtin` when the dialplan did, and is empty after an AMI
  Hangup and when Asterisk shuts down: a restart (`core stop`, SIGTERM) hangs every channel up
  with cause 16 and a `CorecallEnd` that looks like a completed call (DialStatus ANSWER),
  then about a second later sends `Shutdown` and closes the connection (not recorded here:
  it ends the recording session; `tests/telephony/test_ami_lab.py::test_asterisk_restart_mid_call`
  covers it). The driver holds such an end briefly and records the call `unknown`, cut by a
  restart, when `Shutdown` or the link's loss follows.
* **FullyBooted:** sent right after the login when Asterisk is up, and only once it is fully
  up after a restart; AMI accepts logins before that, and an Originate sent in between is
  answered `Extension does not exist`. The driver sends none before it.
* **Hanging up:** `Action: Hangup` with `Channel: <id>-a` (a Uniqueid is accepted as Channel)
  answers `Success` / `Channel Hungup` and ends both legs.
* **panoramisk:** an event that carries the ActionID of a pending action is handed to that
  action's future, not to event callbacks. So `await manager.send_action(originate)` resolves
  only when the OriginateResponse arrives (up to the agent ring timeout) with
  `[Response, OriginateResponse]`, and the OriginateResponse never reaches
  `register_event` handlers.

## Summary

"""

SUMMARY_HEADER = [
    "| Scenario | OriginateResponse Response / Reason | agent DialEnd | target DialEnd "
    "| agent Hangup Cause | target Hangup Cause "
    "| CorecallEnd Reason / DialStatus / HangupCause |",
    "|---|---|---|---|---|---|---|",
]
VARIABLE_LINE = (
    "Variable: CORECALL_CALL_ID=<id>,CORECALL_TRUNK=<trunk>,CORECALL_CALLER_ID=+12125550100,\n"
    "          CORECALL_DIAL_TIMEOUT=<s>,CORECALL_CONFIRM=<key|none>,CORECALL_CONFIRM_TIMEOUT=<s>"
)


def render_doc(scenarios: list[Scenario], version: str) -> str:
    head = DOC_HEAD.format(version=version, date=time.strftime("%Y-%m-%d"), variable=VARIABLE_LINE)
    out = [head.rstrip("\n"), "", *SUMMARY_HEADER]
    out += [summarize(sc) for sc in scenarios]
    out += ["", "## Scenarios", ""]
    for sc in scenarios:
        out += [f'<a id="{sc.key}"></a>', "", render_scenario(sc)]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------- main


async def record_docs(lab: labmod.Lab) -> list[Scenario]:
    ami = RawAMI()
    await ami.connect(lab.ami_host, lab.ami_port, lab.ami_user, lab.ami_secret)
    try:
        for sc in SCENARIOS:
            print(f"  {sc.key} ...", file=sys.stderr, flush=True)
            await run_scenario(ami, lab, sc)
        names = {m.get("Event") for _, m in ami.messages if "Event" in m}
        unexpected = names - set(labmod.asterisk_conf.AMI_EVENTS)
        if unexpected:
            raise RuntimeError(f"event filter let through {sorted(unexpected)}")
    finally:
        await ami.close()
    return SCENARIOS


async def record_stream(lab: labmod.Lab, calls: int, burst: int) -> bytes:
    ami = RawAMI()
    await ami.connect(lab.ami_host, lab.ami_port, lab.ami_user, lab.ami_secret)
    started = time.monotonic()
    try:
        done = 0
        while done < calls:
            n = min(burst, calls - done)
            ids = [uuid.uuid4().hex for _ in range(n)]
            start = len(ami.messages)
            await asyncio.gather(
                *(ami.send(labmod.originate_action(i, AGENT, TARGET)) for i in ids)
            )
            pending = set(ids)
            deadline = time.monotonic() + 60
            while pending and time.monotonic() < deadline:
                for _, m in ami.messages[start:]:
                    if m.get("Event") == "Hangup" and m.get("Uniqueid", "")[:32] in pending:
                        pending.discard(m["Uniqueid"][:32])
                await asyncio.sleep(0.05)
            if pending:
                raise RuntimeError(f"{len(pending)} calls of a burst did not end")
            done += n
            print(f"  {done}/{calls} calls", file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)
    finally:
        await ami.close()
    data = bytes(ami.raw)
    messages = data.count(b"\r\n\r\n")
    print(
        f"  {len(data)} bytes, {messages} messages in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["docs", "stream"])
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "asterisk-events.md")
    parser.add_argument("--stream", type=Path, default=REPO / "bench" / "data" / "lab-events.ami")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--burst", type=int, default=50)
    opts = parser.parse_args(argv)
    ports = {
        "ami_port": labmod.free_port(),
        "sip_port": labmod.free_port(kind=labmod.socket.SOCK_DGRAM),
    }
    carriers = {
        "corecall-main": f"127.0.0.2:{labmod.free_port('127.0.0.2', labmod.socket.SOCK_DGRAM)}",
        "corecall-dev": f"127.0.0.3:{labmod.free_port('127.0.0.3', labmod.socket.SOCK_DGRAM)}",
    }
    lab = labmod.Lab("record", carriers=carriers, die_with_parent=True, **ports)
    lab.start()
    try:
        if opts.only in (None, "docs"):
            print(f"recording scenarios into {opts.docs}", file=sys.stderr)
            scenarios = asyncio.run(record_docs(lab))
            opts.docs.parent.mkdir(parents=True, exist_ok=True)
            opts.docs.write_text(render_doc(scenarios, labmod.asterisk_version(lab.root)))
        if opts.only in (None, "stream"):
            print(f"recording the raw event stream into {opts.stream}", file=sys.stderr)
            data = asyncio.run(record_stream(lab, opts.calls, opts.burst))
            opts.stream.parent.mkdir(parents=True, exist_ok=True)
            opts.stream.write_bytes(data)
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
