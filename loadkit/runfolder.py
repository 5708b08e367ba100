"""Reading a run folder: its reports (JSON files with a "schema" key) and the runner's run.json.

A file that is not JSON, or JSON without a "schema" key, is not a report and is skipped; a folder
with no report is still a folder (the run may have failed before writing one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
