"""The report's comparison section: each compared metric with its tolerance and verdict."""

from __future__ import annotations

from loadkit.report.compare import Comparison
from loadkit.report.markdown import table


def comparison_section(result: Comparison) -> list[str]:
    """Each compared metric with its tolerance and verdict."""
    lines = [f"## Comparison with {result.old_label}", ""]
    rows = []
    for d in result.deltas:
        pct = d.change_percent
        change = f"{d.change:+.2f}" + (f" ({pct:+.1f}%)" if pct is not None else "")
        rows.append(
            (d.scenario, d.metric, d.old, d.new, change, d.tolerance.describe(),
             "REGRESSION" if d.regression else "ok")
        )  # fmt: skip
    headers = (
        "scenario",
        "metric",
        result.old_label,
        result.new_label,
        "change",
        "tolerance",
        "verdict",
    )
    lines += table(headers, rows) if rows else ["No metric in common with a tolerance.", ""]
    for name in result.only_old:
        lines.append(f"- `{name}` ran only in {result.old_label}.")
    for name in result.only_new:
        lines.append(f"- `{name}` ran only in {result.new_label}.")
    lines += [
        f"{len(result.regressions)} regressions past tolerance in {len(result.deltas)} compared.",
        "",
    ]
    return lines
