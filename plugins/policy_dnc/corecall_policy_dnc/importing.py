"""Reading a do-not-call file: CSV or one number a line, any format ``/call`` accepts.

Each record is read on its own (a bad byte or a bad number rejects that record only, with
its line number); the first column is the number, an optional second column the reason,
other columns are ignored (so ``corecall dnc export`` output imports back as is). A quoted
cell may span lines (RFC 4180; spreadsheets write multi-line notes so): its line breaks
become spaces, since a reason is one line. Blank lines, lines starting with ``#`` and a
header line (first column ``number``, ``phone``...) are skipped.

The limits are the stored fields' limits (:mod:`corecall.fields`), so whatever
``corecall dnc export`` writes is read back: a record may be as long as an export row of
the longest values with every character quoted.
"""

from __future__ import annotations

import csv
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
HEADER_WORDS = frozenset({"number", "phone", "phone_number", "telephone", "tel", "e164", "msisdn"})
_SHOWN_CHARS = 80


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
        if first.lower() in HEADER_WORDS:
            continue
        verdict = parse(first)
        if not verdict.ok:
            yield Rejected(index, text, verdict.message)
            continue
        try:
            reason = check_reason(fold_line_breaks(cells[1]) if len(cells) > 1 else "")
        except RefusedError as exc:
            yield Rejected(index, text, exc.message)
            continue
        yield Entry(index, verdict.e164, reason)  # type: ignore[arg-type]
