"""Limiter-semantics probes: each limited route of the contract, what a
request past its limit must get (429 with an integer Retry-After), judged per route."""

from __future__ import annotations

import json
from dataclasses import dataclass

from loadkit.contract import api
from loadkit.verdicts.ratelimit_verdict import LimitProbe, boundary_crossed, max_in_window

# Limiter semantics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitedRoute:
    """A limited route of the contract: its limit and which statuses spend a slot."""

    name: str
    endpoint: str
    limit: int
    window_s: float
    counted: frozenset[int]
    keyed_by: str
    extra: int = 2  # requests sent past the limit


LIMITED_ROUTES = {
    "default": LimitedRoute(
        "default", api.endpoint("GET", api.SESSIONS), 100, 60, frozenset({200}), "user"
    ),
    "login": LimitedRoute(
        "login", api.endpoint("POST", api.LOGIN), 5, 60, frozenset({401}), "address and email"
    ),
    "signup": LimitedRoute(
        "signup", api.endpoint("POST", api.SIGNUP), 3, 3600, frozenset({201}), "address"
    ),
    "refresh": LimitedRoute(
        "refresh", api.endpoint("POST", api.REFRESH), 10, 60, frozenset({200}), "address"
    ),
    "upload": LimitedRoute(
        "upload", api.endpoint("POST", api.SESSION_UPLOAD), 10, 3600, frozenset({200}), "user"
    ),
    "extract": LimitedRoute(
        "extract",
        api.endpoint("POST", api.SESSION_EXTRACT_NOTES),
        20,
        3600,
        frozenset({200}),
        "user",
    ),
}


def with_limit(route: LimitedRoute, limit: int | None, window_s: float | None) -> LimitedRoute:
    """The route with a configured limit (targets.toml) instead of the contract's."""
    return LimitedRoute(
        route.name,
        route.endpoint,
        int(limit or route.limit),
        float(window_s or route.window_s),
        route.counted,
        route.keyed_by,
        route.extra,
    )


def judge_limit(route: LimitedRoute, probes: list[LimitProbe]) -> tuple[list[dict], list[str]]:
    """The limit holds, refusals are 429 with an integer Retry-After, nothing else came back."""
    let_through = [p for p in probes if p.status in route.counted]
    allowed = max_in_window([p.at for p in let_through], route.window_s)
    crossed = boundary_crossed(
        [LimitProbe(p.at, 200 if p.status in route.counted else p.status) for p in probes]
    )
    ceiling = 2 * route.limit if crossed else route.limit
    refusals = [p for p in probes if p.status == 429]
    bare = [p for p in refusals if not (p.retry_after or "").strip().isdigit()]
    odd = sorted({str(p.status) for p in probes if p.status not in route.counted | {429}})
    where = f"{route.endpoint} (limit {route.limit} per {route.window_s:g} s by {route.keyed_by})"
    rows = [
        _row(f"{route.name}_allowed_in_any_window_max", ceiling, allowed),
        _row(f"{route.name}_refused_429_min", 1, len(refusals), minimum=True),
        _row(f"{route.name}_refusals_without_retry_after_max", 0, len(bare)),
        _row(f"{route.name}_unexpected_responses_max", 0, len(odd)),
    ]
    problems = []
    if allowed > ceiling:
        problems.append(f"limiter defect on {where}: {allowed} let through within one window")
    if not refusals:
        problems.append(f"limiter defect on {where}: none of {len(probes)} requests got a 429")
    if bare:
        problems.append(f"limiter defect on {where}: {len(bare)} 429s lack an integer Retry-After")
    if odd:
        problems.append(f"limiter defect on {where}: past the limit it answered {', '.join(odd)}")
    return rows, problems


def _row(metric: str, limit: float, actual: float, *, minimum: bool = False) -> dict:
    passed = actual >= limit if minimum else actual <= limit
    return {"metric": metric, "limit": limit, "actual": actual, "passed": passed}


def token_in_body(body: bytes) -> bool:
    """Whether a response body hands out a token (a refused login or refresh must not)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and bool(data.get("access_token") or data.get("refresh_token"))


def unchanged(what: str, before: object, after: object, expected_after: object) -> str | None:
    """A problem when a count or state moved other than the allowed requests explain."""
    if after == expected_after:
        return None
    return f"a refused request changed state: {what} went from {before} to {after}, " + (
        f"expected {expected_after}"
    )
