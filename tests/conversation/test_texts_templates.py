"""Every text template, called with empty lists and missing values, reads as a sentence.

The kind behind "Use no route is available right now": a template that splices a sentence
for "nothing" into a sentence written for "something". Every public function of
corecall.conversation.texts is called with each argument empty/missing in turn.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
import re
import typing

import pytest

from corecall.conversation import texts
from corecall.domain import Agent, CallRecord, CallState, EndReason, Route, TrunkConfig

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
DEV = TrunkConfig(name="dev", driver="simulated")
ROUTE = Route(code="D", name="Development", button="[Development Route]  🛠️", trunk=DEV,
              caller_ids=("+12125550199",))  # fmt: skip

AGENTS = [
    Agent(telegram_id=501, phone="+12125550111", name="", authorized=True),
    Agent(
        telegram_id=501,
        phone="+12125550111",
        name="Alice",
        authorized=False,
        route_code="D",
        caller_id="+12125550199",
    ),
]


def calls():
    base = dict(id="c1", agent_id=501, agent_phone="+12125550111", target="+12125550123",
                route_code="D", trunk="dev", caller_id="+12125550199", created_at=T0)  # fmt: skip
    yield CallRecord(**base)  # queued, nothing else known
    for state in CallState:
        yield CallRecord(**base, state=state)
    for reason in [*EndReason, None]:
        yield CallRecord(**base, state=CallState.ENDED, reason=reason)
        yield CallRecord(**base, state=CallState.ENDED, reason=reason, connected_at=T0,
                         ended_at=T0 + dt.timedelta(seconds=42))  # fmt: skip
    yield CallRecord(**{**base, "created_at": None}, state=CallState.ENDED)


VALUES = {
    "Agent": AGENTS,
    "Route": [ROUTE],
    "Iterable[Route]": [[], [ROUTE]],
    "CallRecord": list(calls()),
    "list[CallRecord]": [[], list(calls())[:3]],
    "list[tuple[Agent, str]]": [[], [(a, "Caller ID: none yet [no route]") for a in AGENTS]],
    "str": ["", "M", "Caller ID: +12125550199 [D]"],
    "str | None": [None, "", "Development", "corecall_bot"],
    "int": [0, 501],
    "float": [0.0, 31.4],
    "float | None": [None, 0.0, 3725.0],
    "bool": [False, True],
}

#: Parameters that are never empty by construction (E.164 from the config, a command name).
BY_NAME = {"number": ["+12125550199"], "command": ["history"], "caller_id_line": [
    "Caller ID: none yet [no route]", "Caller ID: +12125550199 [D]"],
    "resend": ["/authorize 501 +12125550131", "/call +12125550123"],
    "withdrawn": [None, "D"],  # a route code (never empty) or no route withdrawn
    "refusal": ["Nothing was changed: agent 501 has no name, and a name can only be given "
                "when an agent is added."]}  # fmt: skip

BAD = ["None", "[]", "()", "Use no", "  ", " .", " ,", "{", "}", "..", "''"]


def templates():
    for name, fn in inspect.getmembers(texts, inspect.isfunction):
        if fn.__module__ == texts.__name__ and not name.startswith("_"):
            yield name, fn


def argument_sets(fn):
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    names = [p for p in sig.parameters if p != "return"]
    choices = []
    for p in names:
        if p in BY_NAME:
            choices.append(BY_NAME[p])
            continue
        key = _key(hints[p])
        assert key in VALUES, f"{fn.__name__}({p}: {key}): add sample values to VALUES"
        choices.append(VALUES[key])
    for combo in itertools.islice(itertools.product(*choices), 400):
        yield dict(zip(names, combo, strict=True))


def _key(hint) -> str:
    text = str(hint).replace("typing.", "").replace("collections.abc.", "")
    text = text.replace("corecall.domain.", "").replace("<class '", "").replace("'>", "")
    return {"Optional[str]": "str | None", "Optional[float]": "float | None"}.get(text, text)


@pytest.mark.parametrize(("name", "fn"), list(templates()), ids=[n for n, _ in templates()])
def test_every_template_reads_well_with_empty_and_missing_values(name, fn):
    for kwargs in argument_sets(fn):
        out = fn(**kwargs)
        assert isinstance(out, str) and out.strip(), (name, kwargs)
        for line in out.split("\n"):
            for bad in BAD:
                if bad == "''" and "''" in repr(kwargs):
                    continue
                assert bad not in line.replace("…", ""), (name, kwargs, line)
        assert len(out) <= 4096, name


#: A sentence that starts lower-case: at the start of a line, or after a full stop,
#: question or exclamation mark (not after "e.g." or "i.e.", which go on a sentence).
_LOWER_START = re.compile(r"(?:^|(?<!e\.g)(?<!i\.e)[.!?]\s+)(?P<word>[a-z]\w*)", re.M)


#: Templates that give part of a sentence, spliced into others.
FRAGMENTS = {"routes_sentence"}


def every_text():
    """Every text the bot can say: each template with its sample values, each constant."""
    for name, fn in templates():
        if name in FRAGMENTS:
            continue
        for kwargs in argument_sets(fn):
            yield name, fn(**kwargs)
    for name, value in vars(texts).items():
        if isinstance(value, str) and name.isupper():
            yield name, value


def test_every_sentence_starts_with_a_capital():
    """tester5: "…so I did nothing. send the command without the @ part" (a sentence spliced
    after another one's end, lower-case)."""
    found = [(name, m["word"], text) for name, text in every_text()
             for m in _LOWER_START.finditer(text)]  # fmt: skip
    assert not found, found[:5]
