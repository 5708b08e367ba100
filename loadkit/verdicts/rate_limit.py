"""The one rate-limit verdict, from what each request got back: pure functions, no I/O, no Locust.

A limit of N per window holds when at most N requests are allowed in ANY window of that length
(counted on request start times, so a moving window is checked exactly). A fixed-window deployment
may allow up to 2N across one boundary; that is accepted only when the responses prove a boundary
passed: a request was refused and a later one allowed again. Besides, at least one request must be
refused, every refusal must be a 429 with an integer Retry-After, and nothing else may come back (a
500 or a lost request fails it).

The limit and its window come from targets.toml (``scenarios.rate_limit``: `limit_of`) in every
tool. Two forms apply the same rules: `judge` on a run's whole list of answers (the pytest
scenarios, the limiter probes: `judge_route` names the route), and `ProbeJudge` on one answer at a
time (Locust's rate-limit prober, which must pass or fail each request as it comes and wait as
told).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass

MAX_RETRY_AFTER_S = 120.0
BACKOFF_AFTER_DEFECT_S = 1.0
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 100, 60.0  # the contract's default limit, per user


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


def limit_of(profile, group: str = "rate_limit") -> tuple[int, float]:
    """(limit, window seconds) of a targets profile's ``scenarios.<group>`` (contract defaults)."""
    sizes = profile.scenarios.get(group, {})
    return int(sizes.get("limit", DEFAULT_LIMIT)), float(sizes.get("window_s", DEFAULT_WINDOW_S))


def retry_after_ok(value: str | None) -> bool:
    """Whether a Retry-After header holds an integer number of seconds."""
    return value is not None and value.strip().isdigit()


def max_in_window(times: list[float], window_s: float) -> int:
    """The largest number of ``times`` inside any half-open window [t, t + window_s)."""
    ordered, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def boundary_crossed(probes: list[LimitProbe], allowed: Callable[[LimitProbe], bool] | None = None):
    """Whether a refusal was followed by an allowed request (a fixed window rolled over)."""
    allowed = allowed or (lambda p: p.allowed)
    refused = False
    for probe in sorted(probes, key=lambda p: p.at):
        refused = refused or probe.status == 429
        if refused and allowed(probe):
            return True
    return False


@dataclass(frozen=True)
class Facts:
    """What a list of answers shows about a limit: the figures every verdict row is made of."""

    requests: int
    allowed: int  # the most allowed in any one window
    ceiling: int  # the limit, or twice it when a fixed window was seen to roll over
    crossed: bool
    refused: int
    bare: list[LimitProbe]  # refusals without an integer Retry-After
    unexpected: Counter  # status (or "no response") -> count, neither allowed nor 429


def assess(
    probes: list[LimitProbe], *, limit: int, window_s: float, counted: Collection[int] | None = None
) -> Facts:
    """The facts of ``probes`` against ``limit`` per ``window_s``; ``counted`` are the statuses of
    an allowed request (default: any 2xx)."""
    allowed = (lambda p: p.status in counted) if counted is not None else (lambda p: p.allowed)
    most = max_in_window([p.at for p in probes if allowed(p)], window_s)
    crossed = boundary_crossed(probes, allowed)
    refusals = [p for p in probes if p.status == 429]
    unexpected = Counter(
        "no response" if p.status is None else str(p.status)
        for p in probes
        if not allowed(p) and p.status != 429
    )
    bare = [p for p in refusals if not retry_after_ok(p.retry_after)]
    ceiling = 2 * limit if crossed else limit
    return Facts(len(probes), most, ceiling, crossed, len(refusals), bare, unexpected)


def thresholds(facts: Facts, prefix: str = "") -> list[dict]:
    """The verdict's four rows ({metric, limit, actual, passed}), metric names prefixed."""
    odd = sum(facts.unexpected.values())
    rows = [
        ("allowed_in_any_window_max", facts.ceiling, facts.allowed, facts.allowed <= facts.ceiling),
        ("refused_429_min", 1, facts.refused, facts.refused >= 1),
        ("refusals_without_retry_after_max", 0, len(facts.bare), not facts.bare),
        ("unexpected_responses_max", 0, odd, not odd),
    ]
    return [
        {"metric": prefix + m, "limit": lim, "actual": a, "passed": ok} for m, lim, a, ok in rows
    ]


