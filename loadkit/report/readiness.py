"""The readiness judgements of one run folder: the verdict, the knee, the defects, what broke first.

Pure functions over the run's own JSON: the scenario reports (their verdicts from
`report.scenario_verdict`, their ``defects`` records) and ``capacity.json`` (the capacity search,
its ``steps`` and ``limiting_factor``). Nothing here re-judges a scenario or a step: a scenario's
verdict is its report's, a step's ``passed`` is the capacity search's. The verdict is

- **not ready** when a scenario failed, a probe found a defect, no capacity step passed, or no
  scenario passed at all;
- **ready with caveats** when everything that ran met its targets but the evidence is incomplete
  (a scenario skipped or not run, no capacity search, a knee not reached, figures shaped by a
  rate limit or a saturated generator);
- **ready** otherwise. Each verdict carries its reasons, each naming the figure or scenario.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadkit.measure.values import number
from loadkit.report import scenario_verdict
from loadkit.verdicts.evidence import enough

READY, CAVEATS, NOT_READY = "ready", "ready with caveats", "not ready"
FEW_SCENARIOS = 3  # up to this many failed scenarios (or defects) are named one per reason
REASON_CHARS = 160  # a scenario's reason quoted in the verdict is cut here (whole in its section)
CAPACITY_NAME = "capacity"  # capacity.json's test_name (notes/capacity-schema.md)
# Limiting factors that say the knee is the tool's or was never found, not the server's.
WEAK_LIMITS = {
    "generator": "the load generator, not the server, limited the capacity search",
    "not_reached": "the capacity search ended before any step failed: the capacity is a floor",
}


@dataclass(frozen=True)
class Verdict:
    """The verdict and why: ``blocking`` reasons make it not ready, ``caveats`` qualify it."""

    verdict: str
    blocking: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Every reason, blocking ones first."""
        return self.blocking + self.caveats


@dataclass(frozen=True)
class Knee:
    """The last passing step (at max_sustainable_rps) and the first failing step above it."""

    passed: Mapping[str, Any] | None
    failed: Mapping[str, Any] | None

    @property
    def at(self) -> Mapping[str, Any] | None:
        """The step where the server broke: the first failing one, else the last passing one."""
        return self.failed or self.passed


def split_reports(
    reports: Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], Mapping[str, Any] | None]:
    """(the scenario reports, capacity.json or None) of a run folder's reports."""
    scenarios = [r for r in reports if r.get("test_name") != CAPACITY_NAME]
    capacity = next((r for r in reports if r.get("test_name") == CAPACITY_NAME), None)
    return scenarios, capacity


