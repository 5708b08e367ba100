"""The Locust tags the locustfile defines, read from its source (so help and checks never drift).

``known_tags()`` parses ``load_test.py`` (no import: Locust and gevent stay unloaded) and returns
every string given to ``@tag(...)``; ``unknown_tags_problem`` gives the one line a runner prints
for a tag nobody defines, listing the valid ones.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parents[2] / "load_test.py"


def known_tags(locustfile: Path = LOCUSTFILE) -> list[str]:
    """Every tag in ``@tag("a", "b")`` decorators of the locustfile, sorted, each once."""
    tree = ast.parse(Path(locustfile).read_text(encoding="utf-8"), filename=str(locustfile))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_tag(node.func):
            found.update(
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return sorted(found)


def split_tags(text: str) -> list[str]:
    """ "a,b c" -> ["a", "b", "c"] (commas or spaces between tags)."""
    return [tag for tag in text.replace(",", " ").split() if tag]


def unknown_tags_problem(wanted: Iterable[str], known: Iterable[str]) -> str | None:
    """One line naming the undefined tags and listing the valid ones; None when all are defined."""
    known = sorted(set(known))
    unknown = [tag for tag in wanted if tag not in known]
    if not unknown:
        return None
    word = "tag" if len(unknown) == 1 else "tags"
    return f"unknown {word} {', '.join(unknown)}; valid tags: {', '.join(known)}"


def _is_tag(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "tag") or (
        isinstance(func, ast.Attribute) and func.attr == "tag"
    )
