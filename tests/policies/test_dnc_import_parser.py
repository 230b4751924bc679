"""Reading do-not-call files: every line on its own, bad lines reported by line number."""

from __future__ import annotations

from corecall_policy_dnc.importing import Entry, Rejected, read_lines

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
    assert "longer than 1000" in rejected[11].message
    assert rejected[4].as_json() == {
        "line": 4, "text": "call me maybe", "message": rejected[4].message,
    }  # fmt: skip


def test_empty_file():
    assert read(b"") == []
