"""The run report: one JSON schema for every run, its run folder, atomic writing, redaction.

Field order follows DESIGN.md ("The report"), with ``verdict`` and ``reason`` after ``passed``
(loadkit.scenario_verdict). Unknown figures are None, never 0. A report is
written with a temporary file in the same folder, fsync and `os.replace`, so a reader sees the old
file or the new one, never half of one; write it from a ``finally`` block and it also survives a
failed or interrupted run.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from loadkit import distribution, scenario_verdict
from loadkit.metrics import RunRecorder

SCHEMA = "therapybridge-loadtest/1"
REPO_ROOT = Path(__file__).resolve().parent.parent
VERSIONED_PACKAGES = (
    "locust",
    "aiohttp",
    "httpx",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "psutil",
    "pytest",
    "pytest-xdist",
)
RESOURCE_FIELDS = (
    "server_pid",
    "memory_initial_mb",
    "memory_peak_mb",
    "memory_growth_mb",
    "cpu_avg_percent",
    "cpu_samples",
    "generator_cpu_percent",
    "generator_saturated",
)
DB_POOL_FIELDS = (
    "size",
    "max_overflow",
    "checked_out_max",
    "open_max",
    "capacity",
    "overflow_max",
    "exhaustion_events",
    "samples",
)
SERVER_SERIES_FIELDS = (
    "server_rss_mb",
    "server_cpu_percent",
    "pool_checked_out",
    "pool_open",
    "pool_overflow",
)

_SECRET_KEYS = r"password|passwd|secret|access_token|refresh_token|token|authorization|api_key"
_SECRET_VALUE = re.compile(
    rf"""(?i)(["']?\b(?:{_SECRET_KEYS})\b["']?\s*[:=]\s*)"""
    r"""(?:bearer\s+)?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&}\]]+)"""
)
_REDACTIONS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[REDACTED]"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[REDACTED]"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@"), r"\1[REDACTED]@"),
)


def _redact_value(match: re.Match) -> str:
    quote = match.group(2)[0] if match.group(2)[0] in "\"'" else ""
    return f"{match.group(1)}{quote}[REDACTED]{quote}"


def redact(text: str) -> str:
    """Strip bearer tokens, JWT-like strings, password/token values and URL passwords from text."""
    text = _SECRET_VALUE.sub(_redact_value, text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def utc_stamp() -> str:
    """Current UTC time as a path-safe stamp, e.g. 20260126T142501Z."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _safe_name(name: str) -> str:
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
    base = (root or results_root()) / f"{utc_stamp()}_{_safe_name(label)}"
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


@functools.cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_info(*, seed: int | None = None) -> dict:
    """Python, platform, CPUs, git commit and package versions (from metadata, never imported)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": _git_commit(),
        "versions": {name: _version(name) for name in VERSIONED_PACKAGES},
        "seed": seed,
    }


def _iso(wall_time: float) -> str:
    return datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="milliseconds")


def _resources_block(resources: dict | None) -> dict:
    if resources is None:
        return {
            **dict.fromkeys(RESOURCE_FIELDS),
            "unavailable_reason": "server resources were not measured",
        }
    return {**dict.fromkeys(RESOURCE_FIELDS), **resources}


def _db_pool_block(db_pool: dict | None) -> dict:
    if db_pool is None:
        return {
            **dict.fromkeys(DB_POOL_FIELDS),
            "samples": 0,
            "unavailable_reason": "the database pool was not sampled",
        }
    return {**dict.fromkeys(DB_POOL_FIELDS), **db_pool}


def _empty_second(t: int) -> dict:
    keys = ("p50_ms", "p95_ms", "p99_ms")
    return {"t": t, "requests": 0, "errors": 0, **dict.fromkeys(keys)}


def _server_by_second(server_series: Iterable[dict], t0: float) -> dict[int, dict]:
    """Server samples grouped by second since t0: CPU averaged, the others at their maximum."""
    groups: dict[int, dict[str, list[float]]] = {}
    for row in server_series:
        offset = row["t"] - t0
        if offset < 0:
            continue
        group = groups.setdefault(int(offset), {key: [] for key in SERVER_SERIES_FIELDS})
        for key in SERVER_SERIES_FIELDS:
            if row.get(key) is not None:
                group[key].append(row[key])
    out = {}
    for sec, group in groups.items():
        out[sec] = {key: (max(v) if v else None) for key, v in group.items()}
        cpu = group["server_cpu_percent"]
        out[sec]["server_cpu_percent"] = round(sum(cpu) / len(cpu), 2) if cpu else None
    return out


