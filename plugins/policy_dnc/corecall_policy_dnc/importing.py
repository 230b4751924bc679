"""Reading a do-not-call file: CSV or one number a line, any format ``/call`` accepts.

Each record is read on its own (a bad byte or a bad number rejects that record only, with
its line number); the first column is the number, an optional second column the reason,
other columns are ignored (so ``corecall dnc export`` output imports back as is). A quoted
cell may span lines (RFC 4180; spreadsheets write multi-line notes so): its line breaks
become spaces, since a reason is one line. Blank lines, lines starting with ``#`` and a
header line (first column ``number``, ``phone``, ``Phone Number``...) are skipped.

A line whose first column is not a number is rejected with a message that names the cell
read and says what works; a file of another shape (columns separated by semicolons or tabs,
the numbers in another column, a header naming them elsewhere) is recognised and said so,
in full on its first line. The number is never taken from another column: a guess would
list the wrong number when the guess is wrong.

The limits are the stored fields' limits (:mod:`corecall.fields`), so whatever
``corecall dnc export`` writes is read back: a record may be as long as an export row of
the longest values with every character quoted.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import attrs

from corecall.domain import NumberVerdict
from corecall.errors import RefusedError
from corecall.fields import (
    ACTOR_MAX_CHARS,
    E164_MAX_CHARS,
    REASON_MAX_CHARS,
    check_reason,
    echo,
    fold_line_breaks,
)

#: An export row's ISO 8601 time ("2026-11-29T23:59:59.123456+00:00") and separators.
_TIME_CHARS = 32
#: The longest record read, in characters (all its lines): an export row of the longest
#: stored number, reason, time and actor with every character a doubled quote. Longer
#: records are refused (no phone number and reason need more).
MAX_RECORD_CHARS = 2 * (E164_MAX_CHARS + REASON_MAX_CHARS + _TIME_CHARS + ACTOR_MAX_CHARS) + 16
#: Bytes read of one line at most (UTF-8 takes up to 4 bytes a character): the rest of a
#: longer line is skipped without holding it in memory.
MAX_LINE_BYTES = 4 * MAX_RECORD_CHARS + 2
#: A header's first cell (case, spaces, dots and dashes aside: "Phone Number", "e.164"):
#: the line is skipped.
HEADER_WORDS = frozenset(
    {
        "number", "phone", "phone_number", "phone_no", "telephone", "telephone_number",
        "tel", "e164", "e_164", "msisdn", "mobile", "mobile_number", "mobile_phone", "cell",
        "cell_phone", "cellphone",
    }
)  # fmt: skip
_SHOWN_CHARS = 80
#: What works, for every line whose number cell could not be read.
FORMAT = (
    "each line's first column is the number, columns separated by commas "
    "(number[,reason,...]; see docs/compliance.md)"
)
#: Column separators spreadsheets write instead of commas: ";" (Excel, in languages whose
#: decimal mark is a comma), a tab (.tsv, cells copied from a sheet), "|".
OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
#: "+12125550123;ext=12" (RFC 3966): an extension, refused as one, not a semicolon column.
_EXTENSION_PARAMETER = re.compile(r"\s*ext\s*=.*", re.IGNORECASE)
#: Cells of a rejected line looked at for a number in another column.
_CELLS_LOOKED_AT = 8


@attrs.frozen
class Entry:
    line: int
    number: str  # E.164
    reason: str = ""


@attrs.frozen
class Rejected:
    line: int
    text: str
    message: str

    def as_json(self) -> dict:
        return {"line": self.line, "text": self.text, "message": self.message}


def is_header_word(cell: str) -> bool:
    """Whether ``cell`` names a phone-number column (:data:`HEADER_WORDS`)."""
    return re.sub(r"[\s.\-]+", "_", cell.strip().lower()) in HEADER_WORDS


class _Explainer:
    """The message for a line whose first column is not a number: which cell was read, why
    it is not a number, and what works. When the file's shape is the cause (columns
    separated by semicolons or tabs, a header naming the numbers' column elsewhere, the
    numbers in another column), the first such line says so in full and later ones refer
    to it, so the cause is said once. A number in another column is never imported."""

    def __init__(self, parse: Callable[[str], NumberVerdict]):
        self._parse = parse
        self._first_line: dict[str, int] = {}

    def _once(self, cause: str, index: int, full: str, short: str) -> str:
        first = self._first_line.setdefault(cause, index)
        return full if first == index else f"{short} (see line {first})"

    def __call__(self, index: int, cells: list[str], verdict: NumberVerdict) -> str:
        cells = [c.strip() for c in cells[:_CELLS_LOOKED_AT]] or [""]
        first = cells[0]
        shown = echo(first, 40)
        separator = next((s for s in OTHER_SEPARATORS if s in first), None)
        if separator is not None:
            head, _, rest = first.partition(separator)
            shaped = is_header_word(head) or self._parse(head.strip()).ok
            if shaped and not _EXTENSION_PARAMETER.fullmatch(rest):
                name = OTHER_SEPARATORS[separator]
                return self._once(
                    separator, index,
                    f"the columns are separated by {name}, so the whole line was read as "
                    f"the number, but {FORMAT}: save the file as CSV with commas (in "
                    "Excel: CSV UTF-8, comma-delimited)",
                    f"the columns are separated by {name}, not commas",
                )  # fmt: skip
        if not any(ch.isdigit() for ch in first):
            column = next((i for i, c in enumerate(cells) if i and is_header_word(c)), None)
            if column is not None:
                return self._once(
                    "header", index,
                    f"a header row with the numbers in column {column + 1} "
                    f"({echo(cells[column], 40)}), but {FORMAT}: move that column first",
                    f"a header row with the numbers in column {column + 1}",
                )  # fmt: skip
        column = next((i for i, c in enumerate(cells) if i and c and self._parse(c).ok), None)
        if column is not None:
            return self._once(
                f"column {column}", index,
                f"the first column, {shown}, is not a phone number, but column {column + 1} "
                f"is; {FORMAT}: move the numbers' column first",
                f"the first column, {shown}, is not a phone number; column {column + 1} is",
            )  # fmt: skip
        message = verdict.message
        if len(cells) > 1:
            message = f"the first column, {shown}, was read as the number: {message}"
        if verdict.reason in ("not_a_number", "empty"):
            message += f" {FORMAT[0].upper()}{FORMAT[1:]}."
        return message


def bounded_lines(handle) -> Iterator[bytes]:
    """The lines of a binary file, each cut to :data:`MAX_LINE_BYTES` + 1 bytes (a longer
    line is then refused as too long; its tail is read in chunks and dropped)."""
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (tail := handle.readline(1 << 16)) and not tail.endswith(b"\n"):
                pass
        yield line


class _Lines:
    """Numbered lines with push-back (lines read ahead for a quoted cell that never closed
    are read again on their own)."""

    def __init__(self, lines: Iterable[bytes]):
        self._lines = enumerate(lines, start=1)
        self._back: deque[tuple[int, bytes]] = deque()

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, bytes]:
        return self._back.popleft() if self._back else next(self._lines)

    def push_back(self, taken: list[tuple[int, bytes]]) -> None:
        self._back.extendleft(reversed(taken))


def _decode(index: int, raw: bytes) -> str | Rejected:
    if len(raw) > MAX_LINE_BYTES:
        return Rejected(index, _shown(raw), f"line longer than {MAX_RECORD_CHARS} characters")
    try:
        text = raw.decode("utf-8-sig" if index == 1 else "utf-8")
    except UnicodeDecodeError:
        return Rejected(index, _shown(raw), "not UTF-8 text")
    return text.rstrip("\r\n")


def _shown(raw: bytes) -> str:
    return raw[:_SHOWN_CHARS].decode("utf-8", "replace").strip()


def _inside_quotes(text: str) -> bool:
    """Whether ``text`` ends inside a quoted cell (the record goes on on the next line).
    The csv module's reading: a quote opens a cell only at its start (after spaces), ``""``
    inside is a quote."""
    inside, at_start, i = False, True, 0
    while i < len(text):
        char = text[i]
        if inside:
            if char == '"':
                if text[i + 1 : i + 2] == '"':
                    i += 1
                else:
                    inside = False
        elif char == ",":
            at_start = True
        elif char == '"' and at_start:
            inside, at_start = True, False
        elif char != " ":
            at_start = False
        i += 1
    return inside


def _rest_of_record(lines: _Lines, first: str) -> tuple[str | None, list[tuple[int, bytes]]]:
    """Read on until the quoted cell ``first`` opened closes: the whole record, or None (and
    the lines taken) when it does not close within :data:`MAX_RECORD_CHARS` or closes in the
    middle of a cell."""
    text, taken = first, []
    for index, raw in lines:
        taken.append((index, raw))
        line = _decode(index, raw)
        if isinstance(line, Rejected) or len(text) + 1 + len(line) > MAX_RECORD_CHARS:
            break
        text += "\n" + line
        if not _inside_quotes(text):
            # A quote that closed in the middle of a cell ("...not\n+1212...,"x) was a stray
            # quote that swallowed other records: the first line is the bad one.
            return (text if _strict_csv(text) else None), taken
    return None, taken


def _strict_csv(text: str) -> bool:
    """Whether ``text`` is one well-formed CSV record (RFC 4180: a closing quote is
    followed by a comma or the end)."""
    try:
        next(csv.reader([text], skipinitialspace=True, strict=True))
    except csv.Error:
        return False
    return True


def read_lines(
    lines: Iterable[bytes], parse: Callable[[str], NumberVerdict]
) -> Iterator[Entry | Rejected]:
    """Yield an :class:`Entry` or a :class:`Rejected` for each record that is not blank, a
    comment or the header. ``lines`` are raw bytes (a file opened in binary mode, best
    through :func:`bounded_lines`); ``parse`` turns a number as typed into a verdict (the
    ``/call`` pipeline)."""
    source = _Lines(lines)
    explain = _Explainer(parse)
    for index, raw in source:
        text = _decode(index, raw)
        if isinstance(text, Rejected):
            yield text
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(text) > MAX_RECORD_CHARS:
            yield Rejected(
                index, text[:_SHOWN_CHARS], f"line longer than {MAX_RECORD_CHARS} characters"
            )
            continue
        if '"' in text and _inside_quotes(text):
            record, taken = _rest_of_record(source, text)
            if record is None:
                source.push_back(taken)
                yield Rejected(
                    index, text[:_SHOWN_CHARS],
                    "a quoted cell opened on this line is not closed (by a \" before a comma "
                    f"or the line's end) within {MAX_RECORD_CHARS} characters; the next lines "
                    "are read on their own",
                )  # fmt: skip
                continue
            text = record
        if "," in text or '"' in text:
            try:
                cells = next(csv.reader([text], skipinitialspace=True))
            except csv.Error as exc:
                yield Rejected(index, text, f"not a CSV line: {exc}")
                continue
        else:
            cells = [text]
        first = cells[0].strip() if cells else ""
        if first[:1].isalpha() and is_header_word(first):
            continue
        verdict = parse(first)
        if not verdict.ok:
            yield Rejected(index, text, explain(index, cells, verdict))
            continue
        try:
            reason = check_reason(fold_line_breaks(cells[1]) if len(cells) > 1 else "")
        except RefusedError as exc:
            yield Rejected(index, text, exc.message)
            continue
        yield Entry(index, verdict.e164, reason)  # type: ignore[arg-type]
