"""The default number policy: corecall.numbers.check_number and normalize_phone."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corecall.domain import NumberVerdict
from corecall.numbers import REASONS, check_number, normalize_phone

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused(text, reason, **kwargs):
    verdict = check_number(text, **kwargs)
    assert not verdict.ok, verdict
    assert verdict.reason == reason, (text, verdict)
    assert verdict.e164 is None
    assert verdict.message
    return verdict


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    "text",
    [
        "+12125550123",
        "(212) 555-0123",
        "212-555-0123",
        "1 212 555 0123",
        "2125550123",
        "+1 212 555 0123",
        "+1-212-555-0123",
        "212.555.0123",
        "+1 (212) 555-0123",
        "1-212-555-0123",
        "12125550123",
        "  2125550123  ",
        "2125550123\n",  # surrounding whitespace is stripped
        "011 1 212 555 0123",  # US international prefix
        # Invisible formatting characters (category Cf) from contact apps are removed:
        "\u202a+1 212 555 0123\u202c",  # LEFT-TO-RIGHT EMBEDDING ... POP DIRECTIONAL FORMATTING
        "\u200e+1 (212) 555-0123\u200e",  # LEFT-TO-RIGHT MARK
        "\ufeff+12125550123",  # BOM / ZERO WIDTH NO-BREAK SPACE
        "212\u200b5550123",  # zero-width space
        "\u202d+1 (212) 555-0123\u202c",  # LEFT-TO-RIGHT OVERRIDE ... POP (copied on iOS)
        "\u2066+12125550123\u2069",  # LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE
        "+1\u00ad212\u00ad555\u00ad0123",  # soft hyphens
        "\u2060212 555 0123",  # WORD JOINER
        # Spaces and dashes other than ASCII's, from contact apps and word processors
        # (tester5: an Apple contact card's copy, the agent sees ordinary spaces):
        "\u202a+1\u00a0(212)\u00a0555-0123\u202c",  # NO-BREAK SPACEs, LRE ... PDF
        "212\u00a0555\u00a00123",  # NO-BREAK SPACE
        "+1\u202f212\u202f555\u202f0123",  # NARROW NO-BREAK SPACE
        "+1\u2009212\u2009555\u20090123",  # THIN SPACE
        "212\u2007555\u20070123",  # FIGURE SPACE
        "+1\u3000212\u3000555\u30000123",  # IDEOGRAPHIC SPACE
        "212\u2011555\u20110123",  # NON-BREAKING HYPHEN
        "212\u2010555\u20100123",  # HYPHEN
        "212\u2013555\u20130123",  # EN DASH
        "+1\u2012212\u2012555\u20120123",  # FIGURE DASH
        "+1 \u2212 212 \u2212 555 \u2212 0123",  # MINUS SIGN (Sm, not Pd)
        "212\uff0d555\uff0d0123",  # FULLWIDTH HYPHEN-MINUS
        "\u00a0+1 (212) 555\u20110123\u00a0",  # around and inside
    ],
)
def test_us_formats_are_accepted(text):
    verdict = check_number(text)
    assert verdict.ok, verdict
    assert verdict.e164 == "+12125550123"
    assert verdict.region == "US"
    assert verdict.reason is None


@pytest.mark.parametrize(
    ("text", "e164", "region"),
    [
        ("+1 800 234 5678", "+18002345678", "US"),  # toll-free is allowed
        ("1-888-234-5678", "+18882345678", "US"),
        ("(613) 555-0123", "+16135550123", "CA"),
        ("+1 416 555 0123", "+14165550123", "CA"),
        ("+1 650 234 5678", "+16502345678", "US"),
    ],
)
def test_other_allowed_numbers(text, e164, region):
    verdict = check_number(text)
    assert verdict.ok, verdict
    assert (verdict.e164, verdict.region) == (e164, region)


def test_allowed_regions_and_default_region_are_honoured():
    verdict = check_number("020 7946 0000", allowed_regions=["GB"], default_region="GB")
    assert (verdict.ok, verdict.e164, verdict.region) == (True, "+442079460000", "GB")
    assert check_number("+442079460000", allowed_regions=("gb",)).ok  # case-insensitive
    assert check_number("+442079460000", allowed_regions="GB").ok  # a lone string is one region
    refused("+12125550123", "country_not_allowed", allowed_regions=["GB"])
    refused("+16135550123", "country_not_allowed", allowed_regions=["US"])
    refused("+12125550123", "country_not_allowed", allowed_regions=[])


def test_accept_returns_a_verdict_with_json():
    verdict = check_number("212-555-0123")
    assert isinstance(verdict, NumberVerdict)
    assert verdict.as_json() == {"ok": True, "e164": "+12125550123"}


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize("text", [None, "", " ", "   \t  ", "\n", "\u00a0\u2003"])
def test_empty(text):
    refused(text, "empty")


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "call me",
        "1-800-FLOWERS",
        "1800FLOWERS",
        "212555PIZZA",
        "tel:+12125550123",
        "+",
        "++12125550123",
        "+ +1 212 555 0123",
        "1+2125550123",
        "()",
        "---",
        "📞 2125550123",
        "2125550123 ☎",
        "'; DROP TABLE calls; --",
        "2125550123; DROP TABLE agents",
        "212/555-0123",
        "212_555_0123",
        "+12125550123\r\nAction: Originate",
        "+12125550123\nChannel: PJSIP/evil",
        "\x1c+12125550107\x1f",  # C0 separators at the ends: refused, not stripped
        "+12125550107\x0c",
        "\x0b+12125550107",
        "+12125550107\x1e",
        "2125550123\rx",
        "2125550123\x00",
        "\x002125550123",
        "212\x00555\x000123",
        "212\t555\t0123",
        "212\x0b555 0123",
        "212\u2028555 0123",  # line separator
        "２１２５５５０１２３",  # fullwidth digits
        "٢١٢٥٥٥٠١٢٣",  # Arabic-Indic digits
        "۲۱۲۵۵۵۰۱۲۳",  # extended Arabic-Indic digits
        "२१२५५५०१२३",  # Devanagari digits
        "212\u2044555\u20440123",  # FRACTION SLASH: not a space or a dash
        "212\u00b7555\u00b70123",  # MIDDLE DOT
        "212\u05be555\u05be0123",  # HEBREW PUNCTUATION MAQAF: a right-to-left dash
        "212\u2029555 0123",  # paragraph separator (Zp, not a space)
        "\u00a0\u2011\u00a0",  # spaces and a dash: no digits
        "+１２１２５５５０１２３",
    ],
)
def test_not_a_number(text):
    refused(text, "not_a_number")


def test_not_a_number_messages_are_specific():
    assert "letters" in refused("1-800-FLOWERS", "not_a_number").message
    assert "plain digits 0-9" in refused("２１２５５５０１２３", "not_a_number").message
    assert "FULLWIDTH DIGIT TWO" in refused("２１２５５５０１２３", "not_a_number").message
    control = refused("+12125550123\r\nAction: Originate", "not_a_number").message
    assert "control character" in control
    assert "\r" not in control and "\n" not in control and "Originate" not in control
    assert "no digits" in refused("+", "not_a_number").message
    assert "'+'" in refused("++12125550123", "not_a_number").message


@pytest.mark.parametrize(
    "text",
    [
        "2125550123 x12",
        "2125550123x12",
        "2125550123 X 12",
        "212-555-0123 ext. 5",
        "212-555-0123 ext5",
        "2125550123ext5",
        "2125550123 extension 12",
        "+12125550123;ext=3",
        "+1 212 555 0123 ; ext = 3",
        "2125550123,,9",
        "2125550123,",
        "2125550123;",
        "2125550123#",
        "2125550123#123",
        "2125550123*5",
        "2125550123p123",
        "2125550123 P 123",
        "2125550123w",
        "2125550123w123",
        "2125550123pw1,2",
        "*67 212 555 0123",
        "*672125550123",
        "#31#2125550123",
        "(212) 555-0123 x 101",
    ],
)
def test_extension(text):
    verdict = refused(text, "extension")
    assert "Extensions" in verdict.message


@pytest.mark.parametrize(
    "text",
    [
        "911",
        "1-911",
        "1 911",
        "+1911",
        "+1 911",
        "+1-911",
        "(911)",
        "9 1 1",
        "112",
        "+1 112",
        "999",
        "000",
        "933",
        "988",
        "110",
        "119",
        "+44 999",
        "+44 112",
        "+61 000",
        "+49 110",
    ],
)
def test_emergency(text):
    verdict = refused(text, "emergency")
    assert "never dials emergency" in verdict.message


@pytest.mark.parametrize(
    "text",
    ["411", "611", "311", "211", "511", "711", "811", "22222", "12345", "123456", "+1411", "1000"],
)
def test_short_code(text):
    refused(text, "short_code")


@pytest.mark.parametrize(
    "text",
    [
        "+19002000000",
        "+1 900 200 0000",
        "1-900-234-5678",
        "(900) 234-5678",
        "+979 1234 5678",  # international premium rate, not even valid
        "+979123456789",  # international premium rate, valid
        "+44 909 876 5432",  # premium in a country that isn't allowed: premium wins
        "+43 900 123456",
    ],
)
def test_premium_rate(text):
    verdict = refused(text, "premium_rate")
    assert "premium-rate" in verdict.message


@pytest.mark.parametrize(
    "text",
    ["+43 810 123456", "+41 840 123 456", "+61 1300 123 456", "+971 700 012345", "+32 78 79 12 34"],
)
def test_shared_cost(text):
    verdict = refused(text, "shared_cost")
    assert "shared-cost" in verdict.message


@pytest.mark.parametrize(
    "text",
    [
        "1",
        "12",
        "+1",
        "555-0123",  # seven digits, no area code
        "5550123",
        "+1 212 055 0123",  # exchange can't start with 0
        "+12121550123",  # ... nor with 1
        "+1 211 555 0123",  # N11 area codes
        "+1 411 555 0123",
        "+1 911 555 0123",
        "+1 555 765 4321",  # 555 is not a geographic area code
        "(555) 765-4321",
        "+1 700 234 5678",
        "12345678901234567890",  # 20 digits
        "+1234567890123456",  # 16 digits
        "2125550123 2125550123",
        "21255501234",
        "+0 212 555 0123",
        "+999 1234 5678",  # unassigned country code
        "+44 20 7946 000",
        "+1 500 234 5678",  # personal (follow-me) number: not a line
        "+1 533 234 5678",
        "+44 7640 123456",  # pager
        "+44 70 1234 5678",  # UK personal number
    ],
)
def test_invalid(text):
    refused(text, "invalid")


def test_invalid_messages_are_specific():
    assert "area code" in refused("555-0123", "invalid").message
    assert "15" in refused("12345678901234567890", "invalid").message
    assert "pager" in refused("+44 7640 123456", "invalid").message
    assert "+ and the country code" in refused("020 7946 0000", "invalid").message


@pytest.mark.parametrize(
    ("text", "region_word"),
    [
        ("+1 809 555 0123", "Dominican Republic (DO)"),
        ("+1 876 234 5678", "Jamaica (JM)"),
        ("+1 284 496 1234", "VG"),
        ("+1 473 403 1234", "GD"),
        ("+1 268 460 1234", "AG"),
        ("+44 20 7946 0000", "United Kingdom (GB)"),
        ("+52 55 1234 5678", "MX"),
        ("011 44 20 7946 0000", "GB"),
        ("+881 612 345 678", "+881"),  # satellite: region 001
        ("+882 345678901", "+882"),
        ("+883 510012345", "+883"),
        ("+800 1234 5678", "+800"),
        ("+870 301 234 567", "+870"),
    ],
)
def test_country_not_allowed(text, region_word):
    message = refused(text, "country_not_allowed").message
    assert region_word in message
    assert "United States (US)" in message or "country" in message


def test_country_message_lists_the_allowed_countries():
    message = refused("+18095550123", "country_not_allowed").message
    assert "Canada (CA) and United States (US)" in message


def test_every_message_about_the_writing_has_an_example_that_works():
    for text in ["", "hello", "2125550123 x1", "411", "555-0123", "+1 123 123 12321"]:
        verdict = check_number(text)
        assert "Use a full number like +12125550123" in verdict.message
        assert check_number("+12125550123").ok


@pytest.mark.parametrize(
    "text",
    ["911", "+1 911", "+19002000000", "+43 810 123456", "+44 20 7946 0000", "+1 809 555 0123",
     "+1 624 305 1111"],
)  # fmt: skip
def test_messages_about_what_the_number_is_have_no_irrelevant_example(text):
    assert "Use a full number" not in check_number(text).message


@pytest.mark.parametrize(
    ("text", "what"),
    [("911", "an emergency number"), ("+44 999", "an emergency number"),
     ("411", "a short code"), ("+1 900 200 0000", "a premium-rate number")],
)  # fmt: skip
def test_agent_phone_refusals_speak_of_the_agent_phone(text, what):
    message = normalize_phone(text).message
    assert what in message and "can't be an agent's phone" in message
    assert "in an emergency" not in message


def test_example_follows_the_allowed_region():
    verdict = check_number("x", allowed_regions=["GB"], default_region="GB")
    assert "+44" in verdict.message


def test_non_string_input_is_refused():
    assert check_number(2125550123).reason == "not_a_number"  # type: ignore[arg-type]


def test_very_long_input_is_not_echoed():
    text = "2" + " " * 10_000 + "125550123"
    verdict = check_number(text)
    assert verdict.ok and verdict.e164 == "+12125550123"
    verdict = check_number("1" * 10_000)
    assert verdict.reason == "invalid" and len(verdict.message) < 300


# --------------------------------------------------------------------------- never repaired


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("+1 123 123 12321", 11),  # phonenumbers reads this as +1 231 231 2321
        ("+1 212 555 01234", 11),
        ("+11 212 555 0123", 11),  # a doubled 1
        ("+1 1 212 555 0123", 11),
        ("+1-212-555-012", 9),
        ("+1 212 555", 6),
        ("+1212555012345", 12),
    ],
)
def test_plus_one_needs_exactly_ten_digits(text, count):
    message = refused(text, "invalid").message
    assert f"has {count} digits after +1" in message
    assert "exactly 10" in message


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("1 123 123 12321", 12),
        ("212 555 01234", 11),
        ("1 1 212 555 0123", 12),
        ("21 255 501 2", 9),
    ],
)
def test_us_national_input_needs_ten_digits(text, count):
    message = refused(text, "invalid").message
    assert f"has {count} digits" in message
    assert "10 (area code included), or 11 when they start with 1" in message


@pytest.mark.parametrize(
    ("text", "kwargs"),
    [
        ("+1 123 123 12321", {}),
        ("+44 20 7946 00000", {"allowed_regions": ["GB"]}),  # one digit too many
        ("+44 0 20 7946 0000", {"allowed_regions": ["GB"]}),  # national 0 after +44
        ("+49 030 123456", {"allowed_regions": ["DE"]}),
        ("+1 1 212 555 0123", {}),
    ],
)
def test_plus_input_is_never_repaired_into_another_number(text, kwargs):
    """Whatever the verdict, an accepted +number is made of exactly the digits typed."""
    verdict = check_number(text, **kwargs)
    typed = "+" + "".join(c for c in text if c.isdigit())
    assert not verdict.ok or verdict.e164 == typed, verdict


@FAST
@given(st.from_regex(r"\A\+[0-9]{7,15}\Z"))
def test_accepted_plus_numbers_are_the_digits_typed(text):
    verdict = check_number(text, allowed_regions=phonenumbers_regions())
    assert not verdict.ok or verdict.e164 == text, verdict


def phonenumbers_regions():
    import phonenumbers

    return sorted(phonenumbers.SUPPORTED_REGIONS)


# --------------------------------------------------------------------------- characters


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("212\u2044555\u20440123", "U+2044 FRACTION SLASH"),
        ("212\u05be555\u05be0123", "U+05BE HEBREW PUNCTUATION MAQAF"),
        ("212\uff08555\uff090123", "U+FF08 FULLWIDTH LEFT PARENTHESIS"),
        ("212/555-0123", '"/"'),
        ("212_555_0123", '"_"'),
        ("+1 212 555 0123!", '"!"'),
        ("212\u2028555 0123", "U+2028 LINE SEPARATOR"),
        ("212\t555\t0123", "U+0009"),
        ("2125550123 \u260e", "U+260E BLACK TELEPHONE"),
        ("1-800-FLOWERS", '"F"'),
    ],
)
def test_refused_characters_are_named(text, named):
    assert named in refused(text, "not_a_number").message


# --------------------------------------------------------------------------- unlisted NANP


NEW_NANP = ["+1 624 305 1111", "+1 861 234 5678", "+1 764 234 5678", "(624) 305-1111"]


@pytest.mark.parametrize("text", NEW_NANP)
def test_new_nanp_area_codes_are_not_called_typos(text):
    message = refused(text, "not_in_number_data").message
    assert "not in corecall's number data" in message
    assert "typo" not in message
    assert "ask your admin" in message


@pytest.mark.parametrize("text", NEW_NANP)
def test_a_route_may_allow_new_nanp_numbers(text):
    verdict = check_number(text, allow_unlisted_nanp=True)
    assert verdict.ok, verdict
    digits = "".join(c for c in text if c.isdigit())
    assert verdict.e164 == "+1" + digits[-10:]
    assert "not in the number data" in verdict.message


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ("+1 911 234 5678", "invalid", "N11"),  # N11 as an area code
        ("+1 624 911 5678", "invalid", "N11"),  # N11 as an exchange
        ("+1 624 411 5678", "invalid", "N11"),
        ("+1 976 234 5678", "premium_rate", "premium-rate"),
        ("+1 900 234 5678", "premium_rate", "premium-rate"),
        ("+1 822 234 5678", "invalid", "toll-free"),  # reserved toll-free codes
        ("+1 880 234 5678", "invalid", "toll-free"),
        ("+1 555 234 5678", "invalid", "special services"),
        ("+1 700 234 5678", "invalid", "special services"),
        ("+1 456 234 5678", "invalid", "special services"),
        ("+1 370 234 5678", "invalid", "special services"),
        ("+1 296 234 5678", "invalid", "special services"),  # N9X: expansion
        ("+1 545 234 5678", "invalid", "special services"),  # personal communications
        ("+1 624 055 1111", "invalid", "0 or 1"),
        ("+1 658 234 5678", "country_not_allowed", "Jamaica (JM)"),  # other NANP countries
        ("+1 809 234 5678", "country_not_allowed", "Dominican Republic (DO)"),
        ("911", "emergency", "emergency"),
        ("+1 911", "emergency", "emergency"),
        ("411", "short_code", "short code"),
    ],
)
def test_the_nanp_allowance_still_refuses_special_numbers(text, reason, words):
    verdict = refused(text, reason, allow_unlisted_nanp=True)
    assert words in verdict.message


def test_the_nanp_allowance_needs_us_or_canada_allowed():
    refused(
        "+1 624 305 1111", "country_not_allowed", allowed_regions=["GB"], allow_unlisted_nanp=True
    )
    assert check_number("+1 624 305 1111", allowed_regions=["CA"], allow_unlisted_nanp=True).ok


def test_phonenumbers_is_recent():
    """The number data ages: keep phonenumbers at its newest release (pyproject's floor)."""
    import phonenumbers

    major, minor, patch = (int(x) for x in phonenumbers.__version__.split(".")[:3])
    assert (major, minor, patch) >= (9, 0, 43)


# --------------------------------------------------------------------------- normalize_phone


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("(212) 555-0123", "+12125550123"),
        ("+44 20 7946 0000", "+442079460000"),
        ("+44 7911 123456", "+447911123456"),
        ("+1 809 555 0123", "+18095550123"),
        ("+49 30 123456", "+4930123456"),
    ],
)
def test_normalize_phone_accepts_any_country(text, e164):
    verdict = normalize_phone(text)
    assert verdict.ok, verdict
    assert verdict.e164 == e164


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("911", "emergency"),
        ("+44 999", "emergency"),
        ("411", "short_code"),
        ("+1 900 200 0000", "premium_rate"),
        ("+43 810 123456", "shared_cost"),
        ("+881 612 345 678", "country_not_allowed"),
        ("+979 123456789", "premium_rate"),
        ("2125550123 x5", "extension"),
        ("", "empty"),
        ("+1212\r\n5550123", "not_a_number"),
    ],
)
def test_normalize_phone_refusals(text, reason):
    verdict = normalize_phone(text)
    assert not verdict.ok
    assert verdict.reason == reason


