"""The report's verdicts: every scenario of a run with passed, failed, skipped or not run, and why.

Rows come from the reports (loadkit.report.scenario_verdict) and from run.json's scenarios that
never wrote one; the same rows give report.md's Verdicts section and the renderer's terminal
summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadkit.report import scenario_verdict
from loadkit.report.markdown import fmt


def verdict_rows(reports: Sequence[Mapping], info: Mapping) -> list[dict[str, Any]]:
    """{test_name, verdict, reason} of every scenario of the run: the reports', then the ones
    run.json lists as not run."""
    rows = []
    for report in reports:
        verdict, reason = scenario_verdict.of(report)
        name = str(report.get("test_name"))
        rows.append({"test_name": name, "verdict": verdict, "reason": reason})
    return rows + scenario_verdict.not_run_entries(info, [r["test_name"] for r in rows])


def verdict_count(rows: Sequence[Mapping[str, Any]]) -> str:
    """ "3 of 5 (1 failed, 1 skipped)": passed of all, the others by verdict."""
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in scenario_verdict.VERDICTS}
    others = [f"{n} {v.replace('_', ' ')}" for v, n in counts.items() if n and v != "passed"]
    return f"{counts['passed']} of {len(rows)}" + (f" ({', '.join(others)})" if others else "")


def verdicts_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every scenario of the run with its verdict; the reason for the ones that did not pass."""
    lines = ["## Verdicts", "", f"{verdict_count(rows)} scenarios passed.", ""]
    for row in rows:
        name, verdict_ = row["test_name"], row["verdict"]
        shown = "FAILED" if verdict_ == scenario_verdict.FAILED else verdict_.replace("_", " ")
        reason = "" if verdict_ == scenario_verdict.PASSED else f": {fmt(row['reason'])}"
        lines.append(f"- `{name}` {shown}{reason}")
    return lines + [""]


def terminal_summary(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines the CLI prints: one per scenario (verdict, and the reason unless passed)."""
    width = max((len(r["test_name"]) for r in rows), default=0)
    lines = []
    for row in rows:
        reason = "" if row["verdict"] == scenario_verdict.PASSED else f"  {row['reason']}"
        lines.append(f"{row['test_name']:<{width}}  {row['verdict']:<7}{reason}".rstrip())
    return lines + [f"{verdict_count(rows)} scenarios passed"]
