"""Stored text fields: one length limit per field, one check per field, for every entry
point (the CLI and the bot through :class:`~corecall.agents.AgentAdmin`, the store itself as
the last line, route plugins and the config file for route names).

The limits are chosen so that every message the bot builds from stored values fits
Telegram's limits (see :mod:`corecall.conversation.limits` and the test rendering every
template with maximal values).
"""

from __future__ import annotations

import re
import unicodedata

from corecall.errors import RefusedError

#: Agent display names (``/authorize ... Alice``, ``agents add --name``), in characters.
NAME_MAX_CHARS = 64
#: E.164 numbers: ``+`` and at most 15 digits.
E164_MAX_CHARS = 16
#: Route codes (``M``, ``D``): upper-case letters or digits.
ROUTE_CODE_MAX_CHARS = 8
#: A route's name as used in sentences ("Development").
ROUTE_NAME_MAX_CHARS = 32
#: A route's selection button label ("[Development Route]  🛠️").
ROUTE_BUTTON_MAX_CHARS = 32
#: A route's description (a plugin's RouteDefinition.description), at most.
ROUTE_DESCRIPTION_MAX_CHARS = 200
#: At most this many routes are configured (every route appears in the help and route list).
MAX_ROUTES = 20
#: At most this many caller IDs per route (one button each in the caller-ID menu).
MAX_CALLER_IDS_PER_ROUTE = 20
#: Free-text details (a call's end detail, an audit entry's detail); longer ones are clipped.
DETAIL_MAX_CHARS = 1000
#: Who did it ("telegram:123", "cli:alice"), what, and on what (audit log).
ACTOR_MAX_CHARS = 128
#: Why a number is on the do-not-call list (``dnc add --reason``, a CSV's second column).
REASON_MAX_CHARS = 200


#: Line breaks and tabs: where stored or imported text had one, a one-line field has a space.
_LINE_BREAKS = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


#: Letters that show as nothing at all (Hangul fillers, the braille blank): a name made
#: with one looks the same as the name without it.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _is_bad(char: str) -> bool:
    """Whether a name or a reason may not contain ``char``: controls (Cc: tab, CR, LF, NUL,
    ...), line and paragraph separators, every format character (Cf: the bidirectional
    embeddings, overrides and isolates that make text display in another order than it is
    stored, Trojan-source style; zero-width spaces and joiners, U+FEFF, the soft hyphen,
    the Arabic letter mark, tags), surrogates, private-use and unassigned code points, and
    letters that show as nothing."""
    return (
        unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")
        or char in _INVISIBLE_LETTERS
    )


#: The zero-width joiner: a format character, but also how emoji are joined (👩‍💻).
_ZWJ = "\u200d"


def _is_bad_at(text: str, index: int) -> bool:
    char = text[index]
    if char == _ZWJ:  # allowed between two pictographs (after one's skin tone or U+FE0F)
        before, after = text[index - 1 : index], text[index + 1 : index + 2]
        return not (before and after and _joins_emoji(before) and _is_pictograph(after))
    return _is_bad(char)


def _is_pictograph(char: str) -> bool:
    return unicodedata.category(char) == "So"


def _joins_emoji(char: str) -> bool:
    return unicodedata.category(char) in ("So", "Sk") or char == "\ufe0f"


def _bad_character(text: str) -> str | None:
    return next((text[i] for i in range(len(text)) if _is_bad_at(text, i)), None)


def _all_printable(text: str) -> bool:
    """No character any field refuses (the fast path: most text is printable)."""
    return text.isprintable() and _INVISIBLE_LETTERS.isdisjoint(text)


def fold_line_breaks(text: str) -> str:
    """``text`` with each run of line breaks and tabs (and the spaces around it) made one
    space: how a multi-line CSV cell (a quoted reason with a newline) becomes one line.
    Other control characters are left for the field's check to refuse."""
    if not any(char in _LINE_BREAKS for char in text):
        return text
    words: list[str] = []
    word: list[str] = []
    for char in text:
        if char in _LINE_BREAKS:
            words.append("".join(word).rstrip(" "))
            word = []
        elif char != " " or word:
            word.append(char)
    words.append("".join(word))
    return " ".join(w for w in words if w)


def bad_character(text: str) -> str | None:
    """The first character a one-line stored field may not hold (control, line or
    paragraph separator, bidi override...), or None. Fast for the usual printable text."""
    return None if _all_printable(text) else _bad_character(text)


def one_line(text: str, limit: int) -> str:
    """Any text, stored long ago or by another program, as a value the field's check
    accepts: line breaks and tabs folded into spaces, every other control, line-separator
    or bidi-override character replaced by U+FFFD (so an ESC sequence is never written
    raw to a terminal or a file), trimmed and clipped to ``limit`` characters with "…".
    A valid value comes back unchanged. For output (``dnc list``, ``dnc export``)."""
    if _all_printable(text) and len(text) <= limit and text == text.strip():
        return text
    text = fold_line_breaks(text)
    text = "".join("\ufffd" if _is_bad_at(text, i) else text[i] for i in range(len(text)))
    text = text.strip()
    return clip(text, limit).strip()


def display_text_problem(text: object, limit: int, what: str) -> str | None:
    """What is wrong with a one-line text corecall shows people as it is (a route's name or
    button, from the configuration or a plugin), or None: it must be text, not blank, at
    most ``limit`` characters, without control, line-separator, bidi-control or invisible
    characters (the rule agent names follow; an emoji sequence joined by U+200D is fine).
    ``what`` names it in the sentence ("the route name")."""
    if not isinstance(text, str) or not text.strip():
        return f"{what} must be 1 to {limit} characters, got {text!r:.40}"
    if len(text) > limit:
        return f"{what} is {len(text)} characters long; at most {limit}"
    bad = _bad_character(text)
    if bad is not None:
        return (
            f"{what} contains the invisible or control character U+{ord(bad):04X}; use "
            "letters, digits, spaces, punctuation and emoji"
        )
    return None


