"""The default number policy: is this text a phone number corecall may dial?

Pure functions on top of :mod:`phonenumbers`; no I/O, no plugin manager. Two entry points:

* :func:`check_number` - a number an agent asked to call (``/call <number>``).
* :func:`normalize_phone` - an agent's own phone (the one corecall rings first).

Both return a :class:`~corecall.domain.NumberVerdict`. An accepted verdict's ``e164`` is
rebuilt from ASCII digits only (``+`` and 7-15 digits, enforced again by
``NumberVerdict.accept``), so nothing the agent typed besides the digits can ever reach a
channel string. A refused verdict carries one of these stable ``reason`` codes and a
``message`` that says what was wrong and gives an example that works:

``empty``
    ``None``, ``""`` or whitespace only.
``not_a_number``
    No digits (``"hello"``, ``"+"``, ``"()"``), any letter (``"1-800-FLOWERS"``: phonenumbers
    would silently rewrite the letters to digits), any character other than ASCII digits,
    spaces, ``-``, ``.``, ``(``, ``)`` and one leading ``+`` (every Unicode space and dash
    counts as a space and ``-``: see Decisions) (``"++12125550123"``, ``"212/555-0123"``,
    ``"212\u2044555"``, SQL, emoji), control characters inside the text (CR, LF, NUL, tab:
    ``"+12125550123\\r\\nAction: Originate"``), and digits from other scripts (fullwidth
    ``"２１２..."``, Arabic-Indic ``"٢١٢..."``).
``extension``
    A number followed by an extension, pause or wait (``"2125550123 x12"``, ``"ext. 5"``,
    ``";ext=3"``, ``",,9"``, ``"p"``, ``"w"``, ``"#"``, ``"*"``) or preceded by a star/hash
    code (``"*67 2125550123"``). phonenumbers silently drops extensions; corecall refuses
    them so nobody thinks the extension will be keyed in.
``emergency``
    Emergency and crisis numbers: whatever phonenumbers' short-number data calls an
    emergency number in the allowed regions, the default region and (for ``+cc...``) the
    country dialed, plus a fixed list of well-known ones (911, 112, 999, 000, 933, 988, 110,
    119, 100, 101, 102, 108). Also with a national or country prefix: ``"1-911"``,
    ``"+1 911"``, ``"+44 999"``.
``short_code``
    Any other number of 3-6 digits as typed: N11 services (``"411"``, ``"611"``, ``"311"``),
    SMS short codes (``"22222"``), ``"+1411"``.
``invalid``
    phonenumbers says the number is not valid: too short (1-2 digits; ``"555-0123"``, no area
    code), too long (more than 15 digits), unassigned area code or exchange
    (``"+1 212 055 0123"``, N11 area codes), unknown country code. Also valid numbers of a
    type that is not a telephone line corecall dials: PAGER, PERSONAL_NUMBER (NANP 5XX
    "follow-me" numbers, UK 070), UAN, VOICEMAIL and UNKNOWN.
``premium_rate``
    number_type PREMIUM_RATE (``"+1 900 200 0000"``), and anything under +979 (international
    premium rate), valid or not.
``shared_cost``
    number_type SHARED_COST (``"+43 810 123456"``, UK 084x).
``not_in_number_data``
    A well-formed +1 number (NXX-NXX-XXXX, not an N11, premium, toll-free, special-service
    or other-country code) that phonenumbers' data does not list yet: new NANP overlays
    (624, 861, 764...) reach the data months after they open. The agent is told so (not
    "check for a typo"); a route with ``allow_unlisted_nanp = true`` accepts these (with
    ``region`` None and a ``message`` saying why).
``country_not_allowed``
    The number's *region* (``phonenumbers.region_code_for_number``), not its country code,
    is not in ``allowed_regions``: +1 809 (Dominican Republic), +1 876 (Jamaica) and +1 284
    share country code 1 with the US but are refused. Non-geographic "countries" (region
    ``001``: +800, +808, +870, +881/+882/+883 satellite and international networks, +888)
    are always refused, even when :func:`normalize_phone` allows any region.

Decisions:

* Invisible formatting characters (Unicode category Cf: bidi marks, zero-width characters,
  BOM, soft hyphen) are removed first: contact apps wrap copied numbers in them (left-to-
  right embeddings, overrides and marks). Except the right-to-left ones (U+202B, U+202E,
  U+2067, U+200F, U+061C), anywhere: they change the order the digits are shown in
  (``+1212555<U+202E>0123`` displays as ``+12125553210`` and would dial
  ``+12125550123``), so they are refused.
* Input is never repaired into another number: after ``+1`` exactly 10 digits, typed without
  ``+`` in a NANP default region 10 (or 11 starting with 1), and whatever phonenumbers parses
  must consist of exactly the digits typed (plus a national or international prefix when
  typed without ``+``). phonenumbers would read ``+1 123 123 12321`` as ``+12312312321``.
* Order of checks: right-to-left controls -> formatting characters removed, spaces and
  dashes made ASCII -> empty -> control characters -> non-ASCII characters -> extension ->
  letters / other characters / misplaced ``+`` / no digits -> emergency -> short code
  (these two on the raw digits, before parsing) -> too long -> parse -> non-geographic
  country code -> invalid -> premium rate / shared cost / other non-line types -> country.
* Safety checks that talk about the *number* (premium rate, shared cost) come before the
  country check: a premium-rate number in a country that isn't allowed is reported as
  ``premium_rate``, because adding the country to the allowed list would not make it
  callable. Non-geographic country codes are reported before validity because "this is a
  satellite/international network" is more useful than "not valid" for them.
* Surrounding whitespace (any Unicode whitespace, including a trailing newline) is
  stripped; whitespace *inside* the number must be spaces (any of category Zs, read as
  ASCII spaces): a tab or a line break inside is refused.
* Digits from other scripts are refused, not normalized: the agent is asked to type plain
  digits 0-9. Normalizing would be harmless for the dial string but hides copy-and-paste
  from odd sources, and keeps the accepted input alphabet tiny and obvious.
* Spaces and dashes other than ASCII's, which contact apps and word processors put between
  digit groups (every Unicode space separator, category Zs: U+00A0 NO-BREAK SPACE, U+202F
  NARROW NO-BREAK SPACE, U+2009 THIN SPACE...; every dash, category Pd: U+2011
  NON-BREAKING HYPHEN, U+2013 EN DASH...; and U+2212 MINUS SIGN), are read as a space and
  ``-``: they look like them and carry no digit. Not the dashes of right-to-left scripts
  (U+05BE HEBREW PUNCTUATION MAQAF), which reorder the digits shown, nor line or paragraph
  separators (U+2028, U+2029: "send the number on one line"). Any other non-ASCII
  character (a fraction slash, a middle dot, a fullwidth parenthesis) is refused, and the
  message names it so it can be retyped.
* Toll-free numbers (+1 800/888/877/866/855/844/833) are allowed: they cost the caller
  nothing. VOIP numbers are allowed: many customers have them. NANP toll-free numbers have
  region ``US`` in phonenumbers, so they need ``US`` in ``allowed_regions``.
* The parse input is rebuilt as ``[+]digits``, so phonenumbers' own leniency (letters,
  extensions, other scripts' digits) is never relied on; it only sees what we accepted.
* Messages never echo control characters or non-ASCII text back; they name them by
  Unicode code point and name instead. Input that passed the character checks (ASCII
  digits, spaces, ``+-.()``) is echoed as typed when short, as ``[+]digits`` when long.
* The example in every message ("Use a full number like +12125550123 or (212) 555-0123.")
  follows the regions: with ``US`` not allowed it shows phonenumbers' example number for an
  allowed region (national form only when that region is the default region).
* Area code 555 is not a real area code: ``+1 555 765 4321`` is ``invalid``. Numbers with a
  555-01xx *exchange* in a real area code (``+1 212 555 0123``) are valid, so examples and
  tests use those.
* Emergency detection is deliberately broad (prefix match via
  ``connects_to_emergency_number``, e.g. ``"9115"``), but everything of 6 digits or fewer is
  refused anyway; the check only picks the most useful message. ``"1-988"`` comes out as
  ``short_code`` because the NANP data does not list 988 and the fixed list is only applied
  to the digits as typed and after a ``+`` country code.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType
from phonenumbers import shortnumberinfo as _sni
from phonenumbers.phonenumberutil import ValidationResult

from corecall.domain import NumberVerdict

__all__ = [
    "ALLOWED_TYPES",
    "EMERGENCY_NUMBERS",
    "REASONS",
    "NumberFacts",
    "check_number",
    "normalize_phone",
    "number_facts",
    "plain_separators",
]

REASONS = frozenset(
    {
        "empty",
        "not_a_number",
        "extension",
        "emergency",
        "short_code",
        "premium_rate",
        "shared_cost",
        "invalid",
        "country_not_allowed",
        "not_in_number_data",
    }
)

#: Number types corecall dials. Everything else valid is refused (see the module docstring).
ALLOWED_TYPES = frozenset(
    {
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.VOIP,
    }
)

#: Well-known emergency and crisis numbers, refused whatever the region data says.
EMERGENCY_NUMBERS = frozenset(
    {"911", "112", "999", "000", "933", "988", "110", "119", "100", "101", "102", "108"}
)

_TYPE_WORDS = {
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) service number",
    PhoneNumberType.UAN: "a universal access (company switchboard service) number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}

_NON_GEO_REGION = "001"
_INTERNATIONAL_PREMIUM_CC = 979
_MAX_SHORT_DIGITS = 6  # 6 digits or fewer, as typed, is never a full number
_MAX_E164_DIGITS = 15
_MAX_ECHO = 40  # longer input is shown back as its digits only

_PLAIN_RE = re.compile(r"\+?[0-9 ().\-]*")
_EXTENSION_RE = re.compile(
    r"(?:[*#][0-9]*[*#]?[ ().\-]*)?"  # a leading star/hash code: *67, #31#
    r"\+?[0-9 ().\-]*[0-9][0-9 ().\-]*"  # the number itself
    r"(?:\s*(?:;\s*ext\s*=|ext(?:ension)?\.?|x|[#*,;pw])"  # an extension, pause or wait
    r"[0-9 ().\-#*,;pwx=]*)?",  # ... and whatever digits and markers follow it
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- public API


#: What may surround a number and is dropped: spaces (Unicode category Zs: no-break, em,
#: ideographic...), tab, CR and LF. Not the other C0 controls (see check_number).
_BLANKS = " \t\r\n\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"


def check_number(
    text: str | None,
    allowed_regions: Iterable[str] = ("US", "CA"),
    default_region: str = "US",
    *,
    allow_unlisted_nanp: bool = False,
) -> NumberVerdict:
    """Say whether ``text`` is a number an agent may call, and if so its E.164 form.

    ``allowed_regions`` are ISO region codes (``US``, ``CA``, ``GB``...) compared with the
    number's own region, so +1 809 is ``DO``, not ``US``. ``default_region`` is how numbers
    typed without ``+`` are read. ``allow_unlisted_nanp`` (a route's
    ``allow_unlisted_nanp`` setting) accepts well-formed US/Canadian numbers that
    phonenumbers' data does not list yet (see ``not_in_number_data``). Never raises for
    any text.
    """
    return _verdict(text, _regions(allowed_regions), _region(default_region), allow_unlisted_nanp)


def normalize_phone(
    text: str | None,
    allowed_regions: Iterable[str] | None = None,
    default_region: str = "US",
    *,
    allow_unlisted_nanp: bool = False,
) -> NumberVerdict:
    """Check an agent's own phone number: the same rules as :func:`check_number`.

    ``allowed_regions=None`` means any region that is a real country: still refused are
    emergency numbers, short codes, premium-rate, shared-cost and non-line numbers, and
    non-geographic country codes (+800, +881, +882...).
    """
    regions = None if allowed_regions is None else _regions(allowed_regions)
    verdict = _verdict(text, regions, _region(default_region), allow_unlisted_nanp)
    what = NOT_A_LINE.get(verdict.reason or "")
    if what is not None:
        # The /call wording ("in an emergency, call them directly") answers a caller in
        # need; here an admin typed an agent's phone.
        example = _example(regions, _region(default_region))
        return NumberVerdict.refuse(
            verdict.reason or "invalid",
            f"That is {what}, so it can't be an agent's phone. Give the "
            f"agent's own full phone number. {example}",
        )
    return verdict


#: Reason codes of numbers that are not a person's line, in words: never an agent's phone
#: nor a caller ID (corecall.config).
NOT_A_LINE = {
    "emergency": "an emergency number",
    "short_code": "a short code or service number",
    "premium_rate": "a premium-rate number",
    "shared_cost": "a shared-cost number",
}


class NumberFacts(NamedTuple):
    """libphonenumber's reading of one E.164 number: ``number`` (parsed; shared, so never
    modify it) and ``kind``, its ``phonenumbers.PhoneNumberType``."""

    number: phonenumbers.PhoneNumber
    kind: int


#: How many numbers :func:`number_facts` keeps: those of the calls being checked right now.
#: The policy plugins of one ``/call`` (calling hours) ask about the number the number
#: policy has just read, so they take its reading instead of parsing it again (a parse and
#: two type lookups, ~75 µs: issue 11); a number dialed again later is read again.
_FACTS_KEPT = 64
_facts: dict[str, NumberFacts] = {}
_facts_lock = threading.Lock()  # check_number runs on the event loop and on store threads


def _remember(e164: str, number: phonenumbers.PhoneNumber, kind: int) -> NumberFacts:
    facts = NumberFacts(number, kind)  # not a FrozenPhoneNumber: its copy costs ~20 µs
    with _facts_lock:
        _facts.pop(e164, None)
        _facts[e164] = facts
        if len(_facts) > _FACTS_KEPT:
            del _facts[next(iter(_facts))]  # the oldest
    return facts


def number_facts(e164: str) -> NumberFacts | None:
    """What libphonenumber says about ``e164`` (``+`` and digits): the parsed number and its
    number type, the same reading :func:`check_number` made when it accepted the number
    (answered from the last few numbers it read, else parsed now). None when it does not
    parse."""
    with _facts_lock:
        facts = _facts.get(e164)
    if facts is not None:
        return facts
    try:
        number = phonenumbers.parse(e164)
    except NumberParseException:
        return None
    return _remember(e164, number, phonenumbers.number_type(number))


# --------------------------------------------------------------------------- the checks


def _verdict(
    text: object,
    allowed: frozenset[str] | None,
    default_region: str | None,
    allow_unlisted_nanp: bool = False,
) -> NumberVerdict:
    example = _example(allowed, default_region)

    if text is None:
        return _refuse("empty", "No phone number was given.", example)
    if not isinstance(text, str):
        return _refuse("not_a_number", "A phone number must be text.", example)
    # Numbers copied from contact apps come with invisible formatting characters (Unicode
    # category Cf: bidi marks U+202A-U+202E and U+200E/U+200F, zero-width U+200B-U+200D,
    # BOM U+FEFF...), removed, and with spaces and dashes other than ASCII's (no-break
    # space, narrow no-break space, non-breaking hyphen, en dash...), read as " " and "-".
    # None of them carries a digit, so none can change the number dialed.
    if not text.isascii():  # ASCII has none of them: most input skips the scan
        reorders = next((c for c in text if c in _RIGHT_TO_LEFT), None)
        if reorders is not None:
            return _refuse(
                "not_a_number",
                f"The number contains {_char_name(reorders)}: it can show the digits in "
                "another order than they would be dialed. Type the number again, or paste "
                "it without that character.",
                example,
            )
        text = plain_separators(text)
    # Blanks around a pasted number go; any other control character (FS, GS, RS, US, VT,
    # FF, which str.strip() would drop too) is refused wherever it is.
    text = text.strip(_BLANKS)
    if not text:
        return _refuse("empty", "No phone number was given.", example)

    refusal = _check_characters(text, example)
    if refusal is not None:
        return refusal

    plus = text.startswith("+")
    digits = "".join(c for c in text if "0" <= c <= "9")

    # What the agent typed, for messages: only ASCII digits, spaces, "+-.()" are left by now.
    shown = ("+" if plus else "") + digits
    typed = text if len(text) <= _MAX_ECHO else shown

    if len(digits) <= _MAX_SHORT_DIGITS:
        return _check_short(plus, digits, typed, allowed, default_region, example)
    if len(digits) > _MAX_E164_DIGITS:
        return _refuse(
            "invalid",
            f"That number has {len(digits)} digits; phone numbers have at most 15.",
            example,
        )

    refusal = _check_nanp_length(plus, digits, typed, default_region, example)
    if refusal is not None:
        return refusal

    try:
        number = phonenumbers.parse(shown, None if plus else default_region)
    except NumberParseException as exc:
        return _refuse("invalid", _parse_error_message(typed, exc, plus, default_region), example)

    cc = number.country_code or 0
    if phonenumbers.region_code_for_country_code(cc) == _NON_GEO_REGION:
        if cc == _INTERNATIONAL_PREMIUM_CC:
            return _refuse(
                "premium_rate",
                f"{typed} is an international premium-rate number (+979); corecall never "
                "dials premium-rate numbers.",
                example,
            )
        return _refuse(
            "country_not_allowed",
            f"{typed} belongs to an international or satellite network (+{cc}), not to a "
            f"country; corecall doesn't dial those. {_allowed_sentence(allowed)}",
            example,
        )

    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _same_digits(digits, plus, number, default_region):
        # phonenumbers "repairs" some inputs (it strips a national prefix 1 even after +1):
        # never dial a number other than the one typed.
        return _refuse(
            "invalid",
            f"{typed} would be read as {e164}, which is not the number you typed: check it "
            "and send it again.",
            example,
        )
    # One type lookup instead of phonenumbers' is_valid_number + number_type +
    # region_code_for_number (each finds the region again; a DNC import reads a million
    # numbers): is_valid_number(n) is exactly number_type(n) != UNKNOWN (both look the
    # type up in the metadata of the region region_code_for_number(n) gives).
    kind = phonenumbers.number_type(number)
    _remember(e164, number, kind)
    if kind == PhoneNumberType.UNKNOWN:
        if number.country_code == 1:
            return _unlisted_nanp(
                number, typed, e164, plus, allowed, default_region, allow_unlisted_nanp, example
            )
        what = _invalid_message(number, typed, e164, plus, default_region)
        return _refuse("invalid", what, example)

    if kind == PhoneNumberType.PREMIUM_RATE:
        return _refuse(
            "premium_rate",
            f"{e164} is a premium-rate number; corecall never dials premium-rate numbers.",
            example,
        )
    if kind == PhoneNumberType.SHARED_COST:
        return _refuse(
            "shared_cost",
            f"{e164} is a shared-cost number (the caller pays extra); corecall doesn't dial "
            "shared-cost numbers.",
            example,
        )
    if kind not in ALLOWED_TYPES:
        what = _TYPE_WORDS.get(kind, "not a number of a kind corecall dials")
        return _refuse(
            "invalid",
            f"{e164} is {what}; corecall only dials landlines, mobiles, VoIP and toll-free "
            "numbers.",
            example,
        )

    region = phonenumbers.region_code_for_number(number)
    if not region or region == _NON_GEO_REGION or (allowed is not None and region not in allowed):
        where = (
            f"is a {_country(region)} number"
            if region and region != _NON_GEO_REGION
            else "is not a number in any country"
        )
        return _refuse(
            "country_not_allowed", f"{e164} {where}. {_allowed_sentence(allowed)}", example
        )
    return NumberVerdict.accept(e164, region)


#: Bidi controls that make the digits after them (or the whole line) right-to-left, so
#: that they are shown in another order than they are dialed: RLE, RLO, RLI, RLM, ALM.
_RIGHT_TO_LEFT = frozenset("\u202b\u202e\u2067\u200f\u061c")

#: Read as "-" besides the dashes (category Pd): MINUS SIGN, which word processors and
#: spreadsheets put between digit groups.
_MINUS_SIGNS = frozenset("\u2212")


def plain_separators(text: str) -> str:
    """``text`` with invisible formatting characters (category Cf) removed, every space
    (category Zs: U+00A0 NO-BREAK SPACE, U+2007 FIGURE SPACE, U+2009 THIN SPACE, U+202F
    NARROW NO-BREAK SPACE, U+3000 IDEOGRAPHIC SPACE...) made an ASCII space and every dash
    (category Pd: U+2010 HYPHEN, U+2011 NON-BREAKING HYPHEN, U+2013 EN DASH, U+2014 EM
    DASH, U+FF0D FULLWIDTH HYPHEN-MINUS..., and U+2212 MINUS SIGN) an ASCII "-". Dashes of
    right-to-left scripts (U+05BE HEBREW PUNCTUATION MAQAF) are kept, so refused: between
    digits they make the groups after them display in another order than they are dialed.
    Anything else is kept for the character checks. Right-to-left controls are Cf and go
    too: :func:`check_number` refuses them before calling this; a caller that only asks
    "does this word look like part of a number?" gets the refusal when the number is
    checked. Source of the categories: the Unicode Character Database
    (:mod:`unicodedata`)."""
    plain = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if category == "Zs":
            char = " "
        elif category == "Pd" or char in _MINUS_SIGNS:
            if unicodedata.bidirectional(char) not in ("R", "AL"):
                char = "-"
        plain.append(char)
    return "".join(plain)


def _check_characters(text: str, example: str) -> NumberVerdict | None:
    """Refuse anything but ASCII digits, spaces, ``-.()`` and one leading ``+``."""
    if _PLAIN_RE.fullmatch(text) and any("0" <= c <= "9" for c in text):
        return None  # what most input is: none of the checks below can refuse it
    for ch in text:
        category = unicodedata.category(ch)
        if ch != " " and (category[0] == "C" or category in ("Zl", "Zp") or ch in "\t\n\r\v\f"):
            return _refuse(
                "not_a_number",
                f"The number contains a control character or line break ({_char_name(ch)}); "
                "send the number on its own, on one line.",
                example,
            )
    for ch in text:
        if not ch.isascii():
            if ch.isdigit() or unicodedata.category(ch) == "Nd":
                return _refuse(
                    "not_a_number",
                    f"The number contains a digit from another script ({_char_name(ch)}); "
                    "type it with plain digits 0-9.",
                    example,
                )
            return _refuse(
                "not_a_number",
                f"The number contains a character that isn't allowed ({_char_name(ch)}); "
                "use only digits 0-9, spaces, '-', '.', '(', ')' and a leading '+'.",
                example,
            )

    if not _PLAIN_RE.fullmatch(text) and _EXTENSION_RE.fullmatch(text):
        return _refuse(
            "extension",
            "Extensions, pauses and star codes can't be dialed: send just the phone "
            "number, then key in the extension yourself once the call connects.",
            example,
        )

    has_digit = any("0" <= c <= "9" for c in text)
    letter = next((c for c in text if c.isalpha()), None)
    if not has_digit:
        return _refuse("not_a_number", "That isn't a phone number: it has no digits.", example)
    if letter is not None:
        return _refuse(
            "not_a_number",
            f'Phone numbers can\'t contain letters (found "{letter}"); type the digits '
            "(for a number like 1-800-FLOWERS, use the digits from a phone keypad).",
            example,
        )
    other = next((c for c in text if not (c.isdigit() or c in " +().-")), None)
    if other is not None:
        return _refuse(
            "not_a_number",
            f'The number contains a character that isn\'t allowed ("{other}"); use only '
            "digits 0-9, spaces, '-', '.', '(', ')' and a leading '+'.",
            example,
        )
    if text.count("+") > 1 or (text.count("+") == 1 and not text.startswith("+")):
        return _refuse(
            "not_a_number",
            "A '+' may only appear once, at the very start of the number.",
            example,
        )
    return None


def _check_short(
    plus: bool,
    digits: str,
    typed: str,
    allowed: frozenset[str] | None,
    default_region: str | None,
    example: str,
) -> NumberVerdict:
    """Numbers of 6 digits or fewer: emergency, short code or too short."""
    if _is_emergency(plus, digits, allowed, default_region):
        return _refuse(
            "emergency",
            f"{typed} is an emergency or crisis number. corecall never dials emergency "
            "services: in an emergency, call them directly from a phone.",
            example,
        )
    if len(digits) >= 3:
        return _refuse(
            "short_code",
            f"{typed} is a short code or service number (like 411 or an SMS short code), not "
            "a full phone number; corecall only dials full numbers with an area code.",
            example,
        )
    return _refuse("invalid", f"{typed} is too short to be a phone number.", example)


def _is_emergency(
    plus: bool, digits: str, allowed: frozenset[str] | None, default_region: str | None
) -> bool:
    regions = set(allowed or ())
    if default_region:
        regions.add(default_region)
    candidates = {digits}
    if plus:  # "+1 911", "+44 999": strip a country code, check that country's data too
        for size in (1, 2, 3):
            if len(digits) > size:
                found = phonenumbers.region_codes_for_country_code(int(digits[:size]))
                if found:
                    candidates.add(digits[size:])
                    regions.update(r for r in found if r != _NON_GEO_REGION)
    if candidates & EMERGENCY_NUMBERS:
        return True
    for region in list(regions):  # "1-911": strip a national prefix, for the region data only
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = meta.national_prefix if meta is not None else None
        if prefix:
            candidates.update(c[len(prefix) :] for c in list(candidates) if c.startswith(prefix))
    candidates.discard("")
    for region in regions:
        for number in candidates:
            try:
                if _sni.connects_to_emergency_number(number, region):
                    return True
            except Exception:  # pragma: no cover - data quirks must never crash the policy
                continue
    return False


# --------------------------------------------------------------------------- NANP (+1)

#: NANP area codes that are not geographic and never will be: N11 service codes are
#: handled separately; these are toll-free (8XX reserved for it), premium rate (900, 976),
#: personal communications (5XX), Canadian non-geographic (600, 622), carrier and
#: government codes (456, 700, 710), test/fiction (555) and codes reserved by NANPA
#: (37X, 96X, N9X, 950/958/959). Source: NANPA, "NPA Allocation Plan and Assignment
#: Guidelines" and the list of non-geographic NPAs at nationalnanpa.com.
_NANP_TOLL_FREE = frozenset({"800", "822", "833", "844", "855", "866", "877", "888"}) | {
    f"88{d}" for d in "012345679"
}
_NANP_PREMIUM = frozenset({"900", "976"})
_NANP_SPECIAL = frozenset(
    {"456", "555", "600", "622", "700", "710", "950", "958", "959"}
    | {
        f"5{d}"
        for d in (
            "21 23 24 25 26 27 28 29 32 35 38 42 43 45 46 47 49 50 52 53 54 56 58 69 78".split()
        )
    }
)


def _check_nanp_length(
    plus: bool, digits: str, typed: str, default_region: str | None, example: str
) -> NumberVerdict | None:
    """After +1 exactly 10 digits; typed without + in a NANP region, 10 (or 11 with a 1).

    phonenumbers "repairs" wrong lengths (``+1 123 123 12321`` becomes ``+12312312321``,
    someone else's line), so the count is checked on the digits as typed, before parsing.
    """
    if plus:
        if not digits.startswith("1"):
            return None
        count = len(digits) - 1
        if count == 10:
            return None
        return _refuse(
            "invalid",
            f"{typed} has {count} digit{'s' if count != 1 else ''} after +1; US and Canadian "
            "numbers have exactly 10 after +1 (a 3-digit area code and a 7-digit number).",
            example,
        )
    if not default_region or phonenumbers.country_code_for_region(default_region) != 1:
        return None
    if digits.startswith("011"):  # international prefix: +cc follows, checked after parsing
        return None
    count = len(digits) - 1 if digits.startswith("1") else len(digits)
    if count == 10:
        return None
    if count == 7 and not digits.startswith("1"):
        what = (
            f"{typed} is missing its area code: US and Canadian numbers have 10 digits, "
            "area code included."
        )
    else:
        what = (
            f"{typed} has {len(digits)} digits; US and Canadian numbers have 10 (area code "
            "included), or 11 when they start with 1."
        )
    return _refuse("invalid", what + _read_as(False, default_region), example)


def _same_digits(
    digits: str, plus: bool, number: phonenumbers.PhoneNumber, default_region: str | None
) -> bool:
    """Is the parsed number made of exactly the digits typed, plus only a known prefix?"""
    national = phonenumbers.national_significant_number(number)
    cc = str(number.country_code)
    if plus:
        return digits == cc + national
    if not digits.endswith(national):
        return False
    prefix = digits[: len(digits) - len(national)]
    if not prefix:
        return True
    meta = phonenumbers.PhoneMetadata.metadata_for_region(default_region or "")
    if meta is None:
        return False
    national_prefix = re.escape(meta.national_prefix or "")
    idd = meta.international_prefix or "(?!)"
    pattern = f"(?:{national_prefix})|(?:{idd}){cc}(?:{national_prefix})?"
    return re.fullmatch(pattern, prefix) is not None


@functools.lru_cache(maxsize=1)
def _nanp_other_countries() -> dict[str, str]:
    """Area codes phonenumbers assigns to NANP countries other than the US and Canada."""
    found: dict[str, str] = {}
    for region in phonenumbers.region_codes_for_country_code(1):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if region in ("US", "CA") or meta is None or not meta.leading_digits:
            continue
        pattern = re.compile(meta.leading_digits)
        for npa in range(200, 1000):
            if pattern.fullmatch(str(npa)):
                found[str(npa)] = region
    return found


def _nanp_problem(npa: str, nxx: str) -> tuple[str, str] | None:
    """Why a 10-digit NANP number unknown to the data can never be dialed, if it can't."""
    if npa[0] in "01" or nxx[0] in "01":
        return (
            "invalid",
            "US and Canadian area codes and exchanges never start with 0 or 1. Check for a typo.",
        )
    if npa[1:] == "11":
        return "invalid", f"{npa} is a service code (N11), not an area code. Check for a typo."
    if nxx[1:] == "11":
        return "invalid", f"its exchange {nxx} is a service code (N11). Check for a typo."
    if npa in _NANP_PREMIUM:
        return "premium_rate", "it is a premium-rate number; corecall never dials those."
    if npa in _NANP_TOLL_FREE:
        return (
            "invalid",
            f"area code {npa} is reserved for toll-free numbers, and this one isn't in use.",
        )
    if npa in _nanp_other_countries():
        region = _nanp_other_countries()[npa]
        return "country_not_allowed", f"area code {npa} belongs to {_country(region)}."
    if npa[1] == npa[2] or npa[1] == "9" or npa[:2] in ("37", "96") or npa in _NANP_SPECIAL:
        return (
            "invalid",
            f"area code {npa} is reserved for special services, not a geographic area code.",
        )
    return None


def _unlisted_nanp(
    number: phonenumbers.PhoneNumber,
    typed: str,
    e164: str,
    plus: bool,
    allowed: frozenset[str] | None,
    default_region: str | None,
    allow: bool,
    example: str,
) -> NumberVerdict:
    """A +1 number phonenumbers calls invalid: a typo, a special code, or just too new."""
    national = phonenumbers.national_significant_number(number)
    if len(national) != 10:
        return _refuse(
            "invalid", _invalid_message(number, typed, e164, plus, default_region), example
        )
    npa, nxx = national[:3], national[3:6]
    problem = _nanp_problem(npa, nxx)
    if problem is not None:
        reason, why = problem
        return _refuse(reason, f"{e164} can't be dialed: {why}", example)
    if allowed is not None and not ({"US", "CA"} & allowed):
        return _refuse(
            "country_not_allowed",
            f"{e164} would be a US or Canadian number. {_allowed_sentence(allowed)}",
            example,
        )
    if not allow:
        return _refuse(
            "not_in_number_data",
            f"{e164} is well formed, but area code {npa} (or its exchange {nxx}) is not in "
            f"corecall's number data yet (phonenumbers {phonenumbers.__version__}); new area "
            "codes take months to reach it. If the number is right, ask your admin to allow "
            "new US and Canadian numbers on this route.",
            example,
        )
    return NumberVerdict(
        ok=True,
        e164=NumberVerdict.accept(e164).e164,
        region=None,
        message=(
            f"{e164} is not in the number data yet (area code {npa}); dialed because this "
            "route allows new US and Canadian numbers."
        ),
    )


# --------------------------------------------------------------------------- messages


#: Refusals about what the number IS (not how it was written): "Use a full number like..."
#: would be beside the point after them.
_NO_EXAMPLE = frozenset(
    {"emergency", "premium_rate", "shared_cost", "country_not_allowed", "not_in_number_data"}
)


def _refuse(reason: str, what: str, example: str) -> NumberVerdict:
    if reason in _NO_EXAMPLE:
        return NumberVerdict.refuse(reason, what)
    return NumberVerdict.refuse(reason, f"{what} {example}")


def _parse_error_message(
    typed: str, exc: NumberParseException, plus: bool, default_region: str | None
) -> str:
    if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
        if plus:
            return f"{typed} doesn't start with a known country code."
        return f"{typed} has no country code; start it with + and the country code."
    if exc.error_type == NumberParseException.TOO_LONG:
        what = f"{typed} is too long to be a phone number."
    else:
        what = f"{typed} is too short to be a phone number."
    return what + _read_as(plus, default_region)


def _invalid_message(
    number: phonenumbers.PhoneNumber,
    typed: str,
    e164: str,
    plus: bool,
    default_region: str | None,
) -> str:
    reason = phonenumbers.is_possible_number_with_reason(number)
    national = phonenumbers.national_significant_number(number)
    if number.country_code == 1 and not plus and len(national) == 7:
        return (
            f"{typed} is missing its area code: US and Canadian numbers have 10 digits, "
            "area code included."
        )
    if reason in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        what = f"{typed} is too short: it is missing digits."
    elif reason == ValidationResult.TOO_LONG:
        what = f"{typed} is too long: it has extra digits."
    elif number.country_code == 1:
        what = f"{e164} isn't a real number: its area code or exchange isn't in use."
    else:
        what = f"{e164} isn't a valid {_country(_main_region(number))} number."
    return what + _read_as(plus, default_region)


def _main_region(number: phonenumbers.PhoneNumber) -> str | None:
    return phonenumbers.region_code_for_country_code(number.country_code or 0)


def _read_as(plus: bool, default_region: str | None) -> str:
    """Remind that numbers typed without ``+`` are read as the default region's."""
    if plus or not default_region:
        return " Check for a typo."
    return (
        f" Check for a typo; numbers typed without + are read as {_country(default_region)} "
        "numbers, so start others with + and the country code."
    )


def _allowed_sentence(allowed: frozenset[str] | None) -> str:
    if allowed is None:
        return "corecall only dials numbers in a country."
    if not allowed:
        return "No countries are allowed for calls."
    names = [_country(r) for r in sorted(allowed)]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"corecall only dials numbers in {listed}."


def _country(region: str | None) -> str:
    if not region or region == _NON_GEO_REGION:
        return "no country"
    name = _country_name(region)
    return f"{name} ({region})" if name else region


def _country_name(region: str) -> str:
    return _country_names().get(region, "")


@functools.cache
def _country_names() -> dict[str, str]:
    """English country names by region code, from phonenumbers' locale table.

    That table is ``phonenumbers/geodata/locale.py``; importing it the usual way (through
    ``phonenumbers.geocoder``) first runs ``phonenumbers.geodata/__init__``, which loads the
    per-prefix geocoding data corecall never uses: 98 MiB of RSS and over a second of start-up
    (measured, docs/benchmarks.md). So the one file is loaded on its own, the first time a
    message names a country, and only the English names are kept (~250 short strings)."""
    try:
        path = Path(phonenumbers.__file__).with_name("geodata") / "locale.py"
        spec = importlib.util.spec_from_file_location("phonenumbers.geodata.locale", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        table = module.LOCALE_DATA
    except Exception:  # pragma: no cover - the data layout is not a public API
        try:
            from phonenumbers.geocoder import (  # type: ignore[attr-defined,no-redef]
                LOCALE_DATA as table,  # the costly way
            )
        except Exception:
            return {}
    names: dict[str, str] = {}
    for region, by_language in table.items():
        name = by_language.get("en", "")
        for _ in range(3):  # entries like "*aa" point at another language's entry
            if not isinstance(name, str) or not name.startswith("*"):
                break
            name = by_language.get(name[1:], "")
        if isinstance(name, str) and name and not name.startswith("*"):
            names[region] = name
    return names


@functools.lru_cache(maxsize=64)
def _example(allowed: frozenset[str] | None, default_region: str | None) -> str:
    """ "Use a full number like ..." for a region the caller may actually dial."""
    if allowed is None:
        region = default_region
    elif default_region in allowed:
        region = default_region
    else:
        region = min(allowed) if allowed else None
    if region in (None, "US") or region not in phonenumbers.SUPPORTED_REGIONS:
        return "Use a full number like +12125550123 or (212) 555-0123."
    number = phonenumbers.example_number(region)
    if number is None:  # pragma: no cover - every supported region has an example
        return "Use a full number like +12125550123 or (212) 555-0123."
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if region != default_region:  # its national form would be read as another country's
        return f"Use a full number like {e164}."
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return f"Use a full number like {e164} or {national}."


def _char_name(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}".rstrip()


# --------------------------------------------------------------------------- arguments


def _regions(regions: Iterable[str]) -> frozenset[str]:
    if isinstance(regions, str):  # ("US") is a str, not a tuple: don't split it into letters
        regions = regions.replace(",", " ").split()
    return frozenset(str(r).strip().upper() for r in regions if str(r).strip())


def _region(region: str | None) -> str | None:
    region = (region or "").strip().upper()
    return region or None