def steps(capacity: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The capacity steps with a numeric offered rate, by offered rate (grow and bisect merged)."""
    rows = [s for s in (capacity or {}).get("steps") or [] if isinstance(s, Mapping)]
    rows = [s for s in rows if number(s.get("offered_rps")) is not None]
    return sorted(rows, key=lambda s: number(s["offered_rps"]))


def knee(capacity: Mapping[str, Any] | None) -> Knee:
    """The knee of the capacity search, read from its steps and max_sustainable_rps."""
    rows = steps(capacity)
    best = number((capacity or {}).get("max_sustainable_rps"))
    passing = [s for s in rows if s.get("passed") is True]
    if best is not None:
        passing = [s for s in passing if number(s["offered_rps"]) <= best] or passing
    passed = passing[-1] if passing else None
    floor = number(passed["offered_rps"]) if passed else float("-inf")
    above = [s for s in rows if s.get("passed") is False and number(s["offered_rps"]) > floor]
    return Knee(passed, above[0] if above else None)


def defects(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every defect record of the run, one per id: {id, message, routes, scenarios, count}."""
    found: dict[str, dict[str, Any]] = {}
    for report in reports:
        for record in report.get("defects") or []:
            if not isinstance(record, Mapping) or not record.get("id"):
                continue
            entry = found.setdefault(
                str(record["id"]),
                {"id": str(record["id"]), "message": record.get("message"), "routes": []},
            )
            entry.setdefault("scenarios", [])
            _add(entry["routes"], record.get("route"))
            _add(entry["scenarios"], report.get("test_name"))
            entry["count"] = entry.get("count", 0) + int(
                (record.get("evidence") or {}).get("count", 1)
            )
    return list(found.values())


def _add(items: list, value: Any) -> None:
    if value and value not in items:
        items.append(value)


def _capacity_reasons(
    capacity: Mapping[str, Any] | None, row: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """(blocking, caveats) from capacity.json, or from the runner's not-run row without one."""
    if capacity is None and row is not None:
        return [], [
            f"the capacity search did not run ({_short(row.get('reason'))}): capacity unknown"
        ]
    if capacity is None:
        return [], ["no capacity search in this run (capacity.json missing): capacity unknown"]
    if capacity.get("interrupted"):
        return ["the capacity search was interrupted"], []
    if number(capacity.get("max_sustainable_rps")) is None:
        low = steps(capacity)[0]["offered_rps"] if steps(capacity) else "any rate"
        return [f"no capacity step met the capacity targets (lowest offered: {low} req/s)"], []
    name = str((capacity.get("limiting_factor") or {}).get("name") or "")
    caveats = [WEAK_LIMITS[name]] if name in WEAK_LIMITS else []
    if name == "rate_limit":
        caveats.append("the target's rate limits, not the server, stopped the capacity search")
    return [], caveats


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _short(text: Any) -> str:
    text = str(text)
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3].rstrip() + "..."


def _by_verdict(rows: Sequence[Mapping[str, Any]], verdict_: str) -> list[str]:
    """One reason for the scenarios of one verdict: each with its reason when few, else named."""
    hit = [r for r in rows if r["verdict"] == verdict_]
    if not hit:
        return []
    shown = verdict_.replace("_", " ")
    if len(hit) <= FEW_SCENARIOS:
        return [f"`{r['test_name']}` {shown}: {_short(r.get('reason'))}" for r in hit]
    names = _names([r["test_name"] for r in hit])
    return [f"{len(hit)} of {len(rows)} scenarios {shown}: {names} (why: Scenario results)"]


def _scenario_reasons(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(blocking, caveats) from the scenarios' verdict rows."""
    blocking = _by_verdict(rows, scenario_verdict.FAILED)
    caveats = _by_verdict(rows, scenario_verdict.SKIPPED) + _by_verdict(
        rows, scenario_verdict.NOT_RUN
    )
    shaped = [r["test_name"] for r in rows if r.get("limit_shaped")]
    if shaped:
        caveats.append(f"a rate limit, not the server, shaped the figures of {_names(shaped)}")
    if rows and not any(r["verdict"] == scenario_verdict.PASSED for r in rows):
        blocking.append("no scenario passed: nothing was demonstrated")
    if not rows:
        blocking.append("no scenario ran")
    return blocking, caveats


def _defect_reasons(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """One reason per defect id when few, else one naming them all."""
    found = defects(reports)
    if len(found) <= FEW_SCENARIOS:
        return [
            f"defect `{d['id']}` on {', '.join(map(str, d['routes'])) or 'the target'} "
            f"(found by {', '.join(map(str, d['scenarios']))})"
            for d in found
        ]
    return [f"{len(found)} defects found: {_names([d['id'] for d in found])} (routes below)"]


def _generator_caveats(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    busy = [
        str(r.get("test_name"))
        for r in reports
        if (r.get("resources") or {}).get("generator_saturated")
    ]
    if not busy:
        return []
    return [f"the load generator was saturated in {', '.join(busy)}: those figures describe it"]


def verdict(
    rows: Sequence[Mapping[str, Any]],
    reports: Sequence[Mapping[str, Any]],
    capacity: Mapping[str, Any] | None,
) -> Verdict:
    """The readiness verdict from the scenarios' verdict rows (`render_verdicts.verdict_rows`,
    capacity's own row left out), every report's defects, and capacity.json."""
    searched = next((r for r in rows if r["test_name"] == CAPACITY_NAME), None)
    rows = [r for r in rows if r["test_name"] != CAPACITY_NAME]
    blocking, caveats = _scenario_reasons(rows)
    blocking += _defect_reasons(reports)
    more_blocking, more_caveats = _capacity_reasons(capacity, searched)
    blocking += more_blocking
    caveats += more_caveats + _generator_caveats(reports)
    if blocking:
        return Verdict(NOT_READY, blocking, caveats)
    return Verdict(CAVEATS if caveats else READY, [], caveats)


def first_bottleneck(capacity: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(limiting factor's name, its one-sentence summary) from capacity.json; name None when
    the run has no capacity search or it named none."""
    factor = (capacity or {}).get("limiting_factor") or {}
    if not factor.get("name"):
        return None, "not enough data: no capacity search named a limiting factor"
    return str(factor["name"]), str(factor.get("summary") or f"limited by {factor['name']}")


def server_workers(capacity: Mapping[str, Any] | None) -> int:
    """The server's worker processes during the capacity search whose figures are at the top
    level: the first of ``parameters.server_workers`` (a list, or a number); 1 when not stated."""
    value = ((capacity or {}).get("parameters") or {}).get("server_workers")
    if isinstance(value, list):
        value = value[0] if value else None
    count = number(value)
    return int(count) if count and count >= 1 else 1


def cores(reports: Sequence[Mapping[str, Any]]) -> int | None:
    """The load generator's machine's CPU count, from the first report that states it."""
    for report in reports:
        value = number((report.get("environment") or {}).get("cpus"))
        if value:
            return int(value)
    return None


def shared_machine(reports: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the server ran on the load generator's machine (its pid was measured here)."""
    return any((r.get("resources") or {}).get("server_pid") is not None for r in reports)


def _cost_rank(entry: Mapping[str, Any]) -> tuple:
    """Lower is better: enough CPU intervals, then the most requests, then the most intervals."""
    return (not enough(entry["intervals"]), -(entry["requests"] or 0), -entry["intervals"])


def endpoint_costs(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Server CPU per request of each endpoint, from the scenario whose estimate rests on most:
    enough CPU intervals (`verdicts.evidence`), then the most requests of that endpoint, then the
    most intervals. [{endpoint, cpu_ms_per_request, cpu_share_percent, requests, method,
    intervals, scenario}], costliest first."""
    best: dict[str, dict[str, Any]] = {}
    for report in reports:
        block = report.get("cost") or {}
        intervals = number(block.get("intervals")) or 0
        for name, row in (block.get("endpoints") or {}).items():
            ms = number(row.get("cpu_ms_per_request"))
            if ms is None:
                continue
            entry = {
                "endpoint": name, "cpu_ms_per_request": ms, "requests": number(row.get("requests")),
                "cpu_share_percent": row.get("cpu_share_percent"), "method": block.get("method"),
                "intervals": intervals, "scenario": report.get("test_name"),
            }  # fmt: skip
            if name not in best or _cost_rank(entry) < _cost_rank(best[name]):
                best[name] = entry
    return sorted(best.values(), key=lambda e: -e["cpu_ms_per_request"])
