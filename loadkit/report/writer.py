"""Writing and reading one report: JSON-safe values, redaction of every string,
atomic write (temporary file, fsync, rename)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from loadkit.report.redaction import is_secret_key, redact
from loadkit.report.run_folder import run_dir, safe_name
from loadkit.report.schema import SCHEMA


def _clean(value: object) -> object:
    """Make a report value JSON-safe: NaN/inf to None, secrets redacted from every string value."""
    if isinstance(value, dict):
        return {
            str(k): ("[REDACTED]" if is_secret_key(k) and v else _clean(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return redact(value)
    return value


def report_path(report: dict, directory: Path) -> Path:
    """Where a report lives: <directory>/<test_name>.json (test name made path-safe)."""
    return directory / f"{safe_name(str(report['test_name']))}.json"


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
