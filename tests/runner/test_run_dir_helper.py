"""The runner's run folder comes from loadkit's one run-folder maker: `runner_helper.py run-dir`
makes results/<UTC stamp>_<label>/ (a new one beside a same-second twin), ignores a stale
LOADTEST_RUN_DIR, and refuses an unwritable results root with one line and exit 2."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / "scripts" / "runner_helper.py"


def _run_dir(root: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "LOADTEST_RESULTS_ROOT": str(root), **env}
    return subprocess.run(
        ["python3", str(HELPER), "run-dir", "quick"],
        capture_output=True,
        text=True,
        timeout=30,
        env=environ,
    )


def test_run_dir_is_stamped_new_and_ignores_a_stale_run_dir(tmp_path: Path) -> None:
    """Two calls in one second give two folders; LOADTEST_RUN_DIR from the shell is not reused."""
    stale = tmp_path / "stale"
    first = _run_dir(tmp_path / "results", LOADTEST_RUN_DIR=str(stale))
    second = _run_dir(tmp_path / "results")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    a, b = Path(first.stdout.strip()), Path(second.stdout.strip())
    assert a.is_dir() and b.is_dir() and a != b and not stale.exists()
    assert re.fullmatch(r"\d{8}T\d{6}Z_quick(-\d+)?", a.name) and a.parent == tmp_path / "results"


def test_an_unwritable_results_root_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A results root that cannot be made: exit 2, one line naming it, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _run_dir(blocker / "results")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "results folder not writable" in lines[0] and str(blocker) in lines[0]
    )
