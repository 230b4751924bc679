"""Button callback data: compact, versioned, at most 64 bytes, and parsed strictly."""

from __future__ import annotations

import pytest

from corecall.conversation import callbacks as cb

LONGEST_ID = 2**63 - 1  # 19 digits, more than any Telegram id


@pytest.mark.parametrize(
    ("action", "args", "data"),
    [
        (cb.OPEN_ROUTES, (), b"1:rs:501"),
        (cb.PICK_ROUTE, ("0a1b2c3d", "D"), b"1:rp:501:0a1b2c3d:D"),
        (cb.CONFIRM_ROUTE, ("0a1b2c3d",), b"1:ry:501:0a1b2c3d"),
        (cb.CANCEL_ROUTE, ("0a1b2c3d",), b"1:rn:501:0a1b2c3d"),
        (cb.HANG_UP, ("0123456789abcdef" * 2,), b"1:hu:501:" + b"0123456789abcdef" * 2),
        (cb.SET_CALLER_ID, ("0a1b2c3d", "12"), b"1:ci:501:0a1b2c3d:12"),
        (cb.STOP_LIVE, (), b"1:lv:501"),
    ],
)
def test_every_action_round_trips(action, args, data):
    assert cb.make(action, 501, *args) == data
    assert cb.parse(data) == cb.CallbackData(action, 501, args)


#: The longest arguments each action's pattern accepts. A new action must be added here.
LONGEST_ARGUMENTS = {
    cb.OPEN_ROUTES: (),
    cb.PICK_ROUTE: ("f" * 8, "Z" * 8),
    cb.CONFIRM_ROUTE: ("f" * 8,),
    cb.CANCEL_ROUTE: ("f" * 8,),
    cb.HANG_UP: ("f" * 32,),
    cb.SET_CALLER_ID: ("f" * 8, "99"),
    cb.DO_NOT_CALL: ("f" * 32,),
    cb.STOP_LIVE: (),
}


@pytest.mark.parametrize("action", sorted(cb._ARGUMENTS))
def test_the_longest_button_of_every_action_fits_telegrams_64_bytes(action):
    assert action in LONGEST_ARGUMENTS, f"add {action!r}'s longest arguments to this test"
    data = cb.make(action, LONGEST_ID, *LONGEST_ARGUMENTS[action])
    assert len(data) <= cb.MAX_BYTES == 64
    assert cb.parse(data).args == LONGEST_ARGUMENTS[action]


@pytest.mark.parametrize(
    "data",
    [
        None, b"", b"1", b"1:ry", b"1:ry:501", b"1:ry:501:M:", b"1:ry:501:M:x", b" 1:ry:501:M",
        b"1:ry:501:M\n", b"2:ry:501:M", b"1:RY:501:M", b"1:ry:-501:M", b"1:ry:0:M",
        b"1:ry:05:M", b"1:ry:501:m", b"1:ry:501:TOOLONGCODE", b"1:hu:501:" + b"A" * 32,
        b"1:hu:501:" + b"a" * 31, b"1:ci:501:600:+12125550100", b"1:ci:501:0a1b2c3d:100",
        b"1:ry:501:0A1B2C3D", b"1:ry:501:0a1b2c3", b"1:rn:501", b"1:rp:501:D",
        b"1:rs:501:extra", "1:rs:501", b"1:rs:\xd9\xa5\xd9\xa0\xd9\xa1", b"1:ry:501:M" + b"0" * 60,
    ],
)  # fmt: skip
def test_anything_else_is_refused(data):
    assert cb.parse(data) is None


def test_make_refuses_what_parse_would_refuse():
    with pytest.raises(ValueError):
        cb.make(cb.PICK_ROUTE, 501, "m")
    with pytest.raises(ValueError):
        cb.make(cb.HANG_UP, 501, "not-a-call-id")
