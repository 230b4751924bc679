"""Inline-button callback data: compact, versioned, and checked on every press.

Anyone can send any callback data (Telegram clients can forge it), so the data is parsed by
strict patterns, never trusted: a press is acted on only when the data parses, the presser
is the user the button was made for, and the presser is still allowed to do it (re-read from
the store by the conversation).

Format (ASCII, at most 64 bytes, Telegram's limit)::

    1:<action>:<owner telegram id>[:<argument>]...

``1`` is the format version (a future format gets another number, and old buttons are
refused with a friendly "send the command again"). Actions and their arguments:

====== ======================= ===========================================
action arguments               meaning
====== ======================= ===========================================
``rs``                         open the route list (settings menu)
``rp`` menu token, route code  a route was picked: ask for confirmation
``ry`` menu token              "Yes, Switch Route" (the route is the menu's)
``rn`` menu token              "Cancel"
``hu`` call id (32 hex)        hang up this call
``ci`` menu token, choice      (admin) give the agent of the menu its
                               caller ID number ``choice`` (0-based)
``dn`` call id (32 hex)        "Do not call again": list this call's number
``lv``                         (admin) stop this live view
====== ======================= ===========================================

A *menu token* (8 hex characters) makes a menu single-use: see
:mod:`corecall.conversation.menus`.
"""

from __future__ import annotations

import re

import attrs

from corecall.conversation.menus import TOKEN_PATTERN

VERSION = "1"
MAX_BYTES = 64
#: A menu offers at most this many choices (the ``ci`` choice is 1-2 digits; Telegram
#: takes at most 100 buttons per message).
MAX_CHOICES = 100

OPEN_ROUTES = "rs"
PICK_ROUTE = "rp"
CONFIRM_ROUTE = "ry"
CANCEL_ROUTE = "rn"
HANG_UP = "hu"
SET_CALLER_ID = "ci"
DO_NOT_CALL = "dn"
STOP_LIVE = "lv"

_ID = r"[1-9][0-9]{0,18}"
_ARGUMENTS = {
    OPEN_ROUTES: (),
    PICK_ROUTE: (TOKEN_PATTERN, r"[A-Z0-9]{1,8}"),
    CONFIRM_ROUTE: (TOKEN_PATTERN,),
    CANCEL_ROUTE: (TOKEN_PATTERN,),
    HANG_UP: (r"[0-9a-f]{32}",),
    SET_CALLER_ID: (TOKEN_PATTERN, r"[0-9]{1,2}"),
    DO_NOT_CALL: (r"[0-9a-f]{32}",),
    STOP_LIVE: (),
}
_PATTERNS = {
    action: re.compile(
        re.escape(f"{VERSION}:{action}:") + f"({_ID})" + "".join(f":({arg})" for arg in args)
    )
    for action, args in _ARGUMENTS.items()
}


@attrs.frozen
class CallbackData:
    """A parsed button press: what to do, for whom the button was made, with what."""

    action: str
    owner: int
    args: tuple[str, ...] = ()

    def encode(self) -> bytes:
        data = ":".join((VERSION, self.action, str(self.owner), *self.args)).encode("ascii")
        if parse(data) != self:  # never hand out a button we would refuse ourselves
            raise ValueError(f"invalid callback data {data!r}")
        return data


def make(action: str, owner: int, *args: str) -> bytes:
    """Encode a button's data; raises ValueError if it would not parse back."""
    return CallbackData(action, owner, tuple(args)).encode()


def parse(data: bytes | None) -> CallbackData | None:
    """The press's meaning, or None when the data is malformed, too long or of another
    version. Matches the whole data, never a prefix."""
    if not isinstance(data, bytes) or not data or len(data) > MAX_BYTES:
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    parts = text.split(":", 2)
    if len(parts) < 3 or parts[0] != VERSION:
        return None
    pattern = _PATTERNS.get(parts[1])
    match = pattern.fullmatch(text) if pattern else None
    if match is None:
        return None
    owner, *args = match.groups()
    return CallbackData(parts[1], int(owner), tuple(args))