def test_normalize_phone_with_allowed_regions():
    assert normalize_phone("+442079460000", allowed_regions=["GB"]).ok
    assert normalize_phone("+12125550123", allowed_regions=["GB"]).reason == "country_not_allowed"


# --------------------------------------------------------------------------- properties

phone_like = st.from_regex(
    r"\A[ +]?\+?[0-9 ().\-]{0,22}(?:[ ]?(?:x|ext\.?|;ext=|,|#|\*|p|w)[0-9]{0,4})?\Z"
)
nanp = st.builds(
    lambda a, b, c, d: f"{a}{b:02d}{c}{d:06d}",
    st.integers(2, 9),
    st.integers(0, 99),
    st.integers(2, 9),
    st.integers(0, 999_999),
)


def assert_well_formed(verdict):
    assert isinstance(verdict, NumberVerdict)
    if verdict.ok:
        assert E164.fullmatch(verdict.e164), verdict
        assert verdict.reason is None
    else:
        assert verdict.e164 is None
        assert verdict.reason in REASONS, verdict
        assert verdict.message.strip()


@FAST
@given(st.text())
def test_any_text_gives_a_well_formed_verdict(text):
    assert_well_formed(check_number(text))
    assert_well_formed(normalize_phone(text))


@FAST
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | phone_like)
def test_phone_like_text_gives_a_well_formed_verdict(text):
    verdict = check_number(text)
    assert_well_formed(verdict)
    if verdict.ok:
        assert verdict.region in ("US", "CA")
        assert check_number(verdict.e164).e164 == verdict.e164  # round trip


