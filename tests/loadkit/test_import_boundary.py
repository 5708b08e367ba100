"""The pytest side never imports Locust or gevent (gevent monkey-patches the process): each loadkit
module outside the Locust part, imported in a fresh interpreter, leaves both out of sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOADKIT = REPO / "loadkit"
FORBIDDEN = ("gevent", "locust")

# The child imports one module and prints which of FORBIDDEN it brought in.
CHILD = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))"
)


def _is_locust_part(relative: Path) -> bool:
    """The Locust part: a folder or module whose name starts with ``locust``."""
    return any(part.startswith("locust") for part in relative.with_suffix("").parts)


def pytest_side_modules() -> list[str]:
    """Every loadkit module (found on disk, never imported here) outside the Locust part."""
    names = []
    for path in sorted(LOADKIT.rglob("*.py")):
        relative = path.relative_to(REPO)
        if _is_locust_part(relative.relative_to("loadkit")):
            continue
        parts = relative.with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_module_list_covers_the_library() -> None:
    """The walk finds the pytest side (harness, engine, report) and leaves the Locust part out."""
    names = pytest_side_modules()
    assert len(names) >= 25
    assert {"loadkit", "loadkit.render", "loadkit.compare"} <= set(names)
    assert not [n for n in names if n.rsplit(".", 1)[-1].startswith("locust")]


@pytest.mark.parametrize("module", pytest_side_modules())
def test_no_pytest_side_module_imports_locust_or_gevent(module: str) -> None:
    """Imported alone in a fresh interpreter, the module pulls in neither gevent nor locust."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, module], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
