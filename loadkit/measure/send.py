"""The one send -> classify -> record path of a request, for every client.

Each load driver (the asyncio engine, the probe driver, the baseline's connection check and
Locust's request hook) hands what happened to one request here, and this module turns it into the
recorder's entry (`send_once` is the one-shot send of the probes and the pytest setup requests):
- no answer: the error kind comes from the exception's TYPE (a time-out class -> "timeout", anything
  else -> "connection"), never from its text; no latency;
- an answer with the expected status: success, unless a check of the scenario failed ("check");
- an answer with another status: "http_4xx" / "http_5xx", and anything else that was not expected
  (a 3xx, a 201 for a 200) "check", with a message naming the status.
So ``errors_by_kind`` holds DESIGN's five kinds and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

TIMEOUT_TYPE_NAMES = frozenset({"Timeout", "TimeoutError", "ConnectTimeout", "ReadTimeout"})
MESSAGE_BODY_BYTES = 200


def classify(status: int | None, expected: int | Collection[int]) -> str | None:
    """Return the error kind of a response, or None when it is the expected (successful) one.

    No status means no response came: "connection" (`error_kind` tells a time-out by its type).
    A status that is not expected is an error even when 2xx (kind "check"); 4xx and 5xx keep theirs.
    """
    if status is None:
        return "connection"
    if status == expected if isinstance(expected, int) else status in expected:
        return None
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    return "check"


def error_kind(exc: BaseException) -> str:
    """The kind of a request that got no answer: "timeout" for a time-out type, else "connection".

    By type: ``TimeoutError`` (asyncio's and socket's), and classes named like one (gevent's
    ``Timeout``, HTTP clients' ``ConnectTimeout``/``ReadTimeout``) anywhere in its ancestry, of
    the exception or of one it wraps (`_causes`)."""
    for cause in _causes(exc):
        if isinstance(cause, TimeoutError):
            return "timeout"
        if {cls.__name__ for cls in type(cause).__mro__} & TIMEOUT_TYPE_NAMES:
            return "timeout"
    return "connection"


def _causes(exc: BaseException, depth: int = 4) -> list[BaseException]:
    """``exc`` and what it wraps: geventhttpclient's ``RetriesExceeded`` (what Locust's
    FastHttpUser reports for a stalled response) keeps the time-out in ``original``; others in
    ``__cause__``."""
    chain = [exc]
    while len(chain) < depth:
        inner = getattr(chain[-1], "original", None) or chain[-1].__cause__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def answer_message(status: int, body: bytes = b"") -> str:
    """The message of an answer with an unexpected status: the status, then the body's start."""
    text = body[:MESSAGE_BODY_BYTES].decode("utf-8", "replace")
    return f"{status} {text}" if text else str(status)


def record_answer(
    recorder,
    endpoint: str,
    latency_s: float,
    status: int,
    *,
    expect: int | Collection[int],
    at: float,
    body: bytes = b"",
    check: Callable[[], str] | None = None,
    label: str = "",
) -> str | None:
    """Record an answered request; returns its error kind (None: as expected).

    ``check()`` is the scenario's own verdict on an expected answer (a failure message or "");
    ``label`` prefixes the message (a probe's name)."""
    kind = classify(status, expect)
    if kind is not None:
        message = answer_message(status, body)
    else:
        message = check() if check is not None else ""
        kind = "check" if message else None
    if label and message:
        message = f"{label}: {message}"
    recorder.record(endpoint, latency_s, status=status, error_kind=kind, message=message, at=at)
    return kind


def record_no_answer(
    recorder, endpoint: str, exc: BaseException, *, at: float, label: str = ""
) -> str:
    """Record a request that got no answer (refused, reset, timed out); returns its kind."""
    kind = error_kind(exc)
    message = f"{type(exc).__name__}: {exc}"[:MESSAGE_BODY_BYTES]
    if label:
        message = f"{label}: {message}"
    recorder.record(endpoint, None, error_kind=kind, message=message, at=at)
    return kind


@dataclass(frozen=True)
class Answer:
    """What one request on a fresh connection got: the status (None: no answer), body and
    headers, or the exception that stopped it; the time from connecting to the last byte."""

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: BaseException | None = None
    latency_s: float | None = None


async def send_once(client, request, *, timeout_s: float) -> Answer:
    """Send ``request`` (its path complete, prefix included) on a new connection of ``client``,
    closed after; a refused, reset or timed-out request is an Answer with its ``error``."""
    started = time.perf_counter()
    try:
        conn = await client.connect()
    except (OSError, TimeoutError) as exc:
        return Answer(None, error=exc)
    try:
        body = await conn.exchange(request, client.host_block, timeout_s)
    except (OSError, TimeoutError) as exc:
        return Answer(None, error=exc)
    finally:
        conn.close()
    headers = dict(conn.headers or {})
    return Answer(conn.status, body, headers, latency_s=time.perf_counter() - started)


def locust_kind(
    exception: BaseException | None, status: int | None, *, verdict: bool
) -> str | None:
    """The kind of a request as Locust reports it: no exception is success (the persona judged
    the status already); no status is a transfer that broke (its kind from the exception's
    type); a 4xx/5xx keeps its kind; any other status failed by the persona's own ``verdict`` is
    "check", and failed by anything else broke the transfer."""
    if exception is None:
        return None
    if status is None:
        return error_kind(exception)
    kind = classify(status, ())
    if kind == "check" and not verdict:
        return error_kind(exception)
    return kind


def record_locust(
    recorder,
    name: str,
    response_time_ms: float,
    status: int | None,
    exception: BaseException | None,
    *,
    at: float | None,
    verdict: bool,
    persona: str | None = None,
) -> str | None:
    """Record one request of Locust's ``request`` event; returns its kind (None: success).
    ``persona``: the Locust user class that sent it."""
    kind = locust_kind(exception, status, verdict=verdict)
    if kind in ("connection", "timeout"):
        status = None  # the response broke off (e.g. body cut short): no status, no latency
    latency = None if status is None else response_time_ms / 1000
    message = "" if exception is None else locust_message(exception, kind)
    extra = {} if persona is None else {"persona": persona}
    recorder.record(name, latency, status=status, error_kind=kind, message=message, at=at, **extra)
    return kind


def locust_message(exception: BaseException, kind: str | None) -> str:
    """A failure's message, the same for every request that failed alike (errors are grouped by
    it): a persona's verdict as written; a broken transfer as the type and text of what it wraps;
    geventhttpclient's errors without the concrete URL they name (ids and all)."""
    broke = kind in ("connection", "timeout")
    inner = _causes(exception)[-1] if broke else exception
    if hasattr(inner, "url"):  # geventhttpclient's errors: the text apart from the URL
        text = str(getattr(inner, "text", ""))
    elif broke:
        text = str(inner)
    else:
        return str(exception)
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__
