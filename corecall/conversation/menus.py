"""Live menus: which inline-button choices may still be answered.

A menu whose buttons change something (pick a route, confirm a route switch, give an agent
a caller ID) is *single-use*: each time one is shown it gets a fresh random token, carried in
its buttons' callback data, and the choice it offers is kept here, server-side. A press is
acted on only if its token is the owner's live token for that kind of menu, and taking it
ends the menu, before anything else happens. So a menu dies when it is

* answered (the first of two racing taps, or of two devices, wins; the other is told the menu
  is closed),
* cancelled (❌ Cancel takes the token too: the old "✅ Yes" data no longer works), or
* replaced (showing a newer menu of the same kind for the same owner ends the older one).

Live menus are kept in memory, bounded (the oldest are forgotten first); after a restart
every old menu is closed, which is the safe side.
"""

from __future__ import annotations

import collections
import secrets

import attrs

#: At most this many live menus are remembered (people x kinds); the oldest go first.
CAPACITY = 10_000

#: The token's shape in callback data: 8 lower-case hex characters (32 random bits).
TOKEN_PATTERN = r"[0-9a-f]{8}"


@attrs.frozen
class LiveMenu:
    """A menu as shown: its token, its step, what its buttons mean, where it is shown.

    ``step`` names the question ("pick", "confirm"); ``choices`` are the options it offers
    (route codes, caller IDs) and ``subject`` what they apply to (an agent id for caller-ID
    menus). ``chat_id``/``message_id`` are where it is shown, once known.
    """

    token: str
    step: str
    choices: tuple[str, ...] = ()
    subject: str = ""
    chat_id: int | None = None
    message_id: int | None = None


class MenuBook:
    """The live menus of one conversation, keyed by (owner, kind)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._menus: collections.OrderedDict[tuple[int, str], LiveMenu] = collections.OrderedDict()
        self._kinds: dict[str, tuple[int, str]] = {}  # token -> (owner, kind)

    def open(
        self, owner: int, kind: str, step: str, choices: tuple[str, ...] = (), *,
        subject: str = "", chat_id: int | None = None, message_id: int | None = None,
    ) -> tuple[LiveMenu, LiveMenu | None]:  # fmt: skip
        """Show a new menu: returns it and the menu of the same kind it replaces (if any),
        which is dead from now on."""
        menu = LiveMenu(secrets.token_hex(4), step, tuple(choices), subject, chat_id, message_id)
        replaced = self._drop((owner, kind))
        self._menus[(owner, kind)] = menu
        self._kinds[menu.token] = (owner, kind)
        while len(self._menus) > self._capacity:
            self._drop(next(iter(self._menus)))
        return menu, replaced

    def _drop(self, key: tuple[int, str]) -> LiveMenu | None:
        menu = self._menus.pop(key, None)
        if menu is not None:
            self._kinds.pop(menu.token, None)
        return menu

    def kind_of(self, owner: int, token: str) -> str | None:
        """The kind of the owner's live menu with this token (None when there is none)."""
        found = self._kinds.get(token)
        return found[1] if found is not None and found[0] == owner else None

    def shown(self, owner: int, kind: str, menu: LiveMenu, chat_id: int, message_id: int) -> None:
        """Record where a sent menu landed (its message id is known only after sending)."""
        if self._menus.get((owner, kind)) == menu:
            self._menus[(owner, kind)] = attrs.evolve(menu, chat_id=chat_id, message_id=message_id)

    def take(self, owner: int, kind: str, token: str, step: str | None = None) -> LiveMenu | None:
        """The live menu the press belongs to, ended by this call; None when the token is
        not the live one (answered, cancelled, replaced, forgotten) or the step differs.
        Synchronous, so two racing presses can never both get it."""
        menu = self._menus.get((owner, kind))
        if menu is None or not secrets.compare_digest(menu.token, token):
            return None
        if step is not None and menu.step != step:
            return None
        self._drop((owner, kind))
        return menu

    def close(self, owner: int, kind: str) -> LiveMenu | None:
        """End the owner's live menu of this kind, if any."""
        return self._drop((owner, kind))

    def __len__(self) -> int:
        return len(self._menus)
