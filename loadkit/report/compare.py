"""Run-to-run comparison, scenario by scenario: regressions past the targets file's tolerances.

Tolerances come from the profile's ``[<profile>.compare]`` table
(loadkit.verdicts.slo.load_profile). Each key is a report metric. A ``*_percent`` metric's tolerance
is absolute, in percentage points (``error_rate_percent = 1.0``: one point more errors is a
regression); any other metric's is relative to the old run (``response_time_p95_ms = 0.20``: 20%
slower is a regression). Higher is worse for every metric but throughput and success rate, where
lower is worse.

    python -m loadkit.compare OLD_RUN NEW_RUN [--profile NAME]   # exit 1 on a regression
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadkit.report.run_folder import RunFolderError, load_reports

HIGHER_IS_BETTER = frozenset({"requests_per_second", "success_rate_percent"})


@dataclass(frozen=True)
class Tolerance:
    """How much worse a metric may get: ``relative`` (fraction of the old value) or ``absolute``."""

    metric: str
    relative: float | None = None
    absolute: float | None = None

    def describe(self) -> str:
        """The tolerance as written in the targets file."""
        if self.relative is not None:
            return f"{self.relative * 100:g}%"
        return f"{self.absolute:g} pt"

    def allowed_worsening(self, old: float) -> float:
        """The largest change in the bad direction that is still within tolerance."""
        if self.relative is not None:
            return abs(old) * self.relative
        return self.absolute or 0.0


@dataclass(frozen=True)
class Delta:
    """One metric of one scenario in both runs."""

    scenario: str
    metric: str
    old: float
    new: float
    tolerance: Tolerance
    regression: bool

    @property
    def change(self) -> float:
        """New minus old."""
        return self.new - self.old

    @property
    def change_percent(self) -> float | None:
        """Change relative to the old value, in percent (None when the old value is 0)."""
        return None if self.old == 0 else self.change / abs(self.old) * 100


@dataclass
class Comparison:
    """The outcome of comparing two runs."""

    old_label: str
    new_label: str
    deltas: list[Delta] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Delta]:
        """Deltas past their tolerance in the bad direction."""
        return [d for d in self.deltas if d.regression]


class CompareError(Exception):
    """Bad tolerance or unreadable input (one line, for a CLI)."""


def parse_tolerance(metric: str, spec: Any) -> Tolerance:
    """A targets-file number: absolute points for ``*_percent`` metrics, else a fraction."""
    if isinstance(spec, bool) or not isinstance(spec, int | float) or spec < 0:
        raise CompareError(f"bad tolerance for {metric}: {spec!r} (a number >= 0)")
    if metric.endswith("_percent"):
        return Tolerance(metric, absolute=float(spec))
    return Tolerance(metric, relative=float(spec))


def tolerances_for(table: Mapping[str, Any]) -> list[Tolerance]:
    """Every tolerance of the profile's compare table."""
    return [parse_tolerance(metric, spec) for metric, spec in table.items()]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def is_regression(metric: str, old: float, new: float, tolerance: Tolerance) -> bool:
    """Whether ``new`` is worse than ``old`` by more than the tolerance allows."""
    worsening = old - new if metric in HIGHER_IS_BETTER else new - old
    return worsening > tolerance.allowed_worsening(old) + 1e-9


def compare_scenario(old: Mapping[str, Any], new: Mapping[str, Any], table: Mapping) -> list[Delta]:
    """Deltas of every tolerated metric both reports hold."""
    scenario = str(new.get("test_name"))
    deltas = []
    for tolerance in tolerances_for(table):
        a, b = _number(old.get(tolerance.metric)), _number(new.get(tolerance.metric))
        if a is None or b is None:
            continue
        regression = is_regression(tolerance.metric, a, b, tolerance)
        deltas.append(Delta(scenario, tolerance.metric, a, b, tolerance, regression))
    return deltas


def compare_reports(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    table: Mapping[str, Any],
    *,
    labels: tuple[str, str] = ("old", "new"),
) -> Comparison:
    """Compare two runs' reports, matched by test_name."""
    by_name_old = {str(r.get("test_name")): r for r in old}
    by_name_new = {str(r.get("test_name")): r for r in new}
    result = Comparison(*labels)
    result.only_old = sorted(set(by_name_old) - set(by_name_new))
    result.only_new = sorted(set(by_name_new) - set(by_name_old))
    for name in sorted(set(by_name_old) & set(by_name_new)):
        result.deltas += compare_scenario(by_name_old[name], by_name_new[name], table)
    return result


def profile_name(new_reports: Sequence[Mapping[str, Any]], requested: str | None) -> str | None:
    """--profile > LOADTEST_PROFILE > the new run's own profile > the targets file's default."""
    if requested or os.environ.get("LOADTEST_PROFILE"):
        return requested or os.environ["LOADTEST_PROFILE"]
    names = {r.get("profile") for r in new_reports if isinstance(r.get("profile"), str)}
    return names.pop() if len(names) == 1 else None


def compare_table(profile: str | None, targets: Path | None = None) -> dict[str, Any]:
    """The ``[<profile>.compare]`` table of the targets file."""
    from loadkit.verdicts import slo

    try:
        loaded = slo.load_profile(profile, targets) if targets else slo.load_profile(profile)
    except slo.TargetsError as exc:
        raise CompareError(str(exc)) from None
    return dict(loaded.compare or {})


def compare_dirs(
    old_dir: Path, new_dir: Path, *, profile: str | None = None, targets: Path | None = None
) -> Comparison:
    """Compare two run folders with the chosen profile's tolerances."""
    try:
        old, new = load_reports(Path(old_dir)), load_reports(Path(new_dir))
    except RunFolderError as exc:
        raise CompareError(str(exc)) from None
    table = compare_table(profile_name(new, profile), targets)
    return compare_reports(old, new, table, labels=(Path(old_dir).name, Path(new_dir).name))


def format_delta(delta: Delta) -> str:
    """One line: scenario, metric, old -> new, change, tolerance, verdict."""
    pct = delta.change_percent
    change = f"{delta.change:+.2f}" + (f" ({pct:+.1f}%)" if pct is not None else "")
    verdict = "REGRESSION" if delta.regression else "ok"
    return (
        f"{delta.scenario:32} {delta.metric:26} {delta.old:12.2f} -> {delta.new:12.2f} "
        f"{change:>22}  tol {delta.tolerance.describe():>6}  {verdict}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the comparison; exit 0 within tolerance, 1 on a regression, 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m loadkit.compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("old", type=Path, help="the earlier run folder")
    parser.add_argument("new", type=Path, help="the later run folder")
    parser.add_argument("--profile", help="targets profile whose [compare] tolerances apply")
    parser.add_argument("--targets", type=Path, help="targets file (default: the project's)")
    args = parser.parse_args(argv)
    try:
        result = compare_dirs(args.old, args.new, profile=args.profile, targets=args.targets)
    except CompareError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    for delta in result.deltas:
        print(format_delta(delta))
    for name in result.only_old:
        print(f"{name}: only in {result.old_label}")
    for name in result.only_new:
        print(f"{name}: only in {result.new_label}")
    print(f"{len(result.regressions)} regressions past tolerance in {len(result.deltas)} compared")
    return 1 if result.regressions else 0


if __name__ == "__main__":
    sys.exit(main())