def merge_timeseries(rows: list[dict], server_series: Iterable[dict], t0: float) -> list[dict]:
    """Join request rows and server samples (wall ``t``) by second since t0; missing values None."""
    server = _server_by_second(server_series, t0)
    by_t = {row["t"]: dict(row) for row in rows}
    last = max([*by_t, *server, -1])
    merged = []
    for sec in range(last + 1):
        row = by_t.get(sec) or _empty_second(sec)
        row.update(server.get(sec) or dict.fromkeys(SERVER_SERIES_FIELDS))
        merged.append(row)
    return merged


def _measured(row: dict, summary: dict) -> dict:
    """The row with ``measured`` saying what it is, when the caller did not say: the report's
    summary figure (all requests, every endpoint) when the actual is that figure."""
    if row.get("measured"):
        return row
    value = summary.get(str(row.get("metric")))
    if value is not None and value == row.get("actual"):
        row["measured"] = f"the summary of all {summary.get('total_requests')} requests"
    elif str(row.get("metric")) in summary:
        row["measured"] = "a figure the scenario computed itself (differs from the summary's)"
    else:
        row["measured"] = "the scenario's own check"
    return row


def build_report(
    *,
    test_name: str,
    tool: str,
    started_at: float,
    duration_s: float,
    recorder: RunRecorder,
    target: str,
    profile: str,
    parameters: dict,
    warmup_s: float = 0.0,
    interrupted: bool = False,
    resources: dict | None = None,
    db_pool: dict | None = None,
    server_series: list[dict] | None = None,
    thresholds: list[dict] | None = None,
    extra: dict | None = None,
) -> dict:
    """A report with every schema field in the schema's order; ``extra`` keys come last."""
    summary = recorder.summary(duration_s=duration_s)
    t0 = recorder.t0 if recorder.t0 is not None else started_at
    summary["timeseries"] = merge_timeseries(summary["timeseries"], server_series or [], t0)
    for error in summary["errors"]:
        error["message"] = redact(error["message"])
    thresholds = [_measured(dict(t), summary) for t in thresholds or []]
    fine = distribution.fine_timeseries(
        getattr(recorder, "samples", None) or [], server_series or [], t0, duration_s
    )
    charts = {"latency_distribution": distribution.latency_distribution(recorder.overall)}
    if fine is not None:
        charts["timeseries_fine"] = fine
    report = {
        "schema": SCHEMA,
        "test_name": test_name,
        "tool": tool,
        "started_at": _iso(started_at),
        "duration_seconds": round(duration_s, 3),
        "warmup_seconds": warmup_s,
        "interrupted": interrupted,
        "target": redact(target),
        "profile": profile,
        "parameters": dict(parameters),
        **summary,
        "resources": _resources_block(resources),
        "db_pool": _db_pool_block(db_pool),
        "thresholds": thresholds,
        "passed": all(t.get("passed") is True for t in thresholds) and not interrupted,
        "environment": environment_info(seed=parameters.get("seed")),
        **charts,
    }
    clash = set(extra or {}) & (set(report) | {"verdict", "reason"})
    if clash:
        raise ValueError(f"extra report fields clash with the schema: {sorted(clash)}")
    report.update(extra or {})
    verdict, reason = scenario_verdict.judge(report)
    ordered = {}
    for key, value in report.items():
        ordered[key] = value
        if key == "passed":
            ordered["verdict"], ordered["reason"] = verdict, reason
    return ordered


def _clean(value: object) -> object:
    """Make a report value JSON-safe: NaN/inf to None, secrets redacted from every string value."""
    if isinstance(value, dict):
        return {
            str(k): ("[REDACTED]" if _is_secret_key(k) and v else _clean(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return redact(value)
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and re.fullmatch(rf"(?i){_SECRET_KEYS}|token", key) is not None


def report_path(report: dict, directory: Path) -> Path:
    """Where a report lives: <directory>/<test_name>.json (test name made path-safe)."""
    return directory / f"{_safe_name(str(report['test_name']))}.json"


def write_report(report: dict, directory: Path | None = None) -> Path:
    """Write the report atomically as <directory>/<test_name>.json (default: this run's folder)."""
    directory = (
        Path(directory) if directory is not None else run_dir(str(report.get("tool", "run")))
    )
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_clean(report), indent=2, allow_nan=False) + "\n"
    path = report_path(report, directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ReportError(ValueError):
    """A file that is not a readable report of this schema family."""


def read_report(path: Path) -> dict:
    """Read a report; raises ReportError with one line naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable JSON report ({exc})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not str(schema).startswith(SCHEMA.split("/")[0] + "/"):
        raise ReportError(f"{path}: not a {SCHEMA} report (schema {schema!r})")
    return data
