"""The report's Run and Machine sections: what ran against what, and on which machine.

The Machine table is the load generator's; the bundled reference backend's packages are named apart,
as the target's only when that backend was the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadkit.report import ending, run_lock
from loadkit.report.markdown import table
from loadkit.report.render_verdicts import verdict_count, verdict_rows
from loadkit.watch.loopback import is_loopback

# Installed here for the bundled reference backend, not the load generator's, nor any target's.
BACKEND_PACKAGES = ("fastapi", "uvicorn", "sqlalchemy")


def _common(reports: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """The distinct values of a top-level field across reports, in order of appearance."""
    seen: list[Any] = []
    for report in reports:
        value = report.get(key)
        if value not in seen and value is not None:
            seen.append(value)
    return seen


def database_of(reports: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> str:
    """The run's database as stated by run.json, else by the reports (top, parameters, env)."""
    if info.get("database"):
        return str(info["database"])
    for report in reports:
        for holder in (report, report.get("parameters") or {}, report.get("environment") or {}):
            if holder.get("database"):
                return str(holder["database"])
    return "not recorded in the reports"


def run_section(run_dir: Path, reports: Sequence[Mapping], info: Mapping) -> list[str]:
    """Preset, target, database, profile, start and overall verdict."""
    targets = _common(reports, "target") or [info.get("target")]
    rows = [
        ("run folder", run_dir.name),
        ("preset", info.get("preset")),
        ("target", ", ".join(str(t) for t in targets if t) or None),
        ("load command", f"`{info['command']}`" if info.get("command") else None),
        ("server", info.get("server")),
        ("server settings", info.get("backend_settings") or None),
        ("database", database_of(reports, info)),
        ("profile", ", ".join(str(p) for p in _common(reports, "profile")) or None),
        ("started (UTC)", min((str(r.get("started_at")) for r in reports), default=None)),
        ("scenarios meeting their targets", verdict_count(verdict_rows(reports, info))),
    ]
    if info.get("load_exit_code") is not None:
        rows.append(("load step exit code", info.get("load_exit_code")))
    rows += ending_rows(reports, info)
    return ["## Run", ""] + table(("", ""), [r for r in rows if r[1] is not None])


def ending_rows(reports: Sequence[Mapping], info: Mapping) -> list[tuple[str, Any]]:
    """How the run ended (run.json's ``ended``, else the reports'), a target that died during it,
    and the other runs against the target that overlapped it (run.json's, else the reports')."""
    endings = [info["ended"]] if info.get("ended") else _common(reports, "ended")
    endings = [e for e in endings if e != ending.COMPLETED] or endings
    rows = [("ended", "; ".join(ending.describe(e) for e in endings) or None)]
    rows.append(("target died", f"**{info['target_died']}**" if info.get("target_died") else None))
    note = info.get("concurrent_note")
    if not note:
        folders = sorted({str(d) for r in reports for d in r.get("concurrent_runs") or []})
        note = run_lock.describe([run_lock.Run(0, d, 0.0) for d in folders]).replace(" (pid 0)", "")
    rows.append(("concurrent runs", f"**{note}**" if note else None))
    return rows


def _server_on_this_machine(report: Mapping[str, Any]) -> bool:
    """Whether the report's target was loopback with the server process found here."""
    host = urlsplit(str(report.get("target") or "")).hostname or ""
    return is_loopback(host) and (report.get("resources") or {}).get("server_pid") is not None


def _backend_note(versions: Mapping[str, Any], info: Mapping[str, Any]) -> list[str]:
    """The bundled reference backend's packages: the target's only when it was the target."""
    found = [f"{name} {versions[name]}" for name in BACKEND_PACKAGES if versions.get(name)]
    if not found:
        return []
    if "reference backend" in str(info.get("server") or ""):
        return [f"The target was the bundled reference backend: {', '.join(found)}.", ""]
    return [
        f"{', '.join(found)} are installed here for the bundled reference backend; they are the "
        "target's only if the target was that backend (the suite does not know the target's "
        "own versions).",
        "",
    ]


def machine_section(
    reports: Sequence[Mapping[str, Any]], info: Mapping[str, Any] | None = None
) -> list[str]:
    """The load-generating machine, from the first report's ``environment``; the reference
    backend's packages apart, never as the target's."""
    env = next((r.get("environment") for r in reports if r.get("environment")), None) or {}
    versions = env.get("versions") or {}
    rows = [(k, env.get(k)) for k in ("cpus", "platform", "python", "commit", "seed") if k in env]
    rows += [
        (f"{name} version", version)
        for name, version in sorted(versions.items())
        if name not in BACKEND_PACKAGES
    ]
    commits = {str((r.get("environment") or {}).get("commit")) for r in reports}
    lines = ["## Machine (load generator)", ""] + table(("", ""), rows or [("environment", None)])
    lines += _backend_note(versions, info or {})
    shared = [r for r in reports if _server_on_this_machine(r)]
    if shared:
        lines += [
            f"The server ran on this machine (loopback target) beside the load generator: both "
            f"shared its {env.get('cpus', '?')} cores, so every figure describes the pair.",
            "",
        ]
    if len(commits) > 1:
        lines += [
            f"Reports come from {len(commits)} different commits: {', '.join(sorted(commits))}.",
            "",
        ]
    return lines
