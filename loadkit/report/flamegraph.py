"""Draw a flame graph (SVG, no script, no external files) from a py-spy recording's busy stacks.

Frames are merged into a tree from the outermost call; each box's width is its share of the busy
samples (idle threads left out), children stacked above their caller. Hover a box for its function,
file and sample count. Python frames are warm colours, native libraries orange, the C runtime grey.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from html import escape
from pathlib import Path

from loadkit.report.profile_stacks import Stack, is_idle

WIDTH, ROW, PAD, TOP = 1200, 16, 10, 34
MIN_BOX_PX = 0.3
CHAR_PX = 7


class _Node:
    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _tree(stacks: Iterable[Stack]) -> _Node:
    root = _Node()
    for stack in stacks:
        if is_idle(stack.frames):
            continue
        node = root
        node.count += stack.count
        for frame in stack.frames:
            node = node.children.setdefault(frame.label, _Node())
            node.count += stack.count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def _colour(label: str) -> str:
    shade = zlib.crc32(label.encode()) % 60
    if ".so" in label:
        return f"rgb(240,{120 + shade},40)"
    if ".c)" in label or ".h)" in label:
        return f"rgb({170 + shade // 2},{170 + shade // 2},{170 + shade // 2})"
    return f"rgb(230,{60 + shade * 2},{40 + shade // 2})"


def _box(label: str, count: int, total: int, x: float, y: float, width: float) -> str:
    share = 100.0 * count / total
    text = label if len(label) * CHAR_PX < width else label[: int(width / CHAR_PX) - 2] + ".."
    shown = f'<text x="{x + 3:.1f}" y="{y + 12}">{escape(text)}</text>' if width > 30 else ""
    return (
        f"<g><title>{escape(label)}: {count} samples ({share:.1f}%)</title>"
        f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 1}" '
        f'fill="{_colour(label)}" rx="2"/>{shown}</g>'
    )


def _boxes(node: _Node, total: int, x: float, level: int, height: int) -> list[str]:
    out, scale = [], (WIDTH - 2 * PAD) / total
    for label, child in sorted(node.children.items()):
        width = child.count * scale
        if width >= MIN_BOX_PX:
            y = height - PAD - (level + 1) * ROW
            out.append(_box(label, child.count, total, x, y, width))
            out += _boxes(child, total, x, level + 1, height)
        x += width
    return out


def svg(stacks: Iterable[Stack], title: str = "Where the server's CPU went") -> str:
    """The flame graph as SVG text."""
    root = _tree(stacks)
    height = TOP + PAD + max(_depth(root) - 1, 1) * ROW
    body = _boxes(root, root.count, PAD, 0, height) if root.count else []
    heading = f"{title}: {root.count} busy samples" if root.count else f"{title}: no busy samples"
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">',
            '<rect width="100%" height="100%" fill="#fdfdf8"/>',
            f'<text x="{PAD}" y="20" font-size="14">{escape(heading)}</text>',
            *body,
            "</svg>",
        ]
    )


def write_svg(stacks: Iterable[Stack], path: Path) -> Path:
    """Write the flame graph to ``path``."""
    Path(path).write_text(svg(stacks), encoding="utf-8")
    return Path(path)
