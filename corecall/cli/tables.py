"""Tables that never cut data.

* stdout is not a terminal (a pipe, a file): tab-separated values with a header line, every
  value whole, so ``corecall calls list | grep 0408`` and ``cut -f3`` work.
* a terminal wide enough: a table in which only the free-text columns (``wrap``) wrap, at
  word boundaries; numbers, names, codes and times always keep their full width.
* a terminal too narrow for that: one block per row, ``column: value`` per line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from corecall.cli.common import console

_MIN_WRAP = 12  # a wrapped text column is never narrower than this
_PER_COLUMN = 2  # rich's padding per column (box.SIMPLE_HEAD has no vertical lines)


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    wrap: Iterable[str] = (),
    empty: str = "",
) -> None:
    """Print ``rows`` under ``headers``; ``wrap`` names the columns that may wrap."""
    cells = [[_cell(v) for v in row] for row in rows]
    if not cells and empty:
        console.print(empty)
        return
    if not console.is_terminal:
        _print_tsv(headers, cells)
        return
    wrapping = set(wrap)
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    needed = sum(
        min(w, _MIN_WRAP) if h in wrapping else w for h, w in zip(headers, widths, strict=True)
    ) + _PER_COLUMN * len(headers)
    if needed > console.width:
        _print_records(headers, cells)
        return
    from rich import box  # on use: `corecall --help` and `--version` never load rich tables
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    for header, width in zip(headers, widths, strict=True):
        if header in wrapping:
            table.add_column(header, overflow="fold", min_width=min(width, _MIN_WRAP), ratio=1)
        else:
            table.add_column(header, no_wrap=True, min_width=width, overflow="ignore")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _cell(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    return " ".join(text.split()) if any(c in text for c in "\t\r\n") else text


def _print_tsv(headers: Sequence[str], rows: list[list[str]]) -> None:
    out = console.file
    out.write("\t".join(headers) + "\n")
    for row in rows:
        out.write("\t".join(row) + "\n")
    out.flush()


def _print_records(headers: Sequence[str], rows: list[list[str]]) -> None:
    label = max(len(h) for h in headers)
    blocks = []
    for row in rows:
        blocks.append("\n".join(f"{h:>{label}}: {v}" for h, v in zip(headers, row, strict=True)))
    console.print("\n\n".join(blocks))
