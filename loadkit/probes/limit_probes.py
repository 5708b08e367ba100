"""Limiter-semantics probes: each limited route of the contract, what a
request past its limit must get (429 with an integer Retry-After), judged per route.

A 5xx is the limiter's only when it came after the limit's count of successes or looks like the
limiter's refusal: any other 5xx is the route's own error (`split_route_errors`, named
`route-always-500` or `route-500-within-limit` with the server's message), and the limit is
judged on the rest.
`limiter_500` recognises the deployed limiter's refusal by its look (500, the error envelope's
INTERNAL_SERVER_ERROR, no Retry-After, the connection closed), so an upload probe can tell a spent
upload budget from a validation result."""

from __future__ import annotations

import json
from collections import Counter
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


def limit_evidence(route: LimitedRoute, answers: list[tuple[int | None, str | None]]) -> dict:
    """What `verdicts.defects.from_limit` takes about one run of ``answers`` (status,
    Retry-After) past ``route``'s limit: the statuses the route does not count as allowed, the
    429s, those of them without an integer Retry-After, and the total."""
    statuses: dict[str, int] = {}
    for status, _ in answers:
        if status is not None and status not in route.counted:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    refusals = [retry_after for status, retry_after in answers if status == 429]
    bare = sum(not rate_limit.retry_after_ok(value) for value in refusals)
    return {"statuses": statuses, "refused": len(refusals), "bare": bare, "total": len(answers)}


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


# A 5xx: the route's own error, or the limiter's refusal -----------------------------------------

LIMITER_CODE = "INTERNAL_SERVER_ERROR"
MESSAGE_CHARS = 200


def server_message(body: bytes) -> str | None:
    """The error message of the server's envelope (``{"error": {"message"}}`` or ``{"detail"}``)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    said = error.get("message") if isinstance(error, dict) else data.get("detail")
    return str(said)[:MESSAGE_CHARS] if said else None


def _error_code(body: bytes) -> str | None:
    try:
        error = json.loads(body).get("error")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return str(error.get("code")) if isinstance(error, dict) else None


def limiter_500(status: int | None, headers: dict[str, str], body: bytes = b"") -> bool:
    """Whether an answer looks like the deployed limiter's refusal: 500 with no Retry-After that
    closes the connection, its body (when there is one) the INTERNAL_SERVER_ERROR envelope."""
    if status != 500 or (headers.get("retry-after") or "").strip():
        return False
    if (headers.get("connection") or "").strip().lower() != "close":
        return False
    return not body or _error_code(body) == LIMITER_CODE


def split_route_errors(route: LimitedRoute, replies: list) -> tuple[list, list]:
    """(route errors, the rest) of ``replies`` (``.status``, ``.headers``, ``.body``, ``.at``) in
    start order: a 5xx that came before ``route.limit`` answers of a counted status, and does not
    look like the limiter's refusal (`limiter_500`: an earlier run may have spent the limit), is
    the route's own error, not the limiter's; the limit is judged on the rest."""
    errors, rest, counted = [], [], 0
    for reply in sorted(replies, key=lambda r: r.at):
        own = not limiter_500(reply.status, reply.headers, reply.body)
        if reply.status is not None and reply.status >= 500 and counted < route.limit and own:
            errors.append(reply)
        else:
            rest.append(reply)
            counted += reply.status in route.counted
    return errors, rest


def route_error_defect(route: LimitedRoute, errors: list, rest: list) -> tuple[str, str, dict]:
    """(id, message, evidence) of a route answering 5xx within its limit, the server's messages
    quoted: ``route-always-500`` when no request got a counted answer at all."""
    always = not any(r.status in route.counted for r in rest)
    said = Counter(server_message(r.body) or "no error message" for r in errors)
    quoted = "; ".join(f"{m} (x{n})" for m, n in said.most_common(3))
    statuses = Counter(str(r.status) for r in errors)
    codes = ", ".join(sorted(statuses))
    total = len(errors) + len(rest)
    id_ = "route-always-500" if always else "route-500-within-limit"
    none = "none succeeded: " if always else ""
    message = (
        f"{route.endpoint} fails on its own: {none}{len(errors)} of {total} requests answered "
        f"{codes} before the limit's count of {route.limit} successes; the server said: {quoted}"
    )
    evidence = {"statuses": dict(statuses), "error_messages": dict(said.most_common(3))}
    return id_, message, evidence


def not_judged(route: LimitedRoute, errors: list, rest: list) -> str:
    """Why the limit itself could not be judged: no request got a counted answer."""
    ok = "/".join(str(s) for s in sorted(route.counted))
    closed = sum(limiter_500(r.status, r.headers, r.body) for r in rest)
    seen = f" ({closed} answered 500 and closed the connection, as the limiter does)"
    return (
        f"the limit of {route.endpoint} could not be judged: none of {len(errors) + len(rest)} "
        f"requests got {ok}{seen if closed else ''}, so no success was counted toward it"
    )
