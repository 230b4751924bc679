"""Reading a do-not-call file: CSV or one number a line, any format ``/call`` accepts.

Each line is read on its own (a bad byte or a bad number rejects that line only, with its
line number); the first column is the number, an optional second column the reason, other
columns are ignored (so ``corecall dnc export`` output imports back as is). Blank lines,
lines starting with ``#`` and a header line (first column ``number``, ``phone``...) are
skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator

import attrs

from corecall.domain import NumberVerdict
from corecall.errors import RefusedError
from corecall.fields import check_reason

#: A line longer than this is refused (no phone number and reason need more).
MAX_LINE_CHARS = 1000
HEADER_WORDS = frozenset({"number", "phone", "phone_number", "telephone", "tel", "e164", "msisdn"})


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


def read_lines(
    lines: Iterable[bytes], parse: Callable[[str], NumberVerdict]
) -> Iterator[Entry | Rejected]:
    """Yield an :class:`Entry` or a :class:`Rejected` for each line that is not blank, a
    comment or the header. ``lines`` are raw bytes (a file opened in binary mode); ``parse``
    turns a number as typed into a verdict (the ``/call`` pipeline)."""
    for index, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8-sig" if index == 1 else "utf-8")
        except UnicodeDecodeError:
            yield Rejected(index, raw[:80].decode("utf-8", "replace").strip(), "not UTF-8 text")
            continue
        text = text.rstrip("\r\n")
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(text) > MAX_LINE_CHARS:
            yield Rejected(index, text[:80], f"line longer than {MAX_LINE_CHARS} characters")
            continue
        try:
            cells = next(csv.reader([text], skipinitialspace=True))
        except csv.Error as exc:
            yield Rejected(index, text, f"not a CSV line: {exc}")
            continue
        first = cells[0].strip() if cells else ""
        if first.lower() in HEADER_WORDS:
            continue
        reason = cells[1].strip() if len(cells) > 1 else ""
        verdict = parse(first)
        if not verdict.ok:
            yield Rejected(index, text, verdict.message)
            continue
        try:
            reason = check_reason(reason)
        except RefusedError as exc:
            yield Rejected(index, text, exc.message)
            continue
        yield Entry(index, verdict.e164, reason)  # type: ignore[arg-type]