def check_agent_name(name: str) -> str:
    """An agent's display name, trimmed: at most :data:`NAME_MAX_CHARS` characters, no
    control, line-separator or bidi-override characters. Empty is allowed (no name).

    Raises :class:`~corecall.errors.RefusedError` (reason ``bad_name``) saying what was wrong
    and what works; nothing is shortened silently."""
    if not isinstance(name, str):
        raise RefusedError("bad_name", "The name must be text.")
    name = name.strip()
    if len(name) > NAME_MAX_CHARS:
        raise RefusedError(
            "bad_name",
            f"The name is {len(name)} characters long; names can be at most {NAME_MAX_CHARS} "
            "characters (e.g. Alice Smith).",
        )
    bad = _bad_character(name)
    if bad is not None:
        raise RefusedError(
            "bad_name",
            f"The name contains the invisible or control character U+{ord(bad):04X}; use "
            "letters, digits, spaces and punctuation (e.g. Alice Smith).",
        )
    return name


def check_reason(reason: str) -> str:
    """A do-not-call reason, trimmed: at most :data:`REASON_MAX_CHARS` characters, one line,
    no control or bidi-override characters (a newline would forge a row in ``dnc list``).
    Empty is allowed.

    Raises :class:`~corecall.errors.RefusedError` (reason ``bad_reason``) saying what was
    wrong and what works; nothing is shortened silently."""
    if not isinstance(reason, str):
        raise RefusedError("bad_reason", "The reason must be text.")
    reason = reason.strip()
    if len(reason) > REASON_MAX_CHARS:
        raise RefusedError(
            "bad_reason",
            f"The reason is {len(reason)} characters long; reasons can be at most "
            f"{REASON_MAX_CHARS} characters (e.g. asked not to be called, 2026-11-29).",
        )
    bad = _bad_character(reason)
    if bad is not None:
        raise RefusedError(
            "bad_reason",
            f"The reason contains the invisible or control character U+{ord(bad):04X}; write "
            "it on one line with letters, digits, spaces and punctuation.",
        )
    return reason


#: The largest Telegram user id corecall accepts: the store keeps ids in a signed 64-bit
#: column (Telegram's own ids are far below it).
TELEGRAM_ID_MAX = 2**63 - 1

#: Echoed input (a route code, a plugin name, a number someone typed) is shown at most this
#: long in messages: enough to recognise it, never a wall of text.
ECHO_MAX_CHARS = 32
#: Last line for whole messages (CLI errors): a run of non-space characters longer than this
#: is cut in the middle of the message, and the message itself is cut at
#: :data:`MESSAGE_MAX_CHARS`.
WORD_MAX_CHARS = 120
MESSAGE_MAX_CHARS = 2000


def echo(value: object, limit: int = ECHO_MAX_CHARS) -> str:
    """``value`` quoted for a message that repeats what someone typed: ``repr`` (so control
    characters show as escapes, never act), cut to ``limit`` characters with "…" and the
    full length, e.g. ``'ZZZZ…' (5000 characters)``.

    Every message that echoes input uses this, so one oversized argument cannot turn a
    one-line refusal into pages of text (or a Telegram reply over 4,096 characters).
    """
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[: max(1, limit - 1)] + '…'!r} ({len(text)} characters)"


def as_typed(value: object, limit: int = ECHO_MAX_CHARS) -> str:
    """``value`` as typed when it is short and every character prints as itself (``+1 212
    555 0123``), else :func:`echo`'s quoted, escaped form: a bidi override or an escape
    sequence someone typed never acts on the operator's terminal."""
    text = str(value)
    return text if len(text) <= limit and text.isprintable() else echo(text, limit)


#: A file path (or a dotted config key) is shown at most this long; it stays under
#: :data:`WORD_MAX_CHARS`, so :func:`tame_message` never cuts it again.
PATH_SHOWN_CHARS = 100


def show_path(path: object, limit: int = PATH_SHOWN_CHARS) -> str:
    """A file path (or a config key) for a message: as written when it is short and every
    character prints as itself, else quoted and escaped like :func:`echo`. A path longer
    than ``limit`` keeps its start and its end (the file name says which file) around an
    ellipsis, with the full length, e.g.
    ``'/tmp/pytest-of-root/…/asterisk-etc/extensions.conf' (131 characters)``.
    """
    text = str(path)
    if len(text) <= limit:
        return text if text.isprintable() else repr(text)
    tail = (limit * 3) // 5
    head = max(1, limit - tail - 1)
    return f"{text[:head] + '…' + text[-tail:]!r} ({len(text)} characters)"


def tame_message(message: str) -> str:
    """A message fit to print: every run of non-space characters over
    :data:`WORD_MAX_CHARS` cut (keeping its start, saying how long it was), and the whole
    cut at :data:`MESSAGE_MAX_CHARS`. The last line behind :func:`echo`, for messages built
    by code that forgot to use it (third-party plugins included)."""

    def shorten(match: re.Match[str]) -> str:
        word = match.group(0)
        return f"{word[: WORD_MAX_CHARS // 2]}…({len(word)} characters)"

    tamed = re.sub(rf"\S{{{WORD_MAX_CHARS + 1},}}", shorten, message)
    if len(tamed) > MESSAGE_MAX_CHARS:
        tamed = f"{tamed[: MESSAGE_MAX_CHARS - 40]}… ({len(tamed)} characters in all)"
    return tamed


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when it was cut (for free-text
    details, where losing the record would be worse than losing the tail)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
