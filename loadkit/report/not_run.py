"""The run folder's ``run.json`` ``scenarios`` list: the scenarios that never wrote their report.

The runner (through scripts/runner_helper.py) calls ``record`` after each pytest scenario process
of a preset. A scenario whose JSON report exists needs no entry (its report carries its verdict).
One that exited without it (exit 2 at collection, a usage error, a crash) is listed as
``{"node", "test_name", "verdict": "not_run", "exit_code", "exit_line"}``: the shape that
``loadkit.report.scenario_verdict.not_run_entries`` renders as "not run: exit 2: <line>".
run.json is replaced atomically (temporary file, fsync, rename), so an interrupt at any moment
leaves the previous or the next whole file, never half of one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from loadkit.report.redaction import redact
from loadkit.report.run_folder import safe_test_name
from loadkit.report.scenario_verdict import NOT_RUN

RUN_INFO = "run.json"
MAX_LINE = 300
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Lines that say why a pytest process ended, best first.
WHY = (
    re.compile(r"^!+ (?:_pytest\.outcomes\.)?Exit: (.+?) !+$"),  # pytest.exit(reason, returncode)
    re.compile(r"^E\s+(.+)"),
    re.compile(r"^(ERROR\b.+)"),
    re.compile(r"^(\S+Error: .+)"),
    re.compile(r"^(=+ .*(error|no tests ran|interrupted).* =+)$", re.IGNORECASE),
)


def exit_line(output: str) -> str:
    """The one line of a pytest process's output that says why it ended (redacted, shortened)."""
    lines = [ANSI.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    for pattern in WHY:
        found = [m.group(1) for m in map(pattern.match, lines) if m]
        if found:
            return _short(found[-1])
    return _short(lines[-1]) if lines else "no output"


def has_report(run_dir: Path, node: str) -> bool:
    """Whether the scenario of ``node`` wrote its JSON report into the run folder."""
    path = Path(run_dir) / f"{safe_test_name(node)}.json"
    try:
        return "schema" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def record(run_dir: Path, node: str, exit_code: int, output: str) -> dict[str, Any] | None:
    """List ``node`` as not run in run.json when it wrote no report; return the entry (or None)."""
    if has_report(run_dir, node):
        return None
    entry = {
        "node": node,
        "test_name": safe_test_name(node),
        "verdict": NOT_RUN,
        "exit_code": exit_code,
        "exit_line": exit_line(output),
    }
    path = Path(run_dir) / RUN_INFO
    info = read_info(path)
    kept = [e for e in info.get("scenarios") or [] if isinstance(e, dict) and e.get("node") != node]
    info["scenarios"] = kept + [entry]
    write_atomic(path, info)
    return entry


def read_info(path: Path) -> dict[str, Any]:
    """run.json as a dict ({} when missing or not an object)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` by temporary file, fsync and rename (then fsync the folder)."""
    path = Path(path)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _short(line: str) -> str:
    line = redact(line)
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
