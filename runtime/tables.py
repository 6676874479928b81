"""Aligned text tables: what the commands print for people (scripts ask for JSON)."""

from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns, a rule under the header; numbers to the right."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [
        bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(header))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if numeric[i] else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip() + "\n"

    rule = "  ".join("-" * width for width in widths) + "\n"
    return line(cells[0]) + rule + "".join(line(row) for row in cells[1:])