@FAST
@given(nanp, st.sampled_from(["{}", "+1{}", "1 {}", "({0}{1}{2}) {3}{4}{5}-{6}{7}{8}{9}"]))
def test_nanp_numbers_round_trip(digits, template):
    text = template.format(*digits) if "{0}" in template else template.format(digits)
    verdict = check_number(text)
    assert_well_formed(verdict)
    if verdict.ok:
        assert verdict.e164 == "+1" + digits
        again = check_number(verdict.e164)
        assert (again.ok, again.e164, again.region) == (True, verdict.e164, verdict.region)
        assert normalize_phone(verdict.e164).e164 == verdict.e164


@settings(FAST, max_examples=100)  # three checks per example
@given(st.from_regex(r"\A\+?[0-9]{7,15}\Z"), st.sampled_from(["\r", "\n", "\x00", "\t", "\x1b"]))
def test_control_characters_inside_are_always_refused(digits, bad):
    for i in (1, len(digits) // 2, len(digits) - 1):
        verdict = check_number(digits[:i] + bad + digits[i:])
        assert verdict.reason == "not_a_number"


@FAST
@given(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=3), nanp)
def test_letters_are_never_rewritten_to_digits(letters, digits):
    verdict = check_number(digits[:6] + letters + digits[6:])
    assert not verdict.ok


