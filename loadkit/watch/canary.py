"""The /live canary: a slow, steady GET /live stream beside a run, watching the server's event loop.

GET /live has no dependencies, so its latency is the server's own responsiveness: a synchronous
call that blocks the event loop (password hashing on the loop, a ``time.sleep`` in a handler) holds
every request, the canary's too. The canary sends ``rate`` requests a second on one keep-alive
connection of its own, from a thread of its own (blocking ``http.client``: a real thread under
pytest, a greenlet under Locust's gevent patching, the same code). Each request is timed from
when it was MEANT to start, so a stall shows in every tick it delayed, and the worst gap between
two answers is kept. Memory stays flat however long it runs: latencies go into a histogram (3
significant digits, nearest rank), answers into a count and the worst gap.

The load generator shares this machine's cores with the server, so generator contention alone
raises the canary's latency a little. A run is flagged only when its p99 exceeds BOTH ``factor``
times the idle p99 and the idle p99 plus ``min_excess_ms``: a blocked loop (hundreds of
milliseconds) clears that bar, scheduling noise (a few milliseconds) does not.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from loadkit.measure.histogram import LatencyHistogram
from loadkit.measure.http import ssl_context

DEFAULT_RATE = 10.0
DEFAULT_FACTOR = 10.0
DEFAULT_MIN_EXCESS_MS = 100.0
MAX_SAMPLES = 6_048_000  # a week at 10/s
NOTE = (
    "canary: GET /live at {rate:g}/s on its own connection from the load generator's process, "
    "which shares the machine's cores with the server; flagged only when p99 exceeds "
    "max({factor:g} x idle p99, idle p99 + {excess:g} ms), so generator contention alone does "
    "not raise the flag"
)


@dataclass(frozen=True)
class Settings:
    """Rate and flag thresholds (targets.toml: scenarios.canary and thresholds.canary)."""

    rate: float = DEFAULT_RATE
    factor: float = DEFAULT_FACTOR
    min_excess_ms: float = DEFAULT_MIN_EXCESS_MS
    idle_s: float = 1.5
    timeout_s: float = 5.0

    @classmethod
    def from_profile(cls, profile) -> Settings:
        """Read the canary's settings from a targets profile (missing keys: defaults)."""
        sizes = profile.scenarios.get("canary", {})
        limits = profile.thresholds.get("canary", {})
        return cls(
            rate=float(sizes.get("rate_per_s", DEFAULT_RATE)),
            idle_s=float(sizes.get("idle_s", 1.5)),
            factor=float(limits.get("p99_over_idle_factor", DEFAULT_FACTOR)),
            min_excess_ms=float(limits.get("p99_over_idle_min_ms", DEFAULT_MIN_EXCESS_MS)),
        )

    def threshold_ms(self, idle_p99_ms: float) -> float:
        """The p99 above which a run is flagged."""
        return max(self.factor * idle_p99_ms, idle_p99_ms + self.min_excess_ms)


class Canary:
    """GET /live at a fixed rate on one connection, from a thread, until stopped (bounded)."""

    def __init__(self, base_url: str, settings: Settings | None = None, *, verify=True) -> None:
        self.settings = settings or Settings()
        url = urlsplit(base_url)
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname or "127.0.0.1", url.port
        self._path = url.path.rstrip("/") + "/live"
        self._verify = verify
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self.latency = LatencyHistogram()  # microseconds, of the answered requests
        self.answers = 0
        self.errors = 0
        self._last_answer: float | None = None
        self._max_gap_s = 0.0
        self.started_at: float | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            timeout = self.settings.timeout_s
            if self._https:
                ctx = ssl_context(self._verify)
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return self._conn

    def _one(self, intended: float) -> float | None:
        """One GET /live, timed from when it was meant to start; its latency in ms (None: an
        error)."""
        try:
            conn = self._connection()
            conn.request("GET", self._path)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            self._close()
        done = time.perf_counter()
        previous = self._last_answer if self._last_answer is not None else self.started_at
        self._max_gap_s = max(self._max_gap_s, done - (previous or done))
        self._last_answer, self.answers = done, self.answers + 1
        if not ok:
            self.errors += 1
            return None
        latency_us = int((done - intended) * 1_000_000)
        self.latency.record(latency_us)
        return latency_us / 1000

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        period = 1.0 / self.settings.rate
        t0 = time.perf_counter()
        for i in range(MAX_SAMPLES):
            intended = t0 + i * period
            delay = intended - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            if self._stop.is_set():
                break
            self._one(intended)
        self._close()

    def start(self) -> Canary:
        """Start the stream (returns self)."""
        self.started_at = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="live-canary", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the stream and wait for the request in flight (bounded by its time-out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.timeout_s + 1)

    def percentile_ms(self, p: float) -> float | None:
        """A percentile of the latencies so far (None before the first answer)."""
        return self.latency.percentile(p) / 1000 if self.latency.count else None

    def p99_ms(self) -> float | None:
        """p99 of the latencies so far."""
        return self.percentile_ms(99)

    def max_gap_ms(self) -> float | None:
        """The longest wait between two answers (from the start for the first)."""
        if self.started_at is None or not self.answers:
            return None
        return self._max_gap_s * 1000

    def summary(self, idle_p99_ms: float | None) -> dict:
        """The report's ``canary`` block; ``flagged`` is None when no idle value is known."""
        s, p99 = self.settings, self.p99_ms()
        threshold = s.threshold_ms(idle_p99_ms) if idle_p99_ms is not None else None
        flagged = None if threshold is None or p99 is None else p99 > threshold
        return {
            "rate": s.rate,
            "requests": self.answers,
            "errors": self.errors,
            "p50_ms": _round(self.percentile_ms(50)),
            "p99_ms": _round(p99),
            "max_gap_ms": _round(self.max_gap_ms()),
            "idle_p99_ms": _round(idle_p99_ms),
            "threshold_ms": _round(threshold),
            "flagged": flagged,
            "note": NOTE.format(rate=s.rate, factor=s.factor, excess=s.min_excess_ms),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def measure_idle(base_url: str, settings: Settings | None = None, *, verify=True) -> float | None:
    """The canary's p99 (ms) over ``settings.idle_s`` seconds with no load of ours running."""
    canary = Canary(base_url, settings, verify=verify).start()
    time.sleep(canary.settings.idle_s)
    canary.stop()
    return canary.p99_ms()


_IDLE: dict[str, float | None] = {}


def idle_p99_ms(base_url: str, settings: Settings | None = None, *, verify=True) -> float | None:
    """The idle p99 of this target, measured once per process (before its first scenario)."""
    if base_url not in _IDLE:
        _IDLE[base_url] = measure_idle(base_url, settings, verify=verify)
    return _IDLE[base_url]


def flagged_problem(block: dict, during: str) -> str | None:
    """The event-loop probe's failure message when the canary was flagged."""
    if not block.get("flagged"):
        return None
    return (
        f"event-loop defect: GET /live p99 {block['p99_ms']:.0f} ms during {during}, idle "
        f"{block['idle_p99_ms']:.1f} ms (flag above {block['threshold_ms']:.0f} ms; worst gap "
        f"{block['max_gap_ms']:.0f} ms): a synchronous call is blocking the server's event loop"
    )
