"""A scenario's verdict (passed, failed, skipped, not_run) and the reason, read from its report.

The verdict follows pytest's order: a failed threshold, a problem or a defect fails the scenario
(an interrupted run fails too); otherwise a scenario whose assertions were skipped
(``skipped_assertions``) is skipped, never passed; otherwise it passed. The reason names what
decided it: the failed thresholds with limit and actual, the ``defects`` records by id, the
problem messages, the skip reason. A scenario that never started (the runner's exit line in
run.json) is ``not_run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loadkit.report.run_folder import safe_test_name

PASSED, FAILED, SKIPPED, NOT_RUN = "passed", "failed", "skipped", "not_run"
VERDICTS = (PASSED, FAILED, SKIPPED, NOT_RUN)
REASONS_SHOWN = 8  # problem messages and defects quoted in one reason; the rest are counted
# Outcome.build adds this row when a problem no threshold caught must fail the report.
PROBLEMS_ROW = "problems"


def _number(value: Any) -> Any:
    """A float to 2 decimals, trailing zeros dropped (76.4828 -> 76.48, 812.5 stays); else as is."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else value


def _threshold_text(row: Mapping[str, Any]) -> str:
    where = f" ({row['endpoint']})" if row.get("endpoint") else ""
    limit, actual = _number(row.get("limit")), _number(row.get("actual"))
    return f"{row.get('metric')}{where}: limit {limit}, actual {actual}"


def _defect_text(defect: Mapping[str, Any]) -> str:
    route = f" on {defect['route']}" if defect.get("route") else ""
    return f"defect {defect.get('id', '?')}{route}: {defect.get('message', '')}".rstrip(": ")


def failure_reasons(report: Mapping[str, Any]) -> list[str]:
    """Failed thresholds, defects by id and problem messages not already told by a defect."""
    rows = [t for t in report.get("thresholds") or [] if t.get("passed") is False]
    reasons = [_threshold_text(t) for t in rows if t.get("metric") != PROBLEMS_ROW]
    defects = [d for d in report.get("defects") or [] if isinstance(d, Mapping)]
    told = {str(d.get("message")) for d in defects}
    reasons += [_defect_text(d) for d in defects]
    reasons += [str(p) for p in report.get("problems") or [] if str(p) not in told]
    return list(dict.fromkeys(reasons))


def _joined(reasons: Sequence[str]) -> str:
    shown = list(reasons[:REASONS_SHOWN])
    if len(reasons) > REASONS_SHOWN:
        shown.append(f"and {len(reasons) - REASONS_SHOWN} more")
    return "; ".join(shown)


def judge(report: Mapping[str, Any]) -> tuple[str, str]:
    """(verdict, reason) of one scenario report."""
    reasons = failure_reasons(report)
    if report.get("interrupted"):
        reasons.insert(0, f"interrupted after {report.get('duration_seconds')} s")
    if reasons or report.get("passed") is False:
        return FAILED, _joined(reasons) or "a threshold failed"
    if report.get("skipped_assertions"):
        return SKIPPED, str(report["skipped_assertions"])
    met = sum(1 for t in report.get("thresholds") or [] if t.get("passed") is True)
    return PASSED, f"{met} thresholds met" if met else "no threshold applied"


def of(report: Mapping[str, Any]) -> tuple[str, str]:
    """The report's recorded verdict and reason, else judged now (reports written before them)."""
    if report.get("verdict") in VERDICTS and report.get("reason") is not None:
        return str(report["verdict"]), str(report["reason"])
    return judge(report)


def not_run_entries(info: Mapping[str, Any], reported: Sequence[str]) -> list[dict[str, Any]]:
    """run.json's scenarios with no report of their own: {test_name, verdict, reason}.

    run.json shape (written by the runner): ``"scenarios": [{"node": "pytest_load_test.py::test_x",
    "test_name": "x" (optional: derived from node), "verdict": "not_run", "exit_code": 2,
    "exit_line": "one line saying why"}]``.
    """
    out = []
    for entry in info.get("scenarios") or []:
        if not isinstance(entry, Mapping) or entry.get("verdict") != NOT_RUN:
            continue
        name = str(entry.get("test_name") or safe_test_name(str(entry.get("node", "?"))))
        if name in reported:
            continue
        code = entry.get("exit_code")
        line = str(entry.get("exit_line") or "no exit line recorded")
        reason = f"exit {code}: {line}" if code is not None else line
        out.append({"test_name": name, "verdict": NOT_RUN, "reason": reason})
    return out
