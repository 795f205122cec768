"""Column widths that fit a table into the terminal without cutting a number.

Rich shrinks every column in proportion when a table is too wide, numbers
included, so a value of ``6.101`` can print as ``6.1`` over ``01`` or vanish.
The comparison table instead gives numbers their full width and takes the
room from text columns (names, settings), which end in an ellipsis; when even
that is not enough, the caller drops whole columns.
"""

from __future__ import annotations

from collections.abc import Sequence

# Box-drawing table: one space each side of a cell and one rule between cells, plus the last rule;
# no space against the outer rules (rich's pad_edge=False).
CELL_OVERHEAD = 3


def table_width(widths: Sequence[int]) -> int:
    """Characters a table with these column widths takes on screen (rich, ``pad_edge=False``)."""
    return sum(widths) + CELL_OVERHEAD * len(widths) + 1 - 2 if widths else 0


def fit_widths(natural: Sequence[int], floors: Sequence[int | None], available: int) -> list[int] | None:
    """Widths for each column so that the table fits in ``available`` characters, or None if it cannot.

    ``natural`` is each column's widest cell; a column whose floor is None is
    fixed (a number), the others may shrink to their floor, widest first, so
    one long name gives up room before a short setting does.
    """
    widths = list(natural)
    excess = table_width(widths) - available
    while excess > 0:
        shrinkable = [i for i, floor in enumerate(floors) if floor is not None and widths[i] > floor]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters in the middle: run names differ in their last part."""
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head):]}"
