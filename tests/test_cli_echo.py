"""Oversized input echoed back (issue #7, the kind of finding 4 on the CLI): every message that
repeats what the operator typed shows a recognisable start and its length, never the whole
argument, and the refusal changes nothing.

``corecall.fields.echo`` is the one way messages quote input; ``tame_message`` is the CLI's last
line for messages that forgot to (a third-party plugin's, click's usage errors).
"""

from __future__ import annotations

import json

import pytest

from corecall.fields import (
    ECHO_MAX_CHARS,
    MESSAGE_MAX_CHARS,
    PATH_SHOWN_CHARS,
    WORD_MAX_CHARS,
    echo,
    show_path,
    tame_message,
)

HUGE = "Z" * 5000
#: Far more than any refusal needs, far less than the 5,000 characters typed.
MAX_REPLY_CHARS = 600


def _state(cli) -> tuple:
    agents = json.loads(cli("agents", "list", "--json")[1])
    audit = json.loads(cli("audit", "--json")[1])
    dnc = cli("dnc", "list")[1]
    return agents, audit, dnc


@pytest.mark.parametrize(
    "args",
    [
        ("number", "check", "+12125550123", "--route", HUGE),  # the instance
        ("agents", "set-route", "1", HUGE),  # the second instance
        ("agents", "set-route", "1", " ".join(["Z"] * 2500)),  # long, but no long word
        ("agents", "set-caller-id", "1", "9" * 5000),
        ("agents", "set-phone", "1", "9" * 5000),
        ("policy", "check", "--target", "+12125550123", "--route", HUGE),
        ("policy", "check", "--target", HUGE),
        ("policy", "check", "--target", "+12125550123", "--at", HUGE),
        ("dnc", "add", HUGE),
        ("dnc", "remove", HUGE),
        ("plugins", "enable", HUGE),
        ("plugins", "disable", HUGE),
        ("webhooks", "redeliver", HUGE),
        ("calls", "show", HUGE),
        (HUGE,),  # click: "No such command ..."
        ("agents", HUGE),
    ],
    ids=lambda a: " ".join(x[:12] for x in a),
)
def test_an_oversized_argument_is_echoed_in_part_and_changes_nothing(cli, args):
    cli("agents", "add", "--telegram-id", "1", "--phone", "+12125550123")
    cli("agents", "set-route", "1", "M")
    before = _state(cli)
    code, out, err = cli(*args)
    assert code != 0, (out, err)
    reply = out + err
    assert len(reply) <= MAX_REPLY_CHARS, reply[:300]
    assert "Traceback" not in reply
    assert "Z" * (WORD_MAX_CHARS + 1) not in reply and "9" * (WORD_MAX_CHARS + 1) not in reply
    assert _state(cli) == before


def test_echo_keeps_short_input_whole_and_says_how_long_long_input_was():
    assert echo("M") == "'M'"
    assert echo("a\nb\x1b[31m") == repr("a\nb\x1b[31m")  # escapes shown, never acting
    long = echo("Z" * 5000)
    assert long.endswith("(5000 characters)") and long.count("Z") == ECHO_MAX_CHARS - 1


def test_tame_message_cuts_long_words_and_long_messages_only():
    ordinary = "route 'Q' is not offered (offered routes: D, M); see /usr/share/doc/corecall"
    assert tame_message(ordinary) == ordinary
    tamed = tame_message(f"no plugin named {HUGE}; known plugins: a, b")
    assert "characters)" in tamed and tamed.endswith("known plugins: a, b")
    assert len(tamed) < 200
    assert len(tame_message("x " * 5000)) <= MESSAGE_MAX_CHARS


@pytest.mark.parametrize("hostile", ["\u202e", "\u2066", "\x1b[2J", "\x1c", "\u200b"])
def test_typed_input_shown_back_never_carries_a_control_or_bidi_character(cli, hostile):
    """`policy check` repeats the target it was given: a bidi override or an escape sequence
    in it is shown escaped, never acting on the operator's terminal."""
    _code, out, err = cli("policy", "check", "--target", f"+1212555{hostile}0123")
    assert hostile not in out + err
    assert repr(hostile)[1:-1] in out  # shown escaped, so the operator sees it is there


def test_a_long_path_keeps_its_file_name_and_a_strange_one_is_escaped():
    short = "/etc/asterisk/extensions.conf"
    assert show_path(short) == short
    deep = "/tmp/pytest-of-root/pytest-3/popen-gw1/" + "x" * 80 + "/asterisk-etc/extensions.conf"
    shown = show_path(deep)
    assert shown.endswith(f"/asterisk-etc/extensions.conf' ({len(deep)} characters)")
    assert shown.startswith("'/tmp/pytest-of-root/") and "…" in shown
    assert len(shown) <= PATH_SHOWN_CHARS + len(" (9999 characters)") + 2 <= WORD_MAX_CHARS
    assert tame_message(f"cannot write {shown}: No space left on device") == (
        f"cannot write {shown}: No space left on device"
    )  # short enough never to be cut again
    assert show_path("a\nb.toml") == "'a\\nb.toml'"
    assert show_path("x\x1b[31m.toml") == "'x\\x1b[31m.toml'"
