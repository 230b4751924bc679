"""The store contract for the do-not-call list, repeat-call counting and the schema upgrades
that brought them, on every backend ([sqlite] and [postgres])."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import attrs
import pytest

from corecall.domain import CallRecord, CallState, EndReason, utcnow
from corecall.errors import StoreError
from corecall.store import Store
from corecall.store.peewee_store import DIALECTS, MIGRATIONS

UTC = dt.UTC
T0 = dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ADMIN = "cli:alice"
NUMBER = "+12125550123"


def test_add_contains_get_remove(store: Store):
    assert not store.dnc_contains(NUMBER)
    assert store.dnc_get(NUMBER) is None
    before = utcnow()
    assert store.dnc_add(NUMBER, reason="asked on 2026-06-30", actor=ADMIN) is True
    assert store.dnc_contains(NUMBER)
    assert not store.dnc_contains("+12125550124")
    entry = store.dnc_get(NUMBER)
    assert (entry.number, entry.reason, entry.added_by) == (NUMBER, "asked on 2026-06-30", ADMIN)
    assert before - dt.timedelta(seconds=1) <= entry.added_at <= utcnow()
    assert entry.added_at.utcoffset() == dt.timedelta(0)
    assert store.dnc_remove(NUMBER, actor="telegram:9") is True
    assert not store.dnc_contains(NUMBER)
    assert store.dnc_remove(NUMBER, actor="telegram:9") is False
    log = [(e.actor, e.action, e.subject, e.detail) for e in reversed(store.audit_log())]
    assert log == [
        (ADMIN, "dnc.add", NUMBER, "asked on 2026-06-30"),
        ("telegram:9", "dnc.remove", NUMBER, ""),
    ]


def test_adding_twice_keeps_the_first_entry_and_audits_once(store: Store):
    assert store.dnc_add(NUMBER, reason="first", actor=ADMIN) is True
    assert store.dnc_add(NUMBER, reason="second", actor="cli:bob") is False
    entry = store.dnc_get(NUMBER)
    assert (entry.reason, entry.added_by) == ("first", ADMIN)
    assert [e.action for e in store.audit_log()] == ["dnc.add"]
    assert store.dnc_count() == 1


@pytest.mark.parametrize("bad", ["2125550123", "+1 212 555 0123", "", "+0123456789", None, 42])
def test_only_e164_numbers_are_stored(store: Store, bad):
    with pytest.raises(StoreError, match=r"E\.164"):
        store.dnc_add(bad, actor=ADMIN)
    with pytest.raises(StoreError, match=r"E\.164"):
        store.dnc_add_many([(NUMBER, ""), (bad, "")], actor=ADMIN)
    assert store.dnc_count() == 0  # the whole batch was refused, nothing half-written
    assert store.audit_log() == []


def test_reason_text_round_trips_and_control_characters_are_refused(store: Store):
    store.dnc_add(NUMBER, reason='Zoë 😀 said: «never», "twice"', actor=ADMIN)
    assert store.dnc_get(NUMBER).reason == 'Zoë 😀 said: «never», "twice"'


@pytest.mark.parametrize(
    "bad", ["a\x00b", "line1\nFAKE +12125550999", "\x1b[2J\x1b[31mred", "tab\there", "x\u202ey"]
)
def test_a_reason_is_one_line_without_control_characters(store: Store, bad):
    """The store's own last line: a reason that would forge a row in `dnc list` or write
    an escape sequence to a terminal is refused, by dnc_add and by a whole batch."""
    with pytest.raises(StoreError, match=r"NUL|U\+00|U\+202E"):
        store.dnc_add("+12125550124", reason=bad, actor=ADMIN)
    with pytest.raises(StoreError, match=r"NUL|U\+00|U\+202E"):
        store.dnc_add_many([(NUMBER, "fine"), ("+12125550124", bad)], actor=ADMIN)
    assert store.dnc_count() == 0


def test_add_many_counts_new_rows_skips_listed_and_duplicates(store: Store):
    store.dnc_add("+12125550100", reason="old", actor=ADMIN)
    numbers = [f"+1212555{n:04d}" for n in range(100, 1300)]  # spans several statements
    batch = [(n, "import") for n in numbers] + [("+12125550200", "dup in batch")]
    assert store.dnc_add_many(batch, actor="cli:importer") == 1199
    assert store.dnc_count() == 1200
    assert store.dnc_get("+12125550100").reason == "old"
    assert store.dnc_get("+12125551299").added_by == "cli:importer"
    # idempotent: the same batch again adds nothing
    assert store.dnc_add_many(batch, actor="cli:importer") == 0
    assert store.dnc_count() == 1200
    imports = [e for e in store.audit_log() if e.action == "dnc.import"]
    assert [e.detail for e in imports] == [
        "0 added, 1201 already listed", "1199 added, 2 already listed",
    ]  # fmt: skip
    assert store.dnc_add_many([], actor=ADMIN) == 0


def test_entries_are_paged_in_number_order(store: Store):
    numbers = [f"+1212555{n:04d}" for n in (150, 120, 199, 101, 130)]
    for n in numbers:
        store.dnc_add(n, actor=ADMIN)
    first = store.dnc_entries(limit=2)
    assert [e.number for e in first] == ["+12125550101", "+12125550120"]
    rest = store.dnc_entries(after=first[-1].number, limit=10)
    assert [e.number for e in rest] == ["+12125550130", "+12125550150", "+12125550199"]
    assert store.dnc_entries(after="+12125550199") == []
    assert store.dnc_entries(limit=0) == []
    with pytest.raises(StoreError):
        store.dnc_entries(limit=-1)


def test_reads_see_the_list_while_a_big_batch_is_written(store: Store):
    store.dnc_add(NUMBER, actor=ADMIN)
    seen, errors = [], []

    def read():
        try:
            for _ in range(20):
                seen.append(store.dnc_contains(NUMBER))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    batch = [(f"+1646555{n:04d}", "") for n in range(5000)]
    reader.start()
    store.dnc_add_many(batch, actor=ADMIN)
    reader.join()
    assert errors == [] and all(seen) and len(seen) == 20
    assert store.dnc_count() == 5001


def _call(target: str, at: dt.datetime, agent: int = 1) -> CallRecord:
    return CallRecord(
        id=uuid.uuid4().hex, agent_id=agent, agent_phone="+12125550100", target=target,
        route_code="M", trunk="main", caller_id="+12125550199", created_at=at,
    )  # fmt: skip


def test_calls_to_target_since_counts_every_agent_oldest_first(store: Store):
    for minutes, agent, target in [
        (0, 1, NUMBER), (-30, 2, NUMBER), (-60 * 24 - 1, 1, NUMBER), (-5, 3, "+12125550199"),
        (-60 * 24, 4, NUMBER),
    ]:  # fmt: skip
        store.create_call(_call(target, T0 + dt.timedelta(minutes=minutes), agent))
    since = T0 - dt.timedelta(hours=24)
    times = store.calls_to_target_since(NUMBER, since)
    assert times == [since, T0 - dt.timedelta(minutes=30), T0]  # inclusive of `since`
    assert store.calls_to_target_since("+12125550111", since) == []
    with pytest.raises(StoreError):
        store.calls_to_target_since(NUMBER, since.replace(tzinfo=None))


def _ended(reason: EndReason | None, *stamps: str, at: dt.datetime = T0) -> CallRecord:
    """A call to NUMBER that ended for ``reason`` with the named stage times recorded."""
    times = {name: at + dt.timedelta(seconds=i + 1) for i, name in enumerate(stamps)}
    return attrs.evolve(
        _call(NUMBER, at), state=CallState.ENDED, reason=reason,
        ended_at=at + dt.timedelta(seconds=9), **times,
    )  # fmt: skip


AGENT_LEG = ("dialing_agent_at", "agent_ringing_at")
ANSWERED = (*AGENT_LEG, "agent_answered_at")
#: (what happened, the record, whether it counts as a call to the target)
CALLS_AND_COUNTS = [
    # ended before the target was dialed: the bot said "… was not dialed" (or the agent or
    # corecall hung up first): not a call to the target
    ("agent did not answer", _ended(EndReason.AGENT_NO_ANSWER, *AGENT_LEG), False),
    ("agent busy", _ended(EndReason.AGENT_BUSY, "dialing_agent_at"), False),
    ("agent declined", _ended(EndReason.AGENT_REJECTED, *AGENT_LEG), False),
    ("nobody pressed 1", _ended(EndReason.AGENT_NOT_CONFIRMED, *ANSWERED), False),
    ("trunk down", _ended(EndReason.TRUNK_UNAVAILABLE), False),
    ("agent hung up while ringing", _ended(EndReason.CANCELLED, *AGENT_LEG), False),
    ("hung up during the prompt", _ended(EndReason.CANCELLED, *ANSWERED), False),
    ("time limit before the target", _ended(EndReason.TIMED_OUT, *ANSWERED), False),
    # the target was dialed: counts, whatever the outcome
    (
        "completed",
        _ended(
            EndReason.COMPLETED, *ANSWERED, "dialing_target_at", "target_ringing_at", "connected_at"
        ),
        True,
    ),
    ("target busy", _ended(EndReason.TARGET_BUSY, *ANSWERED, "dialing_target_at"), True),
    ("target no answer", _ended(EndReason.TARGET_NO_ANSWER, "target_ringing_at"), True),
    ("target unreachable", _ended(EndReason.TARGET_UNREACHABLE, *ANSWERED), True),
    ("hung up while the target rang", _ended(EndReason.CANCELLED, "target_ringing_at"), True),
    ("time limit while dialing", _ended(EndReason.TIMED_OUT, "dialing_target_at"), True),
    ("trunk failed on the target", _ended(EndReason.TRUNK_UNAVAILABLE, "connected_at"), True),
    # cannot tell: counted (the cap errs on the called party's side)
    ("PBX lost track", _ended(EndReason.UNKNOWN, "dialing_agent_at"), True),
    ("ended, no reason (legacy row)", _ended(None), True),
    # live: may dial the target any moment
    ("queued", _call(NUMBER, T0), True),
    ("agent ringing", attrs.evolve(_call(NUMBER, T0), state=CallState.AGENT_RINGING), True),
    (
        "awaiting the key",
        attrs.evolve(
            _call(NUMBER, T0), state=CallState.AWAITING_CONFIRMATION, agent_answered_at=T0
        ),
        True,
    ),
]


@pytest.mark.parametrize(
    ("record", "counted"), [c[1:] for c in CALLS_AND_COUNTS], ids=[c[0] for c in CALLS_AND_COUNTS]
)
def test_calls_to_target_since_counts_only_calls_that_dialed_or_may_dial_it(
    store: Store, record: CallRecord, counted: bool
):
    store.create_call(record)
    assert record.may_have_dialed_target is counted  # the rule, and the store answers by it
    assert store.calls_to_target_since(NUMBER, T0) == ([T0] if counted else [])


def test_calls_to_target_since_counts_calls_as_they_move_and_end(store: Store):
    """A live call counts; it stops counting when it ends before dialing the target, and
    keeps counting once it has dialed it (stored by record_transition and save_progress)."""
    for name in ("a", "b", "c"):
        store.create_call(attrs.evolve(_call(NUMBER, T0), id=name * 32))
    assert len(store.calls_to_target_since(NUMBER, T0)) == 3
    later = T0 + dt.timedelta(seconds=5)
    store.record_transition("a" * 32, CallState.AGENT_ANSWERED, later)
    store.record_transition("a" * 32, CallState.ENDED, later, reason=EndReason.AGENT_NOT_CONFIRMED)
    store.record_transition("b" * 32, CallState.DIALING_TARGET, later)
    store.record_transition("b" * 32, CallState.ENDED, later, reason=EndReason.CANCELLED)
    c = attrs.evolve(
        _call(NUMBER, T0), id="c" * 32, state=CallState.ENDED, reason=EndReason.AGENT_NO_ANSWER,
        agent_ringing_at=later, ended_at=later,
    )  # fmt: skip
    store.save_progress([c])
    assert store.calls_to_target_since(NUMBER, T0) == [T0]  # b only
    assert [r.id for r in store.recent_calls() if r.may_have_dialed_target] == ["b" * 32]


# --------------------------------------------------------------------------- upgrades


def build_version(target, version: int) -> None:
    """A database at schema ``version`` as that version of corecall wrote it (its frozen
    migration steps), holding one agent, one call and one audit entry where they exist."""
    t = DIALECTS[target.backend]
    statements: list[str] = []
    for step in range(1, version + 1):
        MIGRATIONS[step](statements.append, t)
    statements.append(f"INSERT INTO schema_version (version) VALUES ({version})")
    conn = target.raw()
    try:
        cur = conn.cursor()
        for sql in statements:
            cur.execute(sql)
    finally:
        conn.close()
    stamp = "2026-07-01 12:00:00.000000+00:00"
    target.run_sql(
        "INSERT INTO agents (telegram_id, name, phone, authorized, route_code, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (42, "Zoë", "+12125550100", True, "M", stamp, stamp),
    )
    target.run_sql(
        "INSERT INTO calls (id, agent_id, agent_phone, target, route_code, trunk, caller_id, "
        "state, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("d" * 32, 42, "+12125550100", NUMBER, "M", "main", "+12125550199", "ended", "", stamp),
    )


@pytest.mark.parametrize("version", range(1, Store.SCHEMA_VERSION))
def test_every_older_schema_upgrades_to_the_current_one_keeping_data(target, version):
    build_version(target, version)
    store = target.open_store()
    assert store.schema_version() == Store.SCHEMA_VERSION
    assert store.get_agent(42).name == "Zoë"
    assert store.get_call("d" * 32).target == NUMBER
    # the list and the repeat-call count work on upgraded data: rows an older version wrote
    # are judged by the same rule (an end with no reason on record counts)
    assert store.calls_to_target_since(NUMBER, T0 - dt.timedelta(hours=1)) == [T0]
    for key, minute, reason, stamp in [
        ("e", 1, "agent_no_answer", "agent_ringing_at"),  # never dialed the target
        ("f", 2, "completed", None),  # its stage times were lost: the reason tells
        ("g", 3, "target_busy", "dialing_target_at"),
    ]:
        at = f"2026-07-01 12:0{minute}:00.000000+00:00"
        columns = "" if stamp is None else f", {stamp}"
        target.run_sql(
            "INSERT INTO calls (id, agent_id, agent_phone, target, route_code, trunk, caller_id,"
            f" state, reason, detail, created_at{columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
            f" ?, ?{', ?' if stamp else ''})",
            (key * 32, 42, "+12125550100", NUMBER, "M", "main", "+12125550199", "ended",
             reason, "", at, *([at] if stamp else [])),
        )  # fmt: skip
    minutes = [dt.timedelta(minutes=m) for m in (0, 2, 3)]
    assert store.calls_to_target_since(NUMBER, T0) == [T0 + m for m in minutes]
    assert store.dnc_add(NUMBER, actor=ADMIN)
    assert store.dnc_contains(NUMBER)
    upgrade = [e for e in store.audit_log() if e.action == "store.upgrade"]
    assert [e.detail for e in upgrade] == [f"v{version} → v{Store.SCHEMA_VERSION}"]


def test_v6_finds_every_call_v5_would_have_reconciled(target):
    # v5 found unfinished calls by state; v6 by the absence of an end time. A v5 row that is
    # not ENDED but has an end time (no corecall wrote one; by hand) must still be found.
    build_version(target, 5)
    stamp = "2026-07-01 12:05:00.000000+00:00"
    for key, ended_at in (("h", None), ("i", stamp)):
        target.run_sql(
            "INSERT INTO calls (id, agent_id, agent_phone, target, route_code, trunk, caller_id,"
            " state, detail, created_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key * 32, 42, "+12125550100", NUMBER, "M", "main", "+12125550199",
             "dialing_agent", "", stamp, ended_at),
        )  # fmt: skip
    store = target.open_store()
    unfinished = store.unfinished_calls()
    assert [c.id for c in unfinished] == ["h" * 32, "i" * 32]
    assert [c.ended_at for c in unfinished] == [None, None]
    assert store.get_call("d" * 32).state is CallState.ENDED  # ended calls untouched


def test_the_list_survives_reopening(target):
    store = target.open_store()
    store.dnc_add_many([(NUMBER, "x"), ("+12125550124", "y")], actor=ADMIN)
    store.close()
    again = target.open_store()
    assert again.dnc_count() == 2 and again.dnc_get("+12125550124").reason == "y"
