"""The verdict on a rate limit, from what each rapid request got back: pure functions, no I/O.

A limit of N per window holds when at most N requests are allowed in ANY window of that length
(counted on request start times, so a moving window is checked exactly). A fixed-window deployment
may allow up to 2N across one boundary; that is accepted only when the responses prove a boundary
passed: a request was refused and a later one allowed again. Besides, at least one request must be
refused, every refusal must be a 429 with an integer Retry-After, and nothing else may come back (a
500 or a lost request fails it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class LimitProbe:
    """One probe request: start (wall time), status (None: no response), Retry-After."""

    at: float
    status: int | None
    retry_after: str | None = None
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def max_in_window(times: list[float], window_s: float) -> int:
    """The largest number of ``times`` inside any half-open window [t, t + window_s)."""
    ordered, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def boundary_crossed(probes: list[LimitProbe]) -> bool:
    """Whether a refusal was followed by an allowed request (a fixed window rolled over)."""
    refused = False
    for probe in sorted(probes, key=lambda p: p.at):
        refused = refused or probe.status == 429
        if refused and probe.allowed:
            return True
    return False


def _integer(value: str | None) -> bool:
    return value is not None and value.strip().isdigit()


def _unexpected(probes: list[LimitProbe]) -> Counter:
    """Responses that are neither allowed nor a 429, by status ("no response" when none came)."""
    return Counter(
        "no response" if p.status is None else str(p.status)
        for p in probes
        if not p.allowed and p.status != 429
    )


def _threshold(metric: str, limit: float, actual: float, passed: bool) -> dict:
    return {"metric": metric, "limit": limit, "actual": actual, "passed": passed}


def judge(probes: list[LimitProbe], *, limit: int, window_s: float) -> tuple[list[dict], list[str]]:
    """Thresholds ({metric, limit, actual, passed}) and one-line problems for ``limit``."""
    allowed = max_in_window([p.at for p in probes if p.allowed], window_s)
    crossed = boundary_crossed(probes)
    ceiling = 2 * limit if crossed else limit
    refusals = [p for p in probes if p.status == 429]
    bare = [p for p in refusals if not _integer(p.retry_after)]
    unexpected = _unexpected(probes)
    thresholds = [
        _threshold("allowed_in_any_window_max", ceiling, allowed, allowed <= ceiling),
        _threshold("refused_429_min", 1, len(refusals), len(refusals) >= 1),
        _threshold("refusals_without_retry_after_max", 0, len(bare), not bare),
        _threshold("unexpected_responses_max", 0, sum(unexpected.values()), not unexpected),
    ]
    return thresholds, _problems(allowed, ceiling, crossed, refusals, bare, unexpected, probes)


def _problems(allowed, ceiling, crossed, refusals, bare, unexpected, probes) -> list[str]:
    """Human sentences for each failed part of the verdict."""
    problems = []
    if allowed > ceiling:
        how = " (a fixed window rolled over)" if crossed else ""
        problems.append(f"{allowed} requests allowed within one window, limit {ceiling}{how}")
    if not refusals:
        problems.append(f"no request was refused with 429 out of {len(probes)}")
    if bare:
        sample = bare[0].retry_after
        shown = "missing" if sample is None else f"{sample!r}"
        problems.append(
            f"{len(bare)} of {len(refusals)} 429 responses lack an integer Retry-After "
            f"header (e.g. {shown})"
        )
    if unexpected:
        got = ", ".join(f"{status} x{n}" for status, n in sorted(unexpected.items()))
        problems.append(f"responses other than 2xx or 429 came back: {got}")
    return problems