def judge(probes: list[LimitProbe], *, limit: int, window_s: float) -> tuple[list[dict], list[str]]:
    """Thresholds and one-line problems of a scenario's answers against ``limit``."""
    facts = assess(probes, limit=limit, window_s=window_s)
    return thresholds(facts), _problems(facts)


def judge_route(
    probes: list[LimitProbe], *, name: str, where: str, limit: int, window_s: float, counted
) -> tuple[list[dict], list[str]]:
    """The same verdict for one limited route of the contract: rows prefixed by its name,
    problems naming it as a limiter defect; ``counted`` are the statuses that spend a slot."""
    facts = assess(probes, limit=limit, window_s=window_s, counted=counted)
    return thresholds(facts, f"{name}_"), [f"limiter defect on {where}: {p}" for p in _route(facts)]


def _problems(facts: Facts) -> list[str]:
    """Human sentences for each failed part of the verdict (a scenario's wording)."""
    problems = []
    if facts.allowed > facts.ceiling:
        how = " (a fixed window rolled over)" if facts.crossed else ""
        problems.append(
            f"{facts.allowed} requests allowed within one window, limit {facts.ceiling}{how}"
        )
    if not facts.refused:
        problems.append(f"no request was refused with 429 out of {facts.requests}")
    if facts.bare:
        sample = facts.bare[0].retry_after
        shown = "missing" if sample is None else f"{sample!r}"
        problems.append(
            f"{len(facts.bare)} of {facts.refused} 429 responses lack an integer Retry-After "
            f"header (e.g. {shown})"
        )
    if facts.unexpected:
        got = ", ".join(f"{status} x{n}" for status, n in sorted(facts.unexpected.items()))
        problems.append(f"responses other than 2xx or 429 came back: {got}")
    return problems


def _route(facts: Facts) -> list[str]:
    """The same failed parts, in a limiter probe's wording (the route is named before them)."""
    problems = []
    if facts.allowed > facts.ceiling:
        problems.append(f"{facts.allowed} let through within one window")
    if not facts.refused:
        problems.append(f"none of {facts.requests} requests got a 429")
    if facts.bare:
        problems.append(f"{len(facts.bare)} 429s lack an integer Retry-After")
    if facts.unexpected:
        problems.append(f"past the limit it answered {', '.join(sorted(facts.unexpected))}")
    return problems


@dataclass(frozen=True)
class ProbeVerdict:
    """What one response means: a failure message (None: as the contract says) and how long to
    wait."""

    failure: str | None
    wait_s: float = 0.0


class ProbeJudge:
    """The verdict one answer at a time, for a prober past ``limit`` allowed per ``window_s``:
    2xx is fine while at most ``limit`` were allowed in the moving window since the server last
    said when to come back; a 429 with an integer Retry-After is the limit working (wait that long,
    bounded, and count afresh: a fixed window may then grant a new one); anything else a defect."""

    def __init__(self, *, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._allowed: deque[float] = deque()

    def judge(self, at: float, status: int | None, retry_after: str | None) -> ProbeVerdict:
        """The verdict on a request started at ``at`` (wall time) that got ``status``."""
        if status == 429:
            return self._refused(retry_after)
        if status is not None and 200 <= status < 300:
            return self._allowed_at(at, status)
        got = "no response" if status is None else f"HTTP {status}"
        return ProbeVerdict(
            f"{got} while probing the limit (expected 2xx or 429)", BACKOFF_AFTER_DEFECT_S
        )

    def _refused(self, retry_after: str | None) -> ProbeVerdict:
        if not retry_after_ok(retry_after):
            shown = "missing" if retry_after is None else repr(retry_after)
            return ProbeVerdict(
                f"429 without an integer Retry-After ({shown})", BACKOFF_AFTER_DEFECT_S
            )
        self._allowed.clear()
        return ProbeVerdict(None, min(float(retry_after.strip()), MAX_RETRY_AFTER_S))

    def _allowed_at(self, at: float, status: int) -> ProbeVerdict:
        while self._allowed and self._allowed[0] <= at - self.window_s:
            self._allowed.popleft()
        self._allowed.append(at)
        if len(self._allowed) > self.limit:
            # no running count in the text: Locust groups failures by message, one row per text
            return ProbeVerdict(
                f"HTTP {status} beyond the limit: more than {self.limit} allowed within "
                f"{self.window_s:g} s"
            )
        return ProbeVerdict(None)
