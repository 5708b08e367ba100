"""Render a run folder into Markdown with PNG charts; every figure is read from the reports.

    python -m loadkit.render RUN_DIR [--compare OTHER_RUN_DIR] [--output FILE] [--charts-dir DIR]
                                     [--profile NAME]

Writes ``RUN_DIR/report.md`` (or FILE) and ``RUN_DIR/charts/*.png`` (or DIR/*.png). Exit 0 when
written, 1 when the comparison found a regression past tolerance, 2 when the folder cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadkit.report import charts, render_capacity, render_drift, render_profile, scenario_verdict
from loadkit.report.compare import (
    CompareError,
    Comparison,
    compare_reports,
    compare_table,
    profile_name,
)
from loadkit.report.markdown import fmt, table
from loadkit.report.render_compare import comparison_section
from loadkit.report.render_run import machine_section, run_section
from loadkit.report.render_verdicts import (
    terminal_summary,
    verdict_rows,
    verdicts_section,
)
from loadkit.report.run_folder import RunFolderError, load_reports, load_run_info
from loadkit.report.schema import RESOURCE_FIELDS
from loadkit.report.server_profile import SVG_NAME, read_profile
from loadkit.verdicts import bottlenecks

SUMMARY_FIELDS = (
    ("requests", "total_requests"),
    ("req/s", "requests_per_second"),
    ("errors %", "error_rate_percent"),
    ("p50 ms", "response_time_p50_ms"),
    ("p95 ms", "response_time_p95_ms"),
    ("p99 ms", "response_time_p99_ms"),
    ("max ms", "response_time_max_ms"),
)
ENDPOINT_FIELDS = (
    ("requests", "requests"),
    ("failures", "failures"),
    ("avg ms", "response_time_avg_ms"),
    ("p50 ms", "response_time_p50_ms"),
    ("p95 ms", "response_time_p95_ms"),
    ("p99 ms", "response_time_p99_ms"),
    ("max ms", "response_time_max_ms"),
)
# The DB pool line, in connections (SQLAlchemy's raw, negative-going overflow is not shown).
POOL_FIELDS = (
    ("in use max", "checked_out_max"),
    ("open max", "open_max"),
    ("capacity", "capacity"),
    ("size", "size"),
    ("max_overflow", "max_overflow"),
    ("exhaustion events", "exhaustion_events"),
    ("samples", "samples"),
)
ERROR_SAMPLES_SHOWN = 5
SPLIT_NOTE = (
    "errors % counts every failed request, the probers' findings (named as defects) "
    "among them; service errors % leaves those out."
)


def verdict(report: Mapping[str, Any]) -> str:
    """passed / FAILED / skipped, with interrupted noted."""
    text = scenario_verdict.of(report)[0]
    text = "FAILED" if text == scenario_verdict.FAILED else text
    return text + (" (interrupted)" if report.get("interrupted") else "")


def _service_errors(report: Mapping[str, Any]) -> Any:
    """The service's own error rate: the report's split when it has one (a Locust run whose
    prober's findings are named as defects), else every failure."""
    split = report.get("error_sources") or {}
    if "service_error_rate_percent" in split:
        return split["service_error_rate_percent"]
    return report.get("error_rate_percent")


def summary_section(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per scenario. When a report's failures include the probers' findings,
    a column gives the service's own error rate beside the rate of every failure."""
    split = any((r.get("error_sources") or {}).get("prober_findings") for r in reports)
    headers = ["scenario", "tool", "result"] + [label for label, _ in SUMMARY_FIELDS]
    rows = [
        [r.get("test_name"), r.get("tool"), verdict(r)] + [r.get(key) for _, key in SUMMARY_FIELDS]
        for r in reports
    ]
    if split:
        at = headers.index("errors %") + 1
        headers.insert(at, "service errors %")
        for row, report in zip(rows, reports, strict=True):
            row.insert(at, _service_errors(report))
    lines = ["## Summary", ""] + table(headers, rows)
    if split:
        lines += [SPLIT_NOTE, ""]
    return lines


def bottleneck_section(
    reports: Sequence[Mapping[str, Any]], profile: Mapping[str, Any] | None = None
) -> list[str]:
    """Findings per scenario, or a statement that the data shows none; first the server
    profile's (one for the whole run), which "Where the server's CPU went" details."""
    lines = ["## Bottleneck analysis", ""]
    cited = render_profile.findings(profile)
    if cited:
        lines += ["**Server profile (the whole run)**", ""]
        lines += [f"- {text} (see Where the server's CPU went)" for text in cited] + [""]
    for report in reports:
        findings = bottlenecks.analyse(report)
        lines.append(f"**{report.get('test_name')}**")
        lines.append("")
        if not findings:
            lines.append("- No bottleneck indicator in the data.")
        lines += [f"- {finding.text}" for finding in findings]
        lines.append("")
    return lines


def _kv_line(
    title: str, mapping: Mapping[str, Any], keys: Sequence[str] | None = None
) -> list[str]:
    keys = list(keys) if keys is not None else sorted(mapping)
    parts = [f"{k} {fmt(mapping.get(k))}" for k in keys if k in mapping]
    return [f"{title}: " + (", ".join(parts) if parts else "n/a") + ".", ""]


def _block_line(title: str, block: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    """A measured block's figures, or the reason it was not measured."""
    if block.get("unavailable_reason"):
        return [f"{title}: unavailable ({fmt(block['unavailable_reason'])}).", ""]
    return _kv_line(title, block, keys)


def pool_line(pool: Mapping[str, Any]) -> list[str]:
    """The DB pool in connections: in use, open and capacity; unknown figures as n/a."""
    if pool.get("unavailable_reason"):
        return [f"DB pool: unavailable ({fmt(pool['unavailable_reason'])}).", ""]
    parts = [f"{label} {fmt(pool.get(key))}" for label, key in POOL_FIELDS]
    return ["DB pool (connections): " + ", ".join(parts) + ".", ""]


def thresholds_lines(report: Mapping[str, Any]) -> list[str]:
    """The scenario's thresholds: what each measured (which summary, which endpoints), the limit,
    the actual value and the result."""
    rows = [
        (
            t.get("metric"),
            t.get("measured") or (f"`{t['endpoint']}`" if t.get("endpoint") else None),
            t.get("limit"),
            t.get("actual"),
            "passed" if t.get("passed") else "FAILED",
        )
        for t in report.get("thresholds") or []
    ]
    headers = ("threshold", "measured", "limit", "actual", "result")
    return table(headers, rows) if rows else ["No thresholds.", ""]


def endpoint_lines(report: Mapping[str, Any]) -> list[str]:
    """Per-endpoint figures."""
    endpoints = report.get("endpoints") or {}
    rows = [
        [name] + [stats.get(k) for _, k in ENDPOINT_FIELDS] for name, stats in endpoints.items()
    ]
    return table(["endpoint"] + [label for label, _ in ENDPOINT_FIELDS], rows) if rows else []


def persona_lines(report: Mapping[str, Any]) -> list[str]:
    """Each persona's (or probe's) figures, when more than one sent requests."""
    personas = report.get("personas") or {}
    if len(personas) < 2:
        return []
    fields = (*ENDPOINT_FIELDS, ("req/s", "requests_per_second"))
    rows = [[name] + [stats.get(k) for _, k in fields] for name, stats in personas.items()]
    return ["By persona:", ""] + table(["persona"] + [label for label, _ in fields], rows)


def upload_lines(report: Mapping[str, Any]) -> list[str]:
    """Upload throughput (bytes and decimal MB/s), in total and per size of a mix."""
    uploads = report.get("uploads") or {}
    if not uploads.get("uploads") and not uploads.get("failed"):
        return []
    keys = ("uploads", "failed", "sent_bytes", "seconds", "mb_per_s")
    lines = _kv_line("Uploads", uploads, keys)
    rows = [[size] + [t.get(k) for k in keys[2:]] + [t.get("uploads")]
            for size, t in (uploads.get("by_size") or {}).items()]  # fmt: skip
    if len(rows) > 1:
        lines += table(["size bytes", "sent_bytes", "seconds", "mb_per_s", "uploads"], rows)
    if uploads.get("measured"):
        lines += [f"({uploads['measured']})", ""]
    return lines


def transaction_lines(report: Mapping[str, Any]) -> list[str]:
    """Each transaction (upload -> processed): how many ended how, its latency, and the server's
    error messages of the failed ones."""
    lines = []
    for name, block in (report.get("transactions") or {}).items():
        keys = ("count", "processed", "failed", "response_time_p50_ms", "response_time_p95_ms",
                "response_time_p99_ms", "timing")  # fmt: skip
        lines += _kv_line(f"Transaction {name.replace('_to_', ' -> ')}", block, keys)
        for message, n in (block.get("error_messages") or {}).items():
            lines.insert(-1, f"- failed {n} x: the server said {fmt(message)}")
    return lines


def error_lines(report: Mapping[str, Any]) -> list[str]:
    """The first few distinct errors, each with how often it occurred."""
    errors = (report.get("errors") or [])[:ERROR_SAMPLES_SHOWN]
    if not errors:
        return []
    keys = ("time", "endpoint", "kind", "status", "count", "message")
    return [f"First {len(errors)} distinct errors:", ""] + table(
        keys, [[e.get(k) for k in keys] for e in errors]
    )


def chart_lines(drawn: Mapping[str, Path], output: Path) -> list[str]:
    """Image links, relative to the Markdown file, and the charts that had no data."""
    lines = []
    for key, path in drawn.items():
        lines.append(f"![{key}]({os.path.relpath(path, output.parent)})")
    missing = [key for key in charts.ALL_CHARTS if key not in drawn]
    if missing:
        lines.append(f"No data for: {', '.join(missing)} (not measured in this run).")
    return lines + [""]


def scenario_section(
    report: Mapping[str, Any], drawn: Mapping[str, Path], output: Path
) -> list[str]:
    """Everything the report holds about one scenario."""
    params = report.get("parameters") or {}
    lines = [f"### {report.get('test_name')}", ""]
    lines += _kv_line("Parameters", params)
    lines += _kv_line(
        "Run", report, ("tool", "started_at", "duration_seconds", "warmup_seconds", "interrupted")
    )
    lines += thresholds_lines(report) + endpoint_lines(report) + persona_lines(report)
    lines += upload_lines(report) + transaction_lines(report)
    lines += _kv_line("Status codes", report.get("status_codes") or {})
    lines += _kv_line("Errors by kind", report.get("errors_by_kind") or {})
    lines += _kv_line("Late starts", report, ("late_starts",))
    lines += _block_line("Server resources", report.get("resources") or {}, RESOURCE_FIELDS)
    lines += pool_line(report.get("db_pool") or {}) + render_drift.section(report)
    return lines + error_lines(report) + chart_lines(drawn, output)


def _relative(path: Path, output: Path) -> str:
    """``path`` as a link from the Markdown file ``output``."""
    return os.path.relpath(path, output.parent)


def render_markdown(
    run_dir: Path,
    reports: Sequence[Mapping[str, Any]],
    drawn: Mapping[str, Mapping[str, Path]],
    output: Path,
    *,
    info: Mapping[str, Any] | None = None,
    comparison: Comparison | None = None,
    command: str | None = None,
) -> str:
    """The whole report as Markdown; ``command`` is how to regenerate it."""
    info = info or {}
    command = command or f"python -m loadkit.render {run_dir}"
    lines = [f"# Load-test report: {run_dir.name}", ""]
    lines += [
        f"Rendered by `{command}` from {len(reports)} scenario reports "
        "in that folder; every figure below is read from them.",
        "",
    ]
    rows = verdict_rows(reports, info)
    if not reports:
        lines += ["No scenario report was written in this run.", ""]
        return "\n".join(lines + (verdicts_section(rows) if rows else []))
    lines += run_section(run_dir, reports, info) + machine_section(reports, info)
    profile = read_profile(run_dir)
    lines += verdicts_section(rows) + summary_section(reports)
    lines += render_capacity.section(render_capacity.capacity_report(reports), run_dir, output)
    lines += bottleneck_section(reports, profile)
    lines += render_profile.section(profile, _relative(run_dir / SVG_NAME, output))
    if comparison is not None:
        lines += comparison_section(comparison)
    lines += ["## Scenarios", ""]
    for report in reports:
        lines += scenario_section(report, drawn.get(str(report.get("test_name")), {}), output)
    return "\n".join(lines)


def comparison_for(
    other: Path, reports: Sequence[Mapping], profile: str | None, run_dir: Path
) -> Comparison:
    """Compare ``other`` (the earlier run) with this run's reports."""
    table_ = compare_table(profile_name(reports, profile))
    return compare_reports(load_reports(other), reports, table_, labels=(other.name, run_dir.name))


def render(
    run_dir: Path,
    *,
    compare: Path | None = None,
    output: Path | None = None,
    profile: str | None = None,
    charts_dir: Path | None = None,
) -> tuple[Path, Comparison | None]:
    """Write the Markdown report and charts; return the report path and the comparison, if any."""
    run_dir = Path(run_dir)
    reports = load_reports(run_dir)
    output = Path(output) if output else run_dir / "report.md"
    charts_dir = Path(charts_dir) if charts_dir else run_dir / "charts"
    drawn = {str(r.get("test_name")): charts.draw_all(r, charts_dir) for r in reports}
    comparison = comparison_for(Path(compare), reports, profile, run_dir) if compare else None
    text = render_markdown(
        run_dir,
        reports,
        drawn,
        output,
        info=load_run_info(run_dir),
        comparison=comparison,
        command=_command(
            run_dir,
            compare,
            output if output != run_dir / "report.md" else None,
            charts_dir if charts_dir != run_dir / "charts" else None,
            profile,
        ),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(output)
    return output, comparison


def _command(run_dir: Path, *options: Any) -> str:
    """The command line that regenerates this report (options given as compare, output, charts,
    profile; None where not given)."""
    names = ("--compare", "--output", "--charts-dir", "--profile")
    parts = ["python -m loadkit.render", str(run_dir)]
    parts += [f"{name} {value}" for name, value in zip(names, options, strict=True) if value]
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m loadkit.render", description=__doc__.split("\n")[0]
    )
    parser.add_argument("run_dir", type=Path, help="the run folder (results/<timestamp>_<label>)")
    parser.add_argument("--compare", type=Path, help="an earlier run folder to compare with")
    parser.add_argument(
        "--output", type=Path, help="where to write the Markdown (default RUN_DIR/report.md)"
    )
    parser.add_argument("--charts-dir", type=Path, help="where to write the PNGs (RUN_DIR/charts)")
    parser.add_argument("--profile", help="targets profile for comparison tolerances")
    args = parser.parse_args(argv)
    try:
        path, comparison = render(
            args.run_dir,
            compare=args.compare,
            output=args.output,
            profile=args.profile,
            charts_dir=args.charts_dir,
        )
    except (RunFolderError, CompareError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    rows = verdict_rows(load_reports(args.run_dir), load_run_info(args.run_dir))
    print("\n".join(terminal_summary(rows)))
    print(f"report: {path}")
    if comparison is not None and comparison.regressions:
        print(f"render: {len(comparison.regressions)} regressions past tolerance", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
