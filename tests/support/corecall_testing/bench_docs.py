"""The one writer of docs/benchmarks.md's figures.

Each benchmark in ``bench/`` owns one section of the file, fenced by two HTML comments named
after it::

    <!-- memory-bench:start -->
    ## Bot process memory (issue 11)
    ...
    <!-- memory-bench:end -->

``--write-docs`` replaces what lies between the two markers and leaves the rest of the file
(other benchmarks' sections, prose written by hand between them) as it was. A section that is
not there yet is appended at the end. A file whose markers are damaged (one without the other,
twice, or in the wrong order) is refused with a ``ValueError`` rather than guessed at, so a
run never eats a neighbour's figures.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["load_average", "markers", "replace_section", "write_section"]

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def load_average() -> str:
    """A sentence with the machine's load average now (1, 5, 15 minutes), to write next to
    figures measured on a shared machine."""
    one, five, fifteen = os.getloadavg()
    return (
        f"Load average when written: {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)."
    )


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the section called ``name`` (e.g. ``"ami-bench"``).

    Raises ``ValueError`` for a name that is not lower-case words joined by hyphens.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"section name {name!r}: use lower-case words joined by '-'")
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str, *, heading: str = "") -> str:
    """``text`` with section ``name`` holding ``body`` (markers added; blank lines at
    ``body``'s ends dropped).

    An existing section is replaced in place; a missing one is appended after one blank line,
    preceded by ``heading`` when given (a heading that stays outside the markers).
    Raises ``ValueError`` when the markers in ``text`` are not exactly one start followed by one
    end.
    """
    start, end = markers(name)
    block = f"{start}\n{body.strip(chr(10))}\n{end}"
    starts, ends = text.count(start), text.count(end)
    if starts == ends == 0:
        prefix = f"{heading.strip()}\n\n" if heading.strip() else ""
        return text.rstrip("\n") + "\n\n" + prefix + block + "\n"
    if starts != 1 or ends != 1 or text.index(start) > text.index(end):
        raise ValueError(
            f"the benchmarks file has {starts} {start!r} and {ends} {end!r} markers (one of "
            "each, start first, is needed): repair it by hand, then run again"
        )
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail


def write_section(docs: Path, name: str, body: str, *, heading: str = "") -> None:
    """Put ``body`` into section ``name`` of the file ``docs`` (see :func:`replace_section`).

    A missing file is started with a ``# Benchmarks`` title. The file is replaced atomically
    (written beside it, then renamed), so a reader never sees half a file.
    """
    text = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    new = replace_section(text, name, body, heading=heading)
    scratch = docs.with_name(f".{docs.name}.{os.getpid()}.tmp")
    scratch.write_text(new, encoding="utf-8")
    os.replace(scratch, docs)