@pytest.mark.parametrize(
    "text",
    [
        "+1212555\u202e0123",  # shown as +12125553210, dialed as +12125550123
        "\u202e2125550123",  # RIGHT-TO-LEFT OVERRIDE: the whole number shown reversed
        "\u200f212-555-0123",  # RIGHT-TO-LEFT MARK: the groups shown as 0123-555-212
        "212-555\u202b-0123\u202c",  # RIGHT-TO-LEFT EMBEDDING
        "+1 212 \u2067555\u2069 0123",  # RIGHT-TO-LEFT ISOLATE
        "+1 212 555 0123\u061c",  # ARABIC LETTER MARK
    ],
)
def test_right_to_left_controls_are_refused_not_removed(text):
    """Removed, they would let a number be shown in another order than it is dialed
    (tester4): refused, naming the character, wherever it is."""
    verdict = refused(text, "not_a_number")
    assert "another order than they would be dialed" in verdict.message
    assert verdict.message.split(":")[0].startswith("The number contains U+")


# --------------------------------------------------------------------------- spaces, dashes

#: Every space separator and dash Unicode has (categories Zs and Pd), but the dashes of
#: right-to-left scripts, and MINUS SIGN: each reads as " " or "-" (tester5).
SPACES = [c for c in map(chr, range(0x80, 0x110000)) if unicodedata.category(c) == "Zs"]
DASHES = [
    c
    for c in map(chr, range(0x80, 0x110000))
    if (unicodedata.category(c) == "Pd" or c == "\u2212")
    and unicodedata.bidirectional(c) not in ("R", "AL")
]
RTL_DASHES = [
    c
    for c in map(chr, range(0x80, 0x110000))
    if unicodedata.category(c) == "Pd" and unicodedata.bidirectional(c) in ("R", "AL")
]


