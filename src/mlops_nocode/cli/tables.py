"""Terminal tables that stay readable: one line per row at any width (long cells shortened with "…",
optional columns dropped on narrow terminals), and big tables summarised instead of printed whole."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.table import Table
from rich.text import Text

Cell = str | Text
MAX_ROWS = 50
"""Tables longer than this are summarised (first and last rows, counts) unless every row is asked for."""
HEAD, TAIL = 20, 10
_MIN_WIDTH = 4


@dataclass(frozen=True)
class Col:
    """A column: `middle` shortens its cells in the middle (ids: both ends stay readable); the column is
    left out when the terminal is narrower than `min_terminal`."""

    header: str
    middle: bool = False
    justify: Literal["left", "right"] = "left"
    min_terminal: int = 0
    weight: float = 1.0
    """Its share of the width when columns must be shortened (2.0: twice the others')."""


def shorten(cell: Cell, width: int, middle: bool = False) -> Cell:
    """`cell` cut to `width` characters with "…" (in the middle for `middle`, else at the end)."""
    if _length(cell) <= width:
        return cell
    if isinstance(cell, Text):
        cut = cell.copy()
        cut.truncate(width, overflow="ellipsis")
        return cut
    if width <= 1:
        return "…"[:width]
    if middle:
        left = (width - 1) // 2
        return cell[:left] + "…" + cell[len(cell) - (width - 1 - left) :]
    return cell[: width - 1] + "…"


def _length(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else max((len(x) for x in cell.splitlines()), default=0)


def fit_widths(natural: Sequence[int], available: int, weights: Sequence[float] | None = None) -> list[int]:
    """Column widths summing to at most `available`: narrow columns keep their width, the widest ones
    share what is left in proportion to their weights (none below a small minimum)."""
    if sum(natural) <= available:
        return list(natural)
    w = list(weights) if weights is not None else [1.0] * len(natural)

    def widths_at(cap: float) -> list[int]:
        return [max(min(n, _MIN_WIDTH), min(n, int(cap * wi))) for n, wi in zip(natural, w, strict=True)]

    low, high = 0.0, float(max(natural))
    for _ in range(40):  # the largest cap that fits
        mid = (low + high) / 2
        if sum(widths_at(mid)) <= available:
            low = mid
        else:
            high = mid
    widths = widths_at(low)
    spare = available - sum(widths)
    for i in sorted(range(len(natural)), key=lambda i: -w[i]):  # hand out the rounding rest
        while spare > 0 and widths[i] < natural[i]:
            widths[i] += 1
            spare -= 1
    return widths


def fitted(
    title: str, cols: Sequence[Col], rows: Iterable[Sequence[Cell]], width: int, caption: str | None = None
) -> Table:
    """A table of one line per row that fits `width` terminal columns (`caption` goes below it)."""
    keep = [i for i, c in enumerate(cols) if width >= c.min_terminal]
    shown = [cols[i] for i in keep]
    data = [[row[i] for i in keep] for row in rows]
    natural = [max([len(c.header), *(_length(r[j]) for r in data)]) for j, c in enumerate(shown)]
    available = max(len(shown) * _MIN_WIDTH, width - 3 * len(shown) - 1)
    widths = fit_widths(natural, available, [c.weight for c in shown])
    table = Table(title=Text(title), caption=Text(caption) if caption else None, caption_justify="left")
    for c, w in zip(shown, widths, strict=True):
        table.add_column(c.header, width=w, no_wrap=True, overflow="ellipsis", justify=c.justify)
    for r in data:  # plain strings become Text: what users wrote ("[bold]" in a parameter) is not markup
        cells = (shorten(cell, w, c.middle) for cell, w, c in zip(r, widths, shown, strict=True))
        table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))
    return table


def summarised(rows: list[list[Cell]], show_all: bool, what: str) -> list[list[Cell]]:
    """All rows, or (past MAX_ROWS) the first HEAD and last TAIL with a row saying how many are left out."""
    if show_all or len(rows) <= MAX_ROWS:
        return rows
    hidden = len(rows) - HEAD - TAIL
    gap: list[Cell] = [Text(f"⋯ {hidden:,} more {what}", style="dim")] + [""] * (len(rows[0]) - 1)
    return [*rows[:HEAD], gap, *rows[-TAIL:]]


def counts_table(title: str, header: str, keys: Iterable[str], width: int, limit: int = 20) -> Table:
    """How many rows have each key (most first), e.g. steps per namespace."""
    counts = Counter(keys).most_common()
    rows: list[list[Cell]] = [[k, f"{n:,}"] for k, n in counts[:limit]]
    if len(counts) > limit:
        rest = sum(n for _, n in counts[limit:])
        rows.append([Text(f"{len(counts) - limit:,} more", style="dim"), f"{rest:,}"])
    return fitted(title, [Col(header, middle=True), Col("steps", justify="right")], rows, width)
