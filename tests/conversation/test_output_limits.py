"""Every outgoing text fits Telegram's limits by construction (issue #7, finding 4).

Every template in :mod:`corecall.conversation.texts` is rendered with the largest values the
stored-field limits allow (:mod:`corecall.fields`): 64-character names made of characters
that count twice in UTF-16, 19-digit ids, 15-digit numbers, the most routes and caller IDs
the config takes, every call state and end reason. Parameters are filled by their annotated
type (and name, for plain text); a new template whose parameter this test can't fill fails
here until its largest value is added below.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import itertools

import attrs
import pytest

from corecall import fields
from corecall.conversation import callbacks as cb
from corecall.conversation import limits, texts
from corecall.conversation.agent_commands import HISTORY_LENGTH
from corecall.conversation.limits import split_message
from corecall.domain import Agent, CallRecord, CallState, EndReason, Route, TrunkConfig

WIDE = "𝔘"  # outside the BMP: one character, two UTF-16 code units
LONGEST_ID = 2**63 - 1
LONGEST_NUMBER = "+" + "9" * 15
T0 = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)


def _route(n: int) -> Route:
    code = f"Z{n:07d}"[: fields.ROUTE_CODE_MAX_CHARS]
    return Route(
        code=code,
        name=WIDE * fields.ROUTE_NAME_MAX_CHARS,
        button=WIDE * fields.ROUTE_BUTTON_MAX_CHARS,
        trunk=TrunkConfig(name="t" * 64, driver="d"),
        caller_ids=tuple(LONGEST_NUMBER for _ in range(fields.MAX_CALLER_IDS_PER_ROUTE)),
    )


ROUTE = _route(0)
ROUTES = [_route(n) for n in range(fields.MAX_ROUTES)]
AGENT = Agent(
    telegram_id=LONGEST_ID,
    phone=LONGEST_NUMBER,
    name=WIDE * fields.NAME_MAX_CHARS,
    authorized=True,
    route_code=ROUTE.code,
    caller_id=LONGEST_NUMBER,
)
CALLER_ID_LINE = f"Caller ID: {LONGEST_NUMBER} {ROUTE.tag}"


def _calls() -> list[CallRecord]:
    base = CallRecord(
        id="f" * 32, agent_id=LONGEST_ID, agent_phone=LONGEST_NUMBER, target=LONGEST_NUMBER,
        route_code=ROUTE.code, trunk="t" * 64, caller_id=LONGEST_NUMBER, created_at=T0,
        detail="d" * fields.DETAIL_MAX_CHARS,
    )  # fmt: skip
    calls = [attrs.evolve(base, state=s) for s in CallState if not s.is_final]
    for reason, connected in itertools.product(EndReason, (False, True)):
        calls.append(
            attrs.evolve(
                base, state=CallState.ENDED, reason=reason,
                connected_at=T0 if connected else None, ended_at=T0 + _dt.timedelta(days=9999),
            )
        )  # fmt: skip
    return calls


CALLS = _calls()

#: The largest values each parameter can take, by annotation (and by name for text).
BY_TYPE: dict[str, list] = {
    "Agent": [AGENT],
    "Route": [ROUTE],
    "Iterable[Route]": [ROUTES, ROUTES[:1], []],
    "CallRecord": CALLS,
    "list[CallRecord]": [[CALLS[-1]] * HISTORY_LENGTH, CALLS[:1], []],
    "bool": [True, False],
    "float": [1e12],
    "float | None": [1e9, None],
    "str | None": [WIDE * fields.ROUTE_NAME_MAX_CHARS, None],
}
BY_NAME: dict[str, list] = {
    "caller_id_line": [CALLER_ID_LINE],
    "user_id": [LONGEST_ID],
    "live_calls": [10**6],
    "calls_per_minute": [10**6],
    # What a person typed (a whole 4,096-character message) is echoed only in part.
    "code": ["x" * limits.MESSAGE_MAX],
    "command": ["c" * 32],  # COMMAND_RE takes command names of at most 32 characters
    # Refusals written by corecall and by policy plugins (the longest is far below this).
    "message": ["m" * 1000],
    "refusal": ["m" * 1000],
    "resend": ["/" + "x" * (limits.MESSAGE_MAX - 1)],  # a whole message, echoed in part
    "agent_id": [LONGEST_ID],
    "number": [LONGEST_NUMBER],
    "route_name": [WIDE * fields.ROUTE_NAME_MAX_CHARS, None],
    # The code of an agent's route that is no longer offered (stored: at most 8 characters).
    "withdrawn": [WIDE * fields.ROUTE_CODE_MAX_CHARS, None],
    "current": [True, False],
    # Bot usernames: _ADDRESSED_RE takes at most 64 characters; Telegram's own limit is 32.
    "other": ["b" * 64],
    "ours": ["o" * 32, None],
}
#: Templates whose output is split before sending (long lists): checked chunk by chunk.
CHUNKED = {"agents_list"}
#: Templates that make button labels, not messages.
LABELS = {"caller_id_button"}


def _templates():
    for name, fn in inspect.getmembers(texts, inspect.isfunction):
        if fn.__module__ == texts.__name__ and not name.startswith("_"):
            yield name, fn


def _argument_sets(name, fn):
    params = inspect.signature(fn).parameters.values()
    choices = []
    for p in params:
        values = BY_NAME.get(p.name) or BY_TYPE.get(str(p.annotation))
        assert values is not None, (
            f"texts.{name}: add the largest values of parameter {p.name!r} ({p.annotation}) "
            "to this test"
        )
        choices.append([(p, v) for v in values])
    for combo in itertools.product(*choices):
        args, kwargs = [], {}
        for p, v in combo:
            if p.kind is p.KEYWORD_ONLY:
                kwargs[p.name] = v
            else:
                args.append(v)
        yield args, kwargs


@pytest.mark.parametrize("name", [n for n, _ in _templates() if n not in CHUNKED])
def test_every_template_fits_with_maximal_values(name):
    fn = getattr(texts, name)
    for args, kwargs in _argument_sets(name, fn):
        if name == "help_text" and not (kwargs["is_agent"] or kwargs["is_admin"]):
            continue  # never asked for: strangers get not_authorized()
        text = fn(*args, **kwargs)
        if name in LABELS:
            assert 0 < limits.utf16_len(text) <= limits.BUTTON_TEXT_MAX, name
        elif isinstance(text, str):
            assert limits.fits_message(text), (name, limits.utf16_len(text))


def test_lists_are_split_into_messages_that_fit():
    rows = [(AGENT, CALLER_ID_LINE)] * 5000
    chunks = split_message(texts.agents_list(rows))
    assert len(chunks) > 1
    assert all(limits.fits_message(c) for c in chunks)
    assert sum(c.count("\n") + 1 for c in chunks) == 5001  # nothing lost


def test_every_fixed_text_fits_a_toast_and_every_label_a_button():
    for name, value in vars(texts).items():
        if name.isupper() and isinstance(value, str):
            limit = limits.BUTTON_TEXT_MAX if name.endswith("_BUTTON") else limits.TOAST_MAX
            assert 0 < limits.utf16_len(value) <= limit, name
    for route in ROUTES:
        assert limits.utf16_len(route.button) <= limits.BUTTON_TEXT_MAX


def test_a_menu_with_the_most_choices_fits_a_keyboard():
    assert fields.MAX_CALLER_IDS_PER_ROUTE <= cb.MAX_CHOICES <= limits.KEYBOARD_MAX_BUTTONS
    assert fields.MAX_ROUTES <= limits.KEYBOARD_MAX_BUTTONS


@pytest.mark.parametrize(
    ("text", "limit"),
    [("a" * 5000, 4096), (WIDE * 3000, 4096), ("x" * 300, 200), (WIDE * 150, 200)],
)
def test_fit_cuts_on_character_boundaries(text, limit):
    cut = limits.fit(text, limit)
    assert limits.utf16_len(cut) <= limit and cut.endswith("…")
    cut.encode("utf-8")  # no lone surrogate


async def test_the_last_line_cuts_what_would_be_refused_and_logs_it(caplog):
    from corecall_testing.fakes import RecordingPort

    from corecall.conversation.ports import Button

    port = RecordingPort()
    limited = limits.LimitedPort(port)
    too_many = tuple((Button(str(i), b"x"),) for i in range(150))
    await limited.send(1, WIDE * 3000, too_many)
    await limited.edit(1, 1, "x" * 5000, ((Button(WIDE * 100, b"y" * 65), Button("ok", b"z")),))
    (_s, _c, _m, text, buttons), (_e, _c2, _m2, text2, buttons2) = port.log
    assert limits.fits_message(text) and limits.fits_message(text2)
    assert limits.fits_keyboard(buttons) and len(buttons) == 100
    assert buttons2 == ((Button("ok", b"z"),),)  # data Telegram would refuse is dropped
    assert limits.fit_toast("t" * 300) == "t" * 199 + "…"
    assert [r.levelname for r in caplog.records].count("ERROR") == 5