def test_the_kinds_are_what_the_docs_name():
    assert {"\u00a0", "\u2007", "\u2009", "\u202f", "\u3000"} <= set(SPACES)
    assert {"\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"} <= set(DASHES)
    assert "\u05be" in RTL_DASHES


@pytest.mark.parametrize("space", SPACES, ids=lambda c: f"U+{ord(c):04X}")
def test_every_unicode_space_reads_as_a_space(space):
    for text in (f"+1{space}212{space}555{space}0123", f"({space}212) 555{space}0123"):
        assert check_number(text).e164 == "+12125550123", text
        assert normalize_phone(text).e164 == "+12125550123", text  # an agent's phone
    # ... and as a space, not as nothing: "2125550123 x12" is an extension either way.
    assert check_number(f"2125550123{space}x12").reason == "extension"


@pytest.mark.parametrize("dash", DASHES, ids=lambda c: f"U+{ord(c):04X}")
def test_every_dash_reads_as_a_hyphen(dash):
    for text in (f"212{dash}555{dash}0123", f"+1 {dash} 212 {dash} 555 0123"):
        assert check_number(text).e164 == "+12125550123", text
        assert normalize_phone(text).e164 == "+12125550123", text
    # A dash is a '-', never a digit or a '+': these stay what they were with '-'.
    assert check_number(f"{dash}{dash}{dash}").reason == "not_a_number"  # "---"
    assert check_number(f"{dash}911").reason == "emergency"  # "-911"


@pytest.mark.parametrize("dash", RTL_DASHES, ids=lambda c: f"U+{ord(c):04X}")
def test_right_to_left_dashes_are_refused_and_named(dash):
    """Between digits a right-to-left dash shows the groups after it in another order
    than they are dialed: refused, like the right-to-left controls."""
    verdict = refused(f"212{dash}555{dash}0123", "not_a_number")
    assert f"U+{ord(dash):04X}" in verdict.message


def test_messages_show_the_number_with_ascii_spaces_and_dashes():
    """What the agent is shown back has the spaces they saw, never the odd character."""
    verdict = refused("+1\u00a0123\u2011123\u202f12321", "invalid")
    assert verdict.message.startswith("+1 123-123 12321 has 11 digits after +1")
    assert verdict.message.isascii()
    assert refused("555\u20110123", "invalid").message.startswith("555-0123 is missing")
    assert refused("1\u2011911", "emergency").message.startswith("1-911 is an emergency")
