"""Render a readiness run folder into one report, readiness.md; every figure is read from its JSON.

    python -m loadkit.report.render_readiness RUN_DIR [--output FILE] [--charts-dir DIR]

Sections: executive summary (the verdict against the targets file and its reasons, the capacity,
the first bottleneck, the defects), environment, scenario results, capacity (steps and charts),
bottleneck analysis (the knee's limiting factor, server CPU per endpoint, pool, the /live canary,
the server profile), scaling recommendations, what to monitor in production. The judgements are
`report.readiness` and `report.readiness_advice`; the scenario findings are
`verdicts.bottlenecks`'. Exit 0 when written and the run is ready (with or without caveats), 1
when it is not ready, 2 when the folder cannot be read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadkit.measure.values import number
from loadkit.report import (
    capacity_charts,
    readiness,
    readiness_advice,
    render_capacity,
    render_profile,
)
from loadkit.report.markdown import fmt, table
from loadkit.report.render import summary_section
from loadkit.report.render_run import machine_section, run_section
from loadkit.report.render_verdicts import verdict_count, verdict_rows, verdicts_section
from loadkit.report.run_folder import RunFolderError, load_reports, load_run_info
from loadkit.report.server_profile import SVG_NAME, read_profile
from loadkit.verdicts import bottlenecks

OUTPUT_NAME = "readiness.md"


def _demoted(lines: Sequence[str]) -> list[str]:
    """A report section one heading level down (## -> ###)."""
    return [f"#{line}" if line.startswith("## ") else line for line in lines]


def _bullets(items: Sequence[str], empty: str) -> list[str]:
    return ([f"- {item}" for item in items] or [f"- {empty}"]) + [""]


def _capacity_cell(capacity: Mapping[str, Any] | None) -> str:
    if capacity is None:
        return "not enough data: no capacity search in this run"
    best = capacity.get("max_sustainable_rps")
    if number(best) is None:
        return "no step met the capacity targets"
    passed = readiness.knee(capacity).passed or {}
    return f"{fmt(best)} req/s offered (achieved {fmt(passed.get('achieved_rps'))} req/s)"


def _therapists_cell(capacity: Mapping[str, Any] | None) -> str:
    value = (capacity or {}).get("concurrent_therapists")
    if number(value) is None:
        return "not enough data"
    think = ((capacity or {}).get("parameters") or {}).get("think_time_s")
    return f"{fmt(value)} (at the personas' think time, {fmt(think)} s)"


def _defects_cell(found: Sequence[Mapping[str, Any]], reports: Sequence[Mapping]) -> str:
    if not found:
        probes = sum(1 for r in reports if "probe" in str(r.get("test_name")))
        return f"none ({probes} probe reports)"
    return ", ".join(f"`{d['id']}` ({', '.join(map(str, d['routes']))})" for d in found)


def _machine_cell(reports: Sequence[Mapping[str, Any]]) -> str:
    cpus = readiness.cores(reports)
    if readiness.shared_machine(reports):
        return f"server and load generator shared this machine's {fmt(cpus)} cores"
    return f"the load generator had {fmt(cpus)} cores; the server ran elsewhere (not measured)"


def executive_summary(
    reports: Sequence[Mapping], capacity: Mapping | None, rows: Sequence[Mapping]
) -> list[str]:
    """The verdict and its reasons, then the headline figures."""
    judged = readiness.verdict(rows, reports, capacity)
    profile = ", ".join(sorted({str(r.get("profile")) for r in reports if r.get("profile")}))
    lines = ["## Executive summary", ""]
    lines += [
        f"**Verdict: {judged.verdict.upper()}** (targets.toml profile {profile or 'n/a'})",
        "",
    ]
    if judged.blocking:
        lines += ["Why not ready:", ""] + _bullets(judged.blocking, "")
    if judged.caveats:
        lines += ["Caveats:", ""] + _bullets(judged.caveats, "")
    name, summary = readiness.first_bottleneck(capacity)
    scenario_rows = [r for r in rows if r["test_name"] != readiness.CAPACITY_NAME]
    facts = [
        ("capacity (max sustainable rate)", _capacity_cell(capacity)),
        ("concurrent therapists", _therapists_cell(capacity)),
        ("first bottleneck", f"{name}: {summary}" if name else summary),
        ("defects found", _defects_cell(readiness.defects(reports), reports)),
        ("scenarios meeting their targets", verdict_count(scenario_rows)),
        ("machine", _machine_cell(reports)),
    ]
    return lines + table(("", ""), facts)


def environment_section(
    run_dir: Path, reports: Sequence[Mapping], info: Mapping[str, Any]
) -> list[str]:
    """render_run's Run and Machine sections, one level down; the Run table counts the scenarios
    as the executive summary does (capacity.json has its own section)."""
    scenarios, _ = readiness.split_reports(reports)
    lines = ["## Environment", ""]
    return lines + _demoted(run_section(run_dir, scenarios, info) + machine_section(reports, info))


def scenarios_section(scenarios: Sequence[Mapping], rows: Sequence[Mapping]) -> list[str]:
    """Each scenario's verdict and reason, and its summary figures."""
    lines = ["## Scenario results", ""]
    rows = [r for r in rows if r["test_name"] != readiness.CAPACITY_NAME]
    lines += _demoted(verdicts_section(rows))
    if scenarios:
        lines += _demoted(summary_section(scenarios))
    return lines + [
        "Every scenario's thresholds, endpoints and charts: report.md in the run folder.",
        "",
    ]


def _chart_links(run_dir: Path, output: Path, charts_dir: Path | None) -> list[str]:
    """The capacity charts, copied into ``charts_dir`` when given, linked from ``output``."""
    lines, missing = [], []
    for name in capacity_charts.CHARTS:
        source = run_dir / name
        if not source.is_file():
            missing.append(name)
            continue
        target = source
        if charts_dir is not None:
            charts_dir.mkdir(parents=True, exist_ok=True)
            target = charts_dir / name
            shutil.copyfile(source, target)
        lines.append(f"![{name[:-4]}]({os.path.relpath(target, output.parent)})")
    if missing:
        lines.append(f"No chart: {', '.join(missing)} not in the run folder.")
    return lines + [""]


def _scaling_lines(capacity: Mapping[str, Any]) -> list[str]:
    scaling = capacity.get("scaling") or {}
    rows = [
        (r.get("server_workers"), r.get("max_sustainable_rps"), r.get("limiting_factor"))
        for r in scaling.get("by_workers") or []
    ]
    if not rows:
        hint = "readiness or capacity with --server-workers 1,2, bundled backend"
        return [f"Scaling by workers: not measured (run {hint}).", ""]
    lines = table(("server workers", "max sustainable req/s", "limiting factor"), rows)
    return lines + [f"Scaling factor: {fmt(scaling.get('factor'))}. {fmt(scaling.get('note'))}", ""]


def capacity_section(
    run_dir: Path, capacity: Mapping[str, Any] | None, output: Path, charts_dir: Path | None
) -> list[str]:
    """The capacity search: its result, limits, steps, charts and scaling."""
    lines = ["## Capacity", ""]
    if capacity is None:
        return lines + ["Not enough data: the run folder has no capacity.json.", ""]
    slo = capacity.get("slo") or {}
    facts = [
        ("max sustainable rate (req/s offered)", capacity.get("max_sustainable_rps")),
        ("concurrent therapists", _therapists_cell(capacity)),
        ("step limits (slo)", ", ".join(f"{k} {fmt(v)}" for k, v in slo.items()) or None),
        ("limiting factor", (capacity.get("limiting_factor") or {}).get("name")),
        ("rate limits", capacity.get("limits")),
        ("machine", capacity.get("machine")),
        ("search ended", capacity.get("search_ended")),
        ("duration s", capacity.get("duration_seconds")),
    ]
    lines += table(("", ""), facts)
    steps = readiness.steps(capacity)
    lines += render_capacity.step_table(steps) if steps else ["No capacity step was recorded.", ""]
    return lines + _chart_links(run_dir, output, charts_dir) + _scaling_lines(capacity)


def _knee_lines(capacity: Mapping[str, Any] | None) -> list[str]:
    name, summary = readiness.first_bottleneck(capacity)
    lines = ["### At the knee (capacity search)", "", f"{name}: {summary}" if name else summary, ""]
    evidence = ((capacity or {}).get("limiting_factor") or {}).get("evidence") or {}
    if evidence:
        lines += table(("evidence", "value"), sorted(evidence.items()))
    return lines


def _cost_lines(scenarios: Sequence[Mapping[str, Any]]) -> list[str]:
    """Server CPU per request of each endpoint (`readiness.endpoint_costs`)."""
    rows = [
        (f"`{e['endpoint']}`", e["cpu_ms_per_request"], e["requests"], e["cpu_share_percent"],
         e["method"], e["intervals"], e["scenario"])
        for e in readiness.endpoint_costs(scenarios)
    ]  # fmt: skip
    headers = ("endpoint", "server CPU ms per request", "requests", "share of its CPU %",
               "estimate", "CPU intervals", "from scenario")  # fmt: skip
    lines = ["### Server CPU per endpoint", ""]
    return lines + (table(headers, rows) if rows else ["Not enough data: no cost estimate.", ""])


def _evidence_row(report: Mapping[str, Any]) -> list[Any]:
    res, pool, canary = (report.get(k) or {} for k in ("resources", "db_pool", "canary"))
    cpu = f"{fmt(res.get('cpu_avg_percent'))} ({fmt(res.get('cpu_samples'))})"
    used = f"{fmt(pool.get('checked_out_max'))} / {fmt(pool.get('capacity'))}"
    used += f" ({fmt(pool.get('samples'))})"
    loop = f"{fmt(canary.get('p99_ms'))} / {fmt(canary.get('idle_p99_ms'))}"
    return [report.get("test_name"), cpu, used, loop, canary.get("flagged")]


def bottleneck_section(
    scenarios: Sequence[Mapping], capacity: Mapping | None, profile: Mapping | None
) -> list[str]:
    """The knee's limiting factor, each scenario's evidence and the findings it warrants."""
    lines = ["## Bottleneck analysis", ""] + _knee_lines(capacity)
    headers = (
        "scenario", "server CPU avg % (samples)", "pool in use max / capacity (samples)",
        "/live canary p99 / idle p99 ms", "canary flagged",
    )  # fmt: skip
    lines += ["### Evidence by scenario", ""] + table(
        headers, [_evidence_row(r) for r in scenarios]
    )
    lines += _cost_lines(scenarios)
    lines += ["### Findings", ""]
    quiet = []
    for report in scenarios:
        found = bottlenecks.analyse(report)
        if not found:
            quiet.append(str(report.get("test_name")))
            continue
        lines += [f"**{report.get('test_name')}**", ""] + [f"- {f.text}" for f in found] + [""]
    if quiet:
        lines += [f"No bottleneck indicator in the data of: {', '.join(quiet)}.", ""]
    cited = render_profile.findings(profile)
    lines += ["**Server profile (the whole run)**", ""]
    return lines + _bullets(cited, "no finding: see Where the server's CPU went")


def recommendations_section(scenarios: Sequence[Mapping], capacity: Mapping | None) -> list[str]:
    """The scaling recommendations, each with the figures it rests on."""
    lines = ["## Scaling recommendations", ""]
    for advice in readiness_advice.recommendations(scenarios, capacity):
        label = "rests on" if advice.enough_data else "needs"
        lines += [f"- **{advice.topic}**: {advice.text}", f"  - {label}: {advice.rests_on}"]
    return lines + [""]


def monitoring_section(scenarios: Sequence[Mapping], capacity: Mapping | None) -> list[str]:
    """The figures in the order they crossed their limits as the offered rate grew."""
    lines = ["## What to monitor in production", ""]
    signals = readiness_advice.monitoring(scenarios, capacity)
    if not signals:
        return lines + ["Not enough data: no capacity steps to see which figure moved first.", ""]
    top = readiness.steps(capacity)[-1].get("offered_rps")
    crossed = [s for s in signals if s.first_crossed_rps is not None]
    if crossed:
        first = ", ".join(f"{s.figure} (at {s.first_crossed_rps:g} req/s)" for s in crossed)
        lines += [f"In the order they crossed their limits as the offered rate grew: {first}. "
                  "Alert on the first ones: they move before the others.", ""]  # fmt: skip
    else:
        lines += [f"No figure crossed its limit up to {fmt(top)} req/s offered.", ""]
    rows = [
        (
            s.figure,
            s.limit,
            s.first_crossed_rps if s.first_crossed_rps is not None else f"not up to {fmt(top)}",
            s.value_at_pass,
            s.value_at_fail,
        )
        for s in signals
    ]
    headers = (
        "figure",
        "limit",
        "first crossed at (req/s offered)",
        "at max sustainable",
        "at first failing step",
    )
    return lines + table(headers, rows)


def _command(run_dir: Path, output: Path, charts_dir: Path | None) -> str:
    """The command line that regenerates the report."""
    parts = ["python -m loadkit.report.render_readiness", str(run_dir)]
    if output != run_dir / OUTPUT_NAME:
        parts += ["--output", str(output)]
    return " ".join(parts + (["--charts-dir", str(charts_dir)] if charts_dir else []))


def render_markdown(
    run_dir: Path, reports: Sequence[Mapping], info: Mapping, output: Path, charts_dir: Path | None
) -> str:
    """The whole readiness report."""
    scenarios, capacity = readiness.split_reports(reports)
    rows = verdict_rows(reports, info)
    commit = next((r["environment"].get("commit") for r in reports if r.get("environment")), None)
    profile = read_profile(run_dir)
    lines = [f"# Readiness report: {run_dir.name}", ""]
    lines += [
        f"Rendered by `{_command(run_dir, output, charts_dir)}` from "
        f"{len(scenarios)} scenario reports{' and capacity.json' if capacity else ''} at commit "
        f"{fmt(commit)}; every figure below is read from them.",
        "",
    ]
    lines += executive_summary(reports, capacity, rows) + environment_section(
        run_dir, reports, info
    )
    lines += scenarios_section(scenarios, rows) + capacity_section(
        run_dir, capacity, output, charts_dir
    )
    lines += bottleneck_section(scenarios, capacity, profile)
    lines += render_profile.section(profile, os.path.relpath(run_dir / SVG_NAME, output.parent))
    lines += recommendations_section(scenarios, capacity) + monitoring_section(scenarios, capacity)
    return "\n".join(lines)


def render(
    run_dir: Path, *, output: Path | None = None, charts_dir: Path | None = None
) -> tuple[Path, readiness.Verdict]:
    """Write readiness.md (or ``output``); return its path and the verdict."""
    run_dir = Path(run_dir)
    reports = load_reports(run_dir)
    info = load_run_info(run_dir)
    output = Path(output) if output else run_dir / OUTPUT_NAME
    text = render_markdown(run_dir, reports, info, output, Path(charts_dir) if charts_dir else None)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(output)
    scenarios, capacity = readiness.split_reports(reports)
    return output, readiness.verdict(verdict_rows(reports, info), reports, capacity)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m loadkit.report.render_readiness", description=__doc__.split("\n")[0]
    )
    parser.add_argument("run_dir", type=Path, help="the run folder (results/<timestamp>_readiness)")
    parser.add_argument(
        "--output", type=Path, help=f"where to write (default RUN_DIR/{OUTPUT_NAME})"
    )
    parser.add_argument(
        "--charts-dir", type=Path, help="copy the capacity charts here and link them"
    )
    args = parser.parse_args(argv)
    try:
        path, judged = render(args.run_dir, output=args.output, charts_dir=args.charts_dir)
    except (RunFolderError, OSError) as exc:
        print(f"render_readiness: {exc}", file=sys.stderr)
        return 2
    print(f"readiness: {judged.verdict}" + "".join(f"\n  - {r}" for r in judged.reasons))
    print(f"readiness report: {path}")
    return 1 if judged.verdict == readiness.NOT_READY else 0


if __name__ == "__main__":
    sys.exit(main())
