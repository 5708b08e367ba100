"""Reading the rendered Markdown back: sections, table rows and figures, for the render tests."""

from __future__ import annotations

import math


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    start = markdown.index(f"## {heading}")
    end = markdown.find("\n## ", start + 3)
    return markdown[start : end if end != -1 else len(markdown)]


def bold_block(text: str, name: str) -> str:
    """The lines after ``**name**`` up to the next bold line."""
    start = text.index(f"**{name}**") + len(name) + 4
    end = text.find("\n**", start)
    return text[start : end if end != -1 else len(text)]


def row(text: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r}")


def same_figure(cell: str, value: object) -> bool:
    """Whether a printed cell shows the JSON value (floats to 2 decimals, None as n/a)."""
    if value is None:
        return cell == "n/a"
    if isinstance(value, bool):
        return cell == ("yes" if value else "no")
    if isinstance(value, int):
        return cell == str(value)
    if isinstance(value, float):
        return math.isclose(float(cell), value, abs_tol=0.0051)
    return cell == str(value)
