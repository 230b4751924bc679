"""Reading do-not-call files: every line on its own, bad lines reported by line number."""

from __future__ import annotations

import csv
import io

from corecall_policy_dnc.importing import (
    MAX_RECORD_CHARS,
    Entry,
    Rejected,
    bounded_lines,
    read_lines,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from corecall.fields import ACTOR_MAX_CHARS, REASON_MAX_CHARS, check_reason, one_line
from corecall.numbers import check_number


def parse(text: str):
    return check_number(text)


def read(data: bytes):
    return list(read_lines(data.splitlines(keepends=True), parse))


def test_one_number_a_line_in_every_format_call_accepts():
    data = b"+12125550101\n(212) 555-0102\n212-555-0103\n1 212 555 0104\n  +1.212.555.0105  \n"
    assert [(e.line, e.number) for e in read(data)] == [
        (1, "+12125550101"), (2, "+12125550102"), (3, "+12125550103"), (4, "+12125550104"),
        (5, "+12125550105"),
    ]  # fmt: skip


def test_csv_with_header_reason_extra_columns_bom_and_crlf():
    data = (
        "\ufeffnumber,reason,added_at,added_by\r\n"
        '+12125550101,"asked, politely",2026-06-30T10:00:00+00:00,cli:alice\r\n'
        "(212) 555-0102,\r\n"
    ).encode()
    assert read(data) == [
        Entry(2, "+12125550101", "asked, politely"),
        Entry(3, "+12125550102", ""),
    ]


def test_bad_lines_are_reported_by_line_number_and_the_rest_read():
    data = (
        b"# exported 2026-06-30\n"
        b"+12125550101\n"
        b"\n"
        b"call me maybe\n"
        b"911\n"
        b"+1 212 555 0102 ext. 7\n"
        b"+1900 555 0199\n"
        b"\xff\xfe+12125550103\n"
        b"   \n"
        b"+12125550104\n" + b"9" * 2000 + b"\n"
    )
    items = read(data)
    entries = [(i.line, i.number) for i in items if isinstance(i, Entry)]
    assert entries == [(2, "+12125550101"), (10, "+12125550104")]
    rejected = {i.line: i for i in items if isinstance(i, Rejected)}
    assert sorted(rejected) == [4, 5, 6, 7, 8, 11]
    assert rejected[4].text == "call me maybe" and rejected[4].message
    assert "emergency" in rejected[5].message.lower()
    assert "extension" in rejected[6].message.lower()
    assert "premium" in rejected[7].message.lower()
    assert rejected[8].message == "not UTF-8 text"
    assert f"longer than {MAX_RECORD_CHARS}" in rejected[11].message
    assert rejected[4].as_json() == {
        "line": 4, "text": "call me maybe", "message": rejected[4].message,
    }  # fmt: skip


def test_empty_file():
    assert read(b"") == []


def export_row(number: str, reason: str, actor: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [number, one_line(reason, REASON_MAX_CHARS), "2026-11-29T23:59:59.123456+00:00",
         one_line(actor, ACTOR_MAX_CHARS)]
    )  # fmt: skip
    return out.getvalue().encode()


def test_the_longest_export_row_is_read_back():
    """The record limit is the fields' limits: a reason and an actor of the longest length,
    every character a quote (doubled by CSV), still import."""
    row = export_row("+12125550101", '"' * REASON_MAX_CHARS, '"' * ACTOR_MAX_CHARS)
    assert len(row) <= MAX_RECORD_CHARS + 1
    assert read(row) == [Entry(1, "+12125550101", '"' * REASON_MAX_CHARS)]


@settings(max_examples=300, deadline=None)
@given(reason=st.text(max_size=400), actor=st.text(max_size=200))
def test_any_stored_text_is_exported_as_a_row_that_reads_back_as_itself(reason, actor):
    """Whatever a store holds (control characters, ESC sequences, line breaks, quotes, too
    long: values written before the limits, or by another program), the exported value is
    one a reason check accepts and reads back unchanged from the export row."""
    shown = one_line(reason, REASON_MAX_CHARS)
    assert check_reason(shown) == shown
    assert len(shown) <= REASON_MAX_CHARS and "\x1b" not in shown and "\n" not in shown
    assert read(export_row("+12125550101", reason, actor)) == [Entry(1, "+12125550101", shown)]


def test_a_quoted_reason_over_several_lines_is_one_record_on_one_line():
    data = b'+12125550101,"asked not to be called,\r\nagain on\n  2026-11-29",x\n+12125550102\n'
    assert read(data) == [
        Entry(1, "+12125550101", "asked not to be called, again on 2026-11-29"),
        Entry(4, "+12125550102", ""),
    ]


def test_a_quote_that_never_closes_rejects_its_line_only():
    data = b'+12125550101,"asked not\n+12125550102\n+12125550103,"x""y"\n'
    items = read(data)
    assert isinstance(items[0], Rejected) and items[0].line == 1
    assert "not closed" in items[0].message
    assert items[1:] == [Entry(2, "+12125550102", ""), Entry(3, "+12125550103", 'x"y')]


def test_a_quoted_record_longer_than_the_limit_is_rejected_and_the_rest_read():
    data = b'+12125550101,"' + b"a\n" * MAX_RECORD_CHARS + b'"\n+12125550102\n'
    items = read(data)
    assert isinstance(items[0], Rejected) and items[0].line == 1
    # the lines read ahead are read again on their own: "a" is not a number, the last is
    assert items[-1] == Entry(MAX_RECORD_CHARS + 2, "+12125550102", "")


def test_a_huge_line_is_skipped_without_reading_it_whole():
    handle = io.BytesIO(b"+12125550101," + b"x" * 5_000_000 + b"\n+12125550102\n")
    items = list(read_lines(bounded_lines(handle), parse))
    assert isinstance(items[0], Rejected) and "longer than" in items[0].message
    assert len(items[0].text) <= 80
    assert items[1] == Entry(2, "+12125550102", "")


def test_a_reason_with_an_escape_sequence_or_bidi_override_is_rejected_by_line():
    data = b"+12125550101,\x1b[2Jcleared\n+12125550102,a\xe2\x80\xaeb\n+12125550103,ok\n"
    items = read(data)
    assert [(i.line, type(i).__name__) for i in items] == [
        (1, "Rejected"), (2, "Rejected"), (3, "Entry"),
    ]  # fmt: skip
    assert "U+001B" in items[0].message and "U+202E" in items[1].message
