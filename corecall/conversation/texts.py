"""Every sentence the bot says, in one place.

The seed's texts are reproduced exactly (``ROUTE_*`` and ``SELECT_ROUTE_BUTTON``); the route
names, buttons and tags come from the route plugins (:class:`~corecall.domain.Route`). Texts
are plain (no Markdown), so what is written here is exactly what people see.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from corecall import fields
from corecall.domain import Agent, CallRecord, CallState, EndReason, Route


def _name(agent: Agent) -> str:
    # Stored values are shown within their field's limit even if the store holds more
    # (written by an older version, or by hand), so every reply keeps its meaning and fits.
    return fields.clip(agent.name, fields.NAME_MAX_CHARS)


def _phone(agent: Agent) -> str:
    return fields.clip(agent.phone, fields.E164_MAX_CHARS)


#: How much of what a person typed is echoed back in a reply (a message can hold 4,096).
TYPED_ECHO_MAX = 200


def _typed(text: str) -> str:
    """What a person typed, echoed in a reply: cut (with …) beyond :data:`TYPED_ECHO_MAX`."""
    return text if len(text) <= TYPED_ECHO_MAX else text[: TYPED_ECHO_MAX - 1] + "…"


# --------------------------------------------------------------------------- the seed's texts

SELECT_ROUTE_BUTTON = "Select Route 🌐"
CONFIRM_ROUTE_BUTTON = "✅ Yes, Switch Route"
CANCEL_ROUTE_BUTTON = "❌ Cancel"


def route_confirmation(route: Route) -> str:
    return (
        f"Are you sure you want to switch to the {route.name} route?\n"
        "All outbound calls will now go through this route."
    )


def route_changed(route: Route) -> str:
    return f"✅ Your route has been successfully changed to [{route.name}]!"


# --------------------------------------------------------------------------- menus

HANG_UP_BUTTON = "📴 Hang up"


def settings_menu(agent: Agent, caller_id_line: str) -> str:
    return f"⚙️ Settings\nYour phone: {_phone(agent)}\n{caller_id_line}"


CHOOSE_ROUTE = "Choose a route for your outbound calls:"


def _route_withdrawn(withdrawn: str) -> str:
    """The agent chose route ``withdrawn`` (its code) and it is no longer offered (its
    plugin was switched off or the operator removed it): they must choose again."""
    return f"Your route [{withdrawn}] is no longer offered."


def choose_route(withdrawn: str | None = None) -> str:
    if withdrawn is None:
        return CHOOSE_ROUTE
    return f"{_route_withdrawn(withdrawn)} {CHOOSE_ROUTE}"


def no_route_for_call(withdrawn: str | None = None) -> str:
    if withdrawn is not None:
        return (
            f"{_route_withdrawn(withdrawn)} I can't place calls for you until you choose "
            "another. Choose one below, then send your /call again."
        )
    return (
        "You haven't chosen a route yet, so I can't place calls for you. "
        "Choose one below, then send your /call again."
    )


def route_cancelled(caller_id_line: str) -> str:
    return f"❌ Route change cancelled.\n{caller_id_line}"


def already_on_route(route: Route, caller_id_line: str) -> str:
    return f"You're already on the {route.name} route.\n{caller_id_line}"


def routes_sentence(routes: Iterable[Route], command: str = "/route") -> str:
    """``/route M (Main) or /route D (Development)``; ``command`` is what goes before each
    code (``/setroute 501`` for an admin setting agent 501's route)."""
    options = [f"{command} {r.code} ({r.name})" for r in routes]
    if not options:
        return "no route is available right now; tell your admin"
    if len(options) == 1:
        return options[0]
    return ", ".join(options[:-1]) + " or " + options[-1]


def unknown_route(code: str, routes: Iterable[Route]) -> str:
    routes = list(routes)
    shown = code if len(code) <= 16 else code[:15] + "…"  # echo what was typed, in part
    if not routes:
        return f"There is no route {shown!r} to switch to. {NO_ROUTES_OFFERED}"
    return f"There is no route {shown!r} to switch to. Use {routes_sentence(routes)}."


def unknown_route_to_set(code: str, routes: Iterable[Route], agent_id: int) -> str:
    """``/setroute <agent_id> <code>`` named no offered route: the hint is /setroute for that
    agent (``/route`` would change the admin's own route)."""
    routes = list(routes)
    shown = code if len(code) <= 16 else code[:15] + "…"
    if not routes:
        return (
            f"There is no route {shown!r} to set. No route is offered right now: the operator "
            "configures routes ([routes.<code>] in the config file, with the route's plugin "
            "enabled)."
        )
    return (
        f"There is no route {shown!r} to set. "
        f"Use {routes_sentence(routes, f'/setroute {agent_id}')}."
    )


def route_usage(routes: Iterable[Route], withdrawn: str | None = None) -> str:
    routes = list(routes)
    gone = f"{_route_withdrawn(withdrawn)} " if withdrawn is not None else ""
    if not routes:
        return gone + NO_ROUTES_OFFERED
    return f"{gone}Tell me which route: {routes_sentence(routes)}. Or choose one below."


MENU_REPLACED = "This menu was replaced by a newer one."
ROUTE_GONE = "That route is not available any more. Send /settings to see the routes you can use."
NO_ROUTES_OFFERED = "No route is available right now, so calls can't be placed. Tell your admin."

# --------------------------------------------------------------------------- who you are


def start_agent(
    agent: Agent, *, has_route: bool, is_admin: bool, withdrawn: str | None = None
) -> str:
    name = f" {_name(agent)}" if agent.name else ""
    lines = [
        f"👋 Hi{name}! You're an authorized agent.",
        f"Your phone: {_phone(agent)} (I ring it first, then the number you call).",
        "Send /call <number> to place a call, /settings for your caller ID and route, "
        "/help for everything.",
    ]
    if not has_route and withdrawn is not None:
        lines.append(f"{_route_withdrawn(withdrawn)} Before your next call, choose another in "
                     "/settings.")  # fmt: skip
    elif not has_route:
        lines.append("Before your first call, choose a route in /settings.")
    if is_admin:
        lines.append("You're also a super admin: /help lists the admin commands.")
    return "\n".join(lines)


def start_admin_only(user_id: int) -> str:
    return (
        f"👋 Hi! You're a super admin (Telegram id {user_id}). You aren't an agent, so you "
        f"can't place calls yourself; to become one, send /authorize {user_id} <your phone>.\n"
        "Send /help for the admin commands."
    )


def admin_not_agent(user_id: int) -> str:
    """A super admin who is not an authorized agent used an agent command."""
    return (
        f"You're a super admin, but not an authorized agent, so you can't place calls or "
        f"choose a route. To become an agent yourself, send /authorize {user_id} <your phone>."
    )


def not_authorized(user_id: int) -> str:
    return (
        "You're not authorized to use this bot yet.\n"
        f"Your Telegram id is {user_id}. Send it to your admin and ask them to authorize you "
        "(they will also need your phone number)."
    )


def help_text(routes: Iterable[Route], *, is_agent: bool, is_admin: bool,
              live_calls: int, calls_per_minute: int) -> str:  # fmt: skip
    routes = list(routes)
    lines: list[str] = []
    if is_agent:
        route_line = " or ".join(f"/route {r.code}" for r in routes) or "/route <code>"
        names = ", ".join(f"{r.code} = {r.name}" for r in routes)
        calls = "1 live call" if live_calls == 1 else f"{live_calls} live calls"
        lines += [
            "Agent commands:",
            "/call <number> — I ring your phone; when you answer, I dial the number and connect "
            "you (e.g. /call +12125550123 or /call (212) 555-0123)",
            "/settings — your caller ID and route, and route selection",
            f"{route_line} — switch route directly" + (f" ({names})" if names else ""),
            "/history — your last calls, with result and duration",
            "/start — who you are",
            "/help — this help",
            f"Limits: {calls} at a time, {calls_per_minute} calls per minute.",
        ]
    if is_admin:
        if lines:
            lines.append("")
        lines += [
            "Admin commands:",
            "/authorize <id> <phone> [name] — authorize an agent (adds them if new)",
            "/revoke <id> — stop an agent from placing calls",
            "/agents — list the agents",
            "/setphone <id> <phone> — set the phone an agent is rung on",
            "/setroute <id> <route> — set an agent's route"
            + (f" ({', '.join(r.code for r in routes)})" if routes else ""),
            "/callerid <id> — choose an agent's caller ID among their route's numbers",
            "/dnc <number> — put a number on the do-not-call list (calls to it are refused)",
            "/undnc <number> — take a number off the do-not-call list",
            "/live — live calls and today's totals, kept up to date for 10 minutes",
        ]
    if not lines:
        return "You can't use any commands yet. Send /start to see your Telegram id."
    return "\n".join(lines)


def addressed_to_other_bot(other: str, ours: str | None, resend: str) -> str:
    """``resend`` is the command as typed, without its ``@other`` part."""
    to_ask = f"I'm @{ours}: to ask me" if ours else "To ask me"
    return (
        f"That command is addressed to @{other}, another bot, so I did nothing. {to_ask}, "
        f"send it without the @ part: {_typed(resend)}"
    )


UNKNOWN_COMMAND = "I don't know that command. Send /help to see what I can do."
PLAIN_TEXT = "I only understand commands. To place a call, send /call <number>; /help lists all."
PRIVATE_ONLY = "I only work in a private chat. Open a private chat with me and send /start there."
PRIVATE_ONLY_TOAST = "This only works in a private chat with me."
ADMIN_ONLY = "{command} is for super admins only. Send /help to see what you can do."
SHUTTING_DOWN = "The bot is restarting, so nothing was done. Send your command again in a minute."
STORE_UNAVAILABLE = (
    "⚠️ My database isn't answering right now, so nothing was done (no call was placed). "
    "Try again in a minute; if it keeps happening, tell your admin."
)
STORE_UNAVAILABLE_TOAST = "My database isn't answering right now: nothing was done. Try again."
INTERNAL_ERROR = (
    "Sorry, something went wrong on my side. Try again; if it keeps happening, tell your admin."
)


def no_arguments(command: str) -> str:
    return f"/{command} takes nothing after it: send just /{command}."


# --------------------------------------------------------------------------- buttons (toasts)

NOT_YOUR_BUTTON = "This button isn't for you."
NOT_AUTHORIZED_TOAST = "You're not authorized to do this. Send /start to see your Telegram id."
ADMIN_ONLY_TOAST = "Only super admins can do this."
INVALID_BUTTON = "This button doesn't work any more. Send the command again."
MENU_CLOSED = (
    "This menu is closed (already answered, cancelled or replaced by a newer one). "
    "Send the command again."
)
HANGING_UP = "Hanging up…"
CALL_ALREADY_ENDED = "This call has already ended."

# --------------------------------------------------------------------------- calls

CALL_USAGE = "Send the number after /call, e.g. /call +12125550123 or /call (212) 555-0123."


def call_refused(message: str) -> str:
    return f"⛔ Not dialed. {message}"


def call_expired(age_seconds: float) -> str:
    return (
        f"⌛ Expired: this /call reached me {int(age_seconds)} seconds after you sent it "
        "(I was offline), so I did not dial it. Send /call again if you still want the call."
    )


def duration(seconds: float | None) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    total = round(seconds or 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def caller_id_of_call(call: CallRecord) -> str:
    return f"Caller ID: {call.caller_id} [{call.route_code}]"


#: The status line while the agent's phone asks for the confirmation key.
CONFIRM_STEP = "📲 Answered: press 1 on your phone to connect"


def call_state_line(call: CallRecord, route_name: str | None = None) -> str:
    """One line saying where the call is, in words an agent understands."""
    you, target = call.agent_phone, call.target
    state = call.state
    if state in (CallState.QUEUED, CallState.DIALING_AGENT):
        return f"⏳ Calling your phone {you}…"
    if state is CallState.AGENT_RINGING:
        return f"🔔 Your phone {you} is ringing: answer it to continue."
    if state is CallState.AWAITING_CONFIRMATION:
        return CONFIRM_STEP
    if state in (CallState.AGENT_ANSWERED, CallState.DIALING_TARGET):
        return f"✅ You answered. Dialing {target}…"
    if state is CallState.TARGET_RINGING:
        return f"🔔 Ringing {target}…"
    if state is CallState.CONNECTED:
        return f"🟢 Connected: you're talking to {target}."
    return _ended_line(call, route_name)


def _ended_line(call: CallRecord, route_name: str | None) -> str:
    you, target = call.agent_phone, call.target
    reason = call.reason or EndReason.UNKNOWN
    not_dialed = f"so {target} was not dialed."
    if reason is EndReason.COMPLETED or (call.connected_at and reason is EndReason.CANCELLED):
        return f"☎️ Call ended. Duration {duration(call.talk_seconds)}."
    route = f"the {route_name} route's" if route_name else f"the [{call.route_code}] route's"
    return {
        EndReason.AGENT_NO_ANSWER: f"❌ Not connected: you didn't answer your phone {you}, "
        + not_dialed,
        EndReason.AGENT_BUSY: f"❌ Not connected: your phone {you} was busy, " + not_dialed,
        EndReason.AGENT_REJECTED: f"❌ Not connected: your phone {you} declined the call, "
        + not_dialed,
        EndReason.AGENT_NOT_CONFIRMED: f"❌ Not connected: your phone {you} was answered but "
        f"nobody pressed 1 (voicemail?), {not_dialed} Answer it yourself and press 1 when it "
        "tells you whom you are calling.",
        EndReason.TARGET_NO_ANSWER: f"❌ Not connected: {target} didn't answer.",
        EndReason.TARGET_BUSY: f"❌ Not connected: {target} was busy. Try again later.",
        EndReason.TARGET_UNREACHABLE: f"❌ Not connected: {target} could not be reached. "
        "Check the number.",
        EndReason.CANCELLED: "📴 You hung up before the call connected.",
        EndReason.TIMED_OUT: "⏱ corecall hung up: the call reached its time limit.",
        EndReason.TRUNK_UNAVAILABLE: f"❌ Not connected: {route} phone line is not working "
        "right now. Tell your admin.",
        EndReason.UNKNOWN: "❓ The phone system lost track of this call, so its outcome is "
        "unknown. Check /history later or ask your admin.",
    }[reason]


def call_status(call: CallRecord, route_name: str | None = None) -> str:
    """The ONE status message of a call, as it is at ``call.state``."""
    return (
        f"📞 Call to {call.target}\n{caller_id_of_call(call)}\n{call_state_line(call, route_name)}"
    )


def call_status_paused(call: CallRecord) -> str:
    return (
        f"📞 Call to {call.target}\n{caller_id_of_call(call)}\n"
        "⏸ The bot is restarting. Your call goes on; its result will be in /history."
    )


# --------------------------------------------------------------------------- history

_RESULT_WORDS = {
    EndReason.COMPLETED: "✅ completed",
    EndReason.AGENT_NO_ANSWER: "❌ you didn't answer",
    EndReason.AGENT_BUSY: "❌ your phone was busy",
    EndReason.AGENT_REJECTED: "❌ your phone declined",
    EndReason.AGENT_NOT_CONFIRMED: "❌ nobody pressed 1",
    EndReason.TARGET_NO_ANSWER: "❌ no answer",
    EndReason.TARGET_BUSY: "❌ busy",
    EndReason.TARGET_UNREACHABLE: "❌ unreachable",
    EndReason.CANCELLED: "📴 you hung up",
    EndReason.TIMED_OUT: "⏱ time limit",
    EndReason.TRUNK_UNAVAILABLE: "❌ line not working",
    EndReason.UNKNOWN: "❓ outcome unknown",
}


def history_line(call: CallRecord) -> str:
    when = "?"
    if call.created_at is not None:
        when = call.created_at.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not call.is_final:
        result = "🟢 in progress"
    else:
        result = _RESULT_WORDS[call.reason or EndReason.UNKNOWN]
        if call.connected_at is not None:
            result += f", talked {duration(call.talk_seconds)}"
    return f"{when} · {call.target} · [{call.route_code}] · {result}"


def history(calls: list[CallRecord]) -> str:
    if not calls:
        return "You haven't placed any calls yet. Send /call <number> to place one."
    count = len(calls)
    header = "Your last call:" if count == 1 else f"Your last {count} calls, newest first:"
    return "\n".join([header, *(history_line(c) for c in calls)])


# --------------------------------------------------------------------------- admin

AUTHORIZE_USAGE = (
    "Usage: /authorize <telegram id> <phone> [name], e.g. /authorize 123456789 +12125550123 Alice"
)
REVOKE_USAGE = "Usage: /revoke <telegram id>, e.g. /revoke 123456789"
SETPHONE_USAGE = "Usage: /setphone <telegram id> <phone>, e.g. /setphone 123456789 +12125550123"
CALLERID_USAGE = "Usage: /callerid <telegram id>, e.g. /callerid 123456789"
SETROUTE_USAGE = "Usage: /setroute <telegram id> <route>, e.g. /setroute 123456789 D"


def route_set(agent: Agent, route: Route, caller_id_line: str) -> str:
    return f"✅ Agent {agent_label(agent)} now uses the {route.name} route.\n{caller_id_line}"


def agent_already_on_route(agent: Agent, route: Route, caller_id_line: str) -> str:
    return (
        f"Agent {agent_label(agent)} is already on the {route.name} route; nothing changed.\n"
        f"{caller_id_line}"
    )


def agent_label(agent: Agent) -> str:
    return f"{agent.telegram_id} ({_name(agent)})" if agent.name else str(agent.telegram_id)


def authorized(agent: Agent, previous_phone: str | None = None) -> str:
    route = "" if agent.route_code else " They have no route yet: they choose one in /settings."
    was = f" (was {fields.clip(previous_phone, fields.E164_MAX_CHARS)})" if previous_phone else ""
    return f"✅ Agent {agent_label(agent)} is authorized. Phone: {_phone(agent)}{was}.{route}"


def already_authorized(agent: Agent) -> str:
    return (
        f"Agent {agent_label(agent)} was already authorized with phone {_phone(agent)}; "
        "nothing changed."
    )


def authorize_name_not_changed(refusal: str, resend: str) -> str:
    """``/authorize`` gave an agent on record another name: ``refusal`` says so, ``resend``
    is the command without the name."""
    return f"{refusal} To authorize them with that phone, send {_typed(resend)}, without the name."


def revoked(agent: Agent) -> str:
    return f"🚫 Agent {agent_label(agent)} is revoked: they can no longer place calls."


def already_revoked(agent: Agent) -> str:
    return f"Agent {agent_label(agent)} was already revoked; nothing changed."


def phone_set(agent: Agent) -> str:
    return f"✅ Agent {agent_label(agent)} will now be rung on {_phone(agent)}."


def phone_already(agent: Agent) -> str:
    return f"Agent {agent_label(agent)} is already rung on {_phone(agent)}; nothing changed."


def agents_list(rows: list[tuple[Agent, str]]) -> str:
    if not rows:
        return "No agents yet. Add one with /authorize <telegram id> <phone> [name]."
    lines = [f"Agents ({len(rows)}):"]
    for agent, caller_id_line in rows:
        mark = "✅" if agent.authorized else "🚫"
        lines.append(f"{mark} {agent_label(agent)} · phone {_phone(agent)} · {caller_id_line}")
    return "\n".join(lines)


def caller_id_menu(agent: Agent, route: Route, caller_id_line: str) -> str:
    return (
        f"Choose the caller ID for agent {agent_label(agent)} on the {route.name} route.\n"
        f"{caller_id_line}"
    )


def caller_id_no_route(agent: Agent, routes: Iterable[Route], withdrawn: str | None = None) -> str:
    routes = list(routes)
    again = f"send /callerid {agent.telegram_id} again"
    if not routes:
        how = f"No route is offered right now; once the operator configures one, {again}."
    else:
        setroute = routes_sentence(routes, f"/setroute {agent.telegram_id}")
        how = f"Set one with {setroute} (or they choose one in /settings), then {again}."
    if withdrawn is not None:
        return (
            f"Agent {agent_label(agent)}'s route [{withdrawn}] is no longer offered, and a "
            f"caller ID belongs to a route. {how}"
        )
    return f"Agent {agent_label(agent)} has no route yet, and a caller ID belongs to a route. {how}"


def caller_id_set(agent: Agent, caller_id_line: str) -> str:
    return f"✅ Agent {agent_label(agent)} now calls with\n{caller_id_line}"


def caller_id_already(agent: Agent, caller_id_line: str) -> str:
    return (
        f"Agent {agent_label(agent)} already calls with this number; nothing changed.\n"
        f"{caller_id_line}"
    )


def caller_id_not_on_route(number: str, agent: Agent, route: Route) -> str:
    """A caller ID menu answered after the agent moved to another route."""
    return (
        f"Nothing was changed: {number} is not one of the {route.name} route's caller IDs "
        f"(agent {agent_label(agent)} is on the {route.name} route now). Send /callerid "
        f"{agent.telegram_id} again to choose among them."
    )


def caller_id_button(number: str, current: bool) -> str:
    return f"{number} ✓" if current else number


# --------------------------------------------------------------------------- do not call

DNC_BUTTON = "🚫 Do not call again"
DNC_USAGE = "Usage: /dnc <number>, e.g. /dnc +12125550123 or /dnc (212) 555-0123"
UNDNC_USAGE = "Usage: /undnc <number>, e.g. /undnc +12125550123"
DNC_ADDED_TOAST = "Added to the do-not-call list: this number will not be called again."
DNC_ALREADY_TOAST = "This number is already on the do-not-call list."
DNC_NOT_ENFORCED = (
    "Note: the do-not-call check (plugin policy_dnc) is disabled, so the list is not "
    "checked before calls. Enable it with: corecall plugins enable policy_dnc"
)


def dnc_bad_number(message: str) -> str:
    return f"Nothing was changed: {message}"


def dnc_added(number: str) -> str:
    return f"🚫 {number} is on the do-not-call list now: calls to it are refused."


def dnc_already(number: str) -> str:
    return f"{number} was already on the do-not-call list; nothing changed."


def dnc_removed(number: str) -> str:
    return f"{number} is off the do-not-call list: it may be called again."


def dnc_not_listed(number: str) -> str:
    return f"{number} is not on the do-not-call list; nothing changed."


def call_status_with_dnc(call: CallRecord, route_name: str | None = None) -> str:
    """A finished call's status after its agent pressed "Do not call again"."""
    return (
        f"{call_status(call, route_name)}\n"
        "🚫 Added to the do-not-call list: this number will not be called again."
    )
