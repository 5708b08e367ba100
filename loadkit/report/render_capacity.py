"""The report's Capacity section, from capacity.json: the rate found, what limited it and on what
figures, every step of the search, the scaling across worker counts, and the two charts."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadkit.report.capacity_charts import CHARTS
from loadkit.report.markdown import fmt, table

TEST_NAME = "capacity"
STEP_FIELDS = (  # the result comes last (_step_rows fills it with the reasons of a failure)
    ("offered rps", "offered_rps"),
    ("achieved rps", "achieved_rps"),
    ("p50 ms", "p50_ms"),
    ("p95 ms", "p95_ms"),
    ("p99 ms", "p99_ms"),
    ("errors %", "error_rate_percent"),
    ("late starts", "late_starts"),
    ("abandoned", "abandoned"),
    ("server CPU %", "server_cpu_percent"),
    ("pool in use max", "pool_checked_out_max"),
    ("/live p99 ms", "canary_p99_ms"),
    ("phase", "phase"),
    ("result", "passed"),
)


def capacity_report(reports: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run's capacity report, if it has one."""
    return next((r for r in reports if r.get("test_name") == TEST_NAME and "steps" in r), None)


def _step_rows(steps: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for s in steps:
        row = [s.get(key) for _, key in STEP_FIELDS[:-1]]
        row.append("passed" if s.get("passed") else "FAILED: " + "; ".join(s.get("reasons") or []))
        rows.append(row)
    return rows


def _headline(report: Mapping[str, Any]) -> list[str]:
    slo = report.get("slo") or {}
    params = report.get("parameters") or {}
    factor = report.get("limiting_factor") or {}
    return [
        f"**Max sustainable rate: {fmt(report.get('max_sustainable_rps'))} requests/s** "
        f"({params.get('mix')} mix), about {fmt(report.get('concurrent_therapists'))} concurrent "
        f"therapists at {fmt(params.get('think_time_s'))} s think time (cycle "
        f"{fmt(params.get('cycle_time_s'))} s). The search ended: {report.get('search_ended')}.",
        "",
        f"Limiting factor: **{factor.get('name')}**. {factor.get('summary', '')}",
        "",
        f"A step passed with p95 <= {fmt(slo.get('p95_ms'))} ms, p99 <= {fmt(slo.get('p99_ms'))}"
        f" ms, errors <= {fmt(slo.get('error_rate_percent'))}%, achieved >= "
        f"{fmt(slo.get('achieved_ratio_min'))} x offered, late starts <= "
        f"{fmt(slo.get('late_start_percent'))}% and no growing backlog; each step "
        f"{fmt(params.get('warmup_s'))} s of warm-up (excluded), then a "
        f"{fmt(params.get('window_s'))} s steady window.",
        "",
    ]


def _notes(report: Mapping[str, Any]) -> list[str]:
    notes = [report.get("limits"), report.get("machine"), (report.get("mix") or {}).get("note")]
    return [f"- {n}." for n in notes if n] + [""]


def _scaling(report: Mapping[str, Any]) -> list[str]:
    scaling = report.get("scaling")
    if not scaling:
        return []
    rows = [[w.get("server_workers"), w.get("max_sustainable_rps"), w.get("limiting_factor"),
             w.get("search_ended")] for w in scaling.get("by_workers") or []]  # fmt: skip
    lines = ["**Scaling out the server**", ""]
    headers = ("server workers", "max sustainable rps", "limiting factor", "search ended")
    lines += table(headers, rows)
    return lines + [f"Scaling factor {fmt(scaling.get('factor'))}; {scaling.get('note')}.", ""]


def step_table(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """The search's steps as a table: rate, latency, errors, late starts, server, verdict."""
    return table([label for label, _ in STEP_FIELDS], _step_rows(steps))


def _steps(report: Mapping[str, Any]) -> list[str]:
    """The steps of the search (of each worker count's, with --server-workers)."""
    by_workers = (report.get("scaling") or {}).get("by_workers") or []
    if not by_workers:
        return ["**Steps**", ""] + step_table(report.get("steps") or [])
    lines = []
    for run in by_workers:
        lines += [f"**Steps with {run.get('server_workers')} server workers**", ""]
        lines += step_table(run.get("steps") or [])
    return lines


def section(report: Mapping[str, Any] | None, run_dir: Path, output: Path) -> list[str]:
    """The Capacity section ([] when the run has no capacity report)."""
    if report is None:
        return []
    lines = ["## Capacity", ""] + _headline(report) + _notes(report) + _scaling(report)
    lines += _steps(report)
    for name in CHARTS:
        if (run_dir / name).exists():
            lines.append(f"![{name}]({os.path.relpath(run_dir / name, output.parent)})")
    return lines + [""]
