"""Reading do-not-call files: every line on its own, bad lines reported by line number."""

from __future__ import annotations

import csv
import io

import pytest
from corecall_policy_dnc.importing import (
    MAX_RECORD_CHARS,
    Entry,
    Rejected,
    bounded_lines,
    is_header_word,
    read_lines,
)
from hypothesis import assume, given, settings
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


# --------------------------------------------------------------------------- other shapes
# A file of another shape than number[,reason,...] (tester5: a contacts app's 'Name,Phone'
# export was told "it has no digits", a semicolon file "can't contain letters"): each line
# says which cell was read and what works, the file's shape is said in full once, and no
# number is ever taken from another column.

FORMAT_SAID = "each line's first column is the number, columns separated by commas"


def rejected_messages(data: bytes) -> dict[int, str]:
    items = read(data)
    assert not [i for i in items if isinstance(i, Entry)], items  # nothing from column 2
    return {i.line: i.message for i in items}


def test_a_contacts_export_with_the_numbers_in_column_2():
    messages = rejected_messages(b"Name,Phone\nAlice,+12125550184\nBob,(212) 555-0185\n")
    assert messages[1].startswith("a header row with the numbers in column 2 ('Phone')")
    assert FORMAT_SAID in messages[1] and "move that column first" in messages[1]
    assert messages[2].startswith(
        "the first column, 'Alice', is not a phone number, but column 2 is;"
    )
    assert FORMAT_SAID in messages[2] and "docs/compliance.md" in messages[2]
    assert messages[3] == "the first column, 'Bob', is not a phone number; column 2 is (see line 2)"


def test_the_numbers_in_another_column_without_a_header():
    messages = rejected_messages(b"Alice,x,+12125550184\n,+12125550185\n")
    assert messages[1].startswith(
        "the first column, 'Alice', is not a phone number, but column 3 is;"
    )
    assert messages[2].startswith("the first column, '', is not a phone number, but column 2 is;")


@pytest.mark.parametrize(
    ("separator", "name"), [(b";", "semicolons"), (b"\t", "tabs"), (b"|", "vertical bars")]
)
def test_columns_separated_by_something_else_than_commas(separator, name):
    """European Excel writes ';', a copied range or .tsv tabs: said in full once."""
    data = b"phone%sreason\n+12125550183%ssemi\n+1 212 555 0182%sasked, twice\n" % (
        (separator,) * 3
    )
    messages = rejected_messages(data)
    assert messages[1].startswith(
        f"the columns are separated by {name}, so the whole line was read as the number, "
        f"but {FORMAT_SAID}"
    )
    assert "save the file as CSV with commas" in messages[1]
    assert messages[2] == f"the columns are separated by {name}, not commas (see line 1)"
    assert messages[3] == messages[2]
    # without a header: the first line with a number says it
    messages = rejected_messages(b"+12125550183%ssemi\n" % separator)
    assert messages[1].startswith(f"the columns are separated by {name}, so")


def test_an_extension_after_a_semicolon_is_still_an_extension():
    (item,) = read(b"+12125550123;ext=12\n")
    assert isinstance(item, Rejected) and "Extensions" in item.message


@pytest.mark.parametrize(
    "header",
    [b"number,reason", b"Phone Number,Name", b"E.164,why", b"Mobile,notes", b"phone-no,x", b"TEL"],
)
def test_header_rows_are_skipped_whatever_their_spelling(header):
    assert read(header + b"\n+12125550101,asked\n") == [Entry(2, "+12125550101", "asked")]


def test_a_first_column_that_is_not_a_number_names_the_cell_and_the_format():
    messages = rejected_messages(b"Name,Email\nAlice,a@example.com\ncall me maybe\n")
    assert messages[1].startswith("the first column, 'Name', was read as the number: That isn't")
    assert messages[1].endswith(
        "Each line's first column is the number, columns separated by commas "
        "(number[,reason,...]; see docs/compliance.md)."
    )
    assert messages[2].startswith("the first column, 'Alice', was read as the number:")
    assert (
        messages[3].startswith("That isn't a phone number") and FORMAT_SAID in messages[3].lower()
    )
    # a number refused for what it is, not for the file's shape, is told as such
    (item,) = read(b"911,y\n")
    assert item.message.startswith("the first column, '911', was read as the number: 911 is an")
    assert "first column is the number" not in item.message


@settings(max_examples=100, deadline=None)
@given(name=st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=12))
def test_a_number_is_never_taken_from_another_column(name):
    assume(not is_header_word(name))
    (item,) = read(f"{name},+12125550184,reason\n".encode())
    assert isinstance(item, Rejected)
