"""Limiter-semantics probes: each limited route of the contract, what a
request past its limit must get (429 with an integer Retry-After), judged per route."""

from __future__ import annotations

import json
from dataclasses import dataclass

from loadkit.contract import api
from loadkit.verdicts import rate_limit
from loadkit.verdicts.rate_limit import LimitProbe

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
    where = f"{route.endpoint} (limit {route.limit} per {route.window_s:g} s by {route.keyed_by})"
    return rate_limit.judge_route(
        probes,
        name=route.name,
        where=where,
        limit=route.limit,
        window_s=route.window_s,
        counted=route.counted,
    )


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
