"""The Locust tags the locustfile defines, read from its source (so help and checks never drift).

``known_tags()`` parses ``load_test.py`` and the project modules it imports from (a persona may
live in one: `locust_plugin.defect_prober`), with no import (Locust and gevent stay unloaded),
and returns every string given to ``@tag(...)``; ``unknown_tags_problem`` gives the one line a
runner prints for a tag nobody defines, listing the valid ones.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "load_test.py"


def known_tags(locustfile: Path = LOCUSTFILE) -> list[str]:
    """Every tag in ``@tag("a", "b")`` decorators of the locustfile and of the ``loadkit``
    modules it imports from, sorted, each once."""
    tree = _parse(Path(locustfile))
    trees = [tree] + [_parse(path) for path in _project_imports(tree)]
    found: set[str] = set()
    for node in (n for t in trees for n in ast.walk(t)):
        if isinstance(node, ast.Call) and _is_tag(node.func):
            found.update(
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return sorted(found)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _project_imports(tree: ast.Module) -> list[Path]:
    """The files of the ``loadkit`` modules a ``from loadkit... import`` line names."""
    paths = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loadkit"):
            base = REPO / node.module.replace(".", "/")
            candidates = [base.with_suffix(".py")]
            candidates += [base / f"{alias.name}.py" for alias in node.names]
            paths += [path for path in candidates if path.is_file()]
    return sorted(set(paths))


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
