"""The run folder: created once per run (results/<UTC stamp>_<label>/, shared
with children through LOADTEST_RUN_DIR) and read back (its reports and run.json)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def utc_stamp() -> str:
    """Current UTC time as a path-safe stamp, e.g. 20260126T142501Z."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._\[\]-]+", "_", name).strip("._") or "run"


def results_root() -> Path:
    """LOADTEST_RESULTS_ROOT, else the repository's results/ folder."""
    env = os.environ.get("LOADTEST_RESULTS_ROOT", "").strip()
    return Path(env) if env else REPO_ROOT / "results"


def run_dir(label: str, *, root: Path | None = None) -> Path:
    """The run's folder: LOADTEST_RUN_DIR when set, else a new results/<UTC stamp>_<label>/.

    A new folder is exported as LOADTEST_RUN_DIR so that child processes (pytest-xdist and Locust
    workers, the runner's scenarios) write into the same one.
    """
    shared = os.environ.get("LOADTEST_RUN_DIR", "").strip()
    if shared:
        path = Path(shared)
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = (root or results_root()) / f"{utc_stamp()}_{safe_name(label)}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    os.environ["LOADTEST_RUN_DIR"] = str(path)
    return path


def writable_problem() -> str | None:
    """None when this run's results can be written, else one line saying where and why not.

    Checks LOADTEST_RUN_DIR when set, else the results root (created if missing), so that a run
    can refuse before it sends any request."""
    shared = os.environ.get("LOADTEST_RUN_DIR", "").strip()
    folder = Path(shared) if shared else results_root()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return (
            f"results folder not writable: {folder} ({exc.strerror or exc}); "
            "set LOADTEST_RESULTS_ROOT to a writable folder"
        )
    return None


RUN_INFO = "run.json"


class RunFolderError(Exception):
    """The folder cannot be read as a run folder (one line, for a CLI)."""


def _read_json(path: Path) -> Any:
    """Parsed JSON, or None when the file is unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def load_reports(run_dir: Path) -> list[dict[str, Any]]:
    """Every scenario report in ``run_dir``, ordered by start time then name."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"not a run folder: {run_dir}")
    reports = []
    for path in sorted(run_dir.glob("*.json")):
        data = _read_json(path)
        if isinstance(data, dict) and "schema" in data:
            data.setdefault("test_name", path.stem)
            reports.append(data)
    return sorted(reports, key=lambda r: (str(r.get("started_at", "")), str(r["test_name"])))


def load_run_info(run_dir: Path) -> dict[str, Any]:
    """The runner's description of the run (preset, target, database, exit code), or {}."""
    data = _read_json(Path(run_dir) / RUN_INFO)
    return data if isinstance(data, dict) else {}
