"""The database pool under load, read from the server's GET /health.

`PoolMonitor` polls GET /health (urllib, no proxy) on a background thread for SQLAlchemy's pool
counters and treats every missing or extra field as unknown. It keeps at most ``keep`` samples
(default ``KEEP_SAMPLES``; then adjacent pairs merge, peaks kept), while its summary (maxima,
exhaustion events) is kept exactly as the samples come.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

from loadkit.measure.values import number
from loadkit.watch.sampler import KEEP_SAMPLES, Sampler
from loadkit.watch.thinning import merge_pool, thinned

_POOL_FIELDS = (
    "size",
    "checked_in",
    "checked_out",
    "overflow",
    "max_overflow",
    "timeout",
    "timeouts",
)
_TIMEOUT_COUNTERS = ("timeouts", "timeout_count", "timeouts_total", "pool_timeouts")


def parse_pool(body: object) -> dict:
    """SQLAlchemy pool counters from a /health body; every missing or odd field is None."""
    pool = body
    for key in ("checks", "database", "pool"):
        pool = pool.get(key) if isinstance(pool, dict) else None
    pool = pool if isinstance(pool, dict) else {}
    row = {name: number(pool.get(name)) for name in _POOL_FIELDS}
    counters = [number(pool.get(name)) for name in _TIMEOUT_COUNTERS]
    row["timeouts"] = next((c for c in counters if c is not None), None)
    return row


class PoolMonitor:
    """The database pool, read from GET {base}/health on a background thread."""

    def __init__(
        self,
        base_url: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        keep: int | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/health"
        self.keep = keep or KEEP_SAMPLES  # samples held; then adjacent pairs merge
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._samples: list[dict] = []
        self._events, self._figured, self._state = 0, 0, _fresh_state()
        self._lock = threading.Lock()
        self._sampler = Sampler(interval_s, self.sample_once, "pool-monitor")

    def start(self) -> None:
        """Take a first sample now and start the thread."""
        self.sample_once()
        self._sampler.start()

    def stop(self) -> None:
        """Stop the thread (idempotent)."""
        self._sampler.stop()

    def _fetch(self) -> tuple[int | None, object, str | None]:
        try:
            with self._opener.open(self.url, timeout=self.timeout_s) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:  # a 503 still carries the pool figures
            status, raw = exc.code, exc.read()
        except (OSError, ValueError) as exc:
            return None, None, f"{type(exc).__name__}: {exc}"
        try:
            return status, json.loads(raw), None
        except ValueError:
            return status, None, "body is not JSON"

    def sample_once(self) -> dict:
        """Poll /health now: {t, status, size, checked_in, checked_out, overflow, ..., error}."""
        wall = time.time()
        status, body, error = self._fetch()
        row = {"t": wall, "status": status, **parse_pool(body), "error": error}
        with self._lock:
            self._samples.append(row)
            if any(row[k] is not None for k in _POOL_FIELDS):
                self._figured += 1
                self._events += _exhausted(row, self._state)
            if len(self._samples) >= self.keep:
                self._samples = thinned(self._samples, lambda a, b: merge_pool(a, b, _POOL_FIELDS))
        return row

    def samples(self) -> list[dict]:
        """Every sample so far."""
        with self._lock:
            return [dict(s) for s in self._samples]

    def latest(self) -> dict | None:
        """The newest sample."""
        with self._lock:
            return dict(self._samples[-1]) if self._samples else None

    def summary(self) -> dict:
        """The report's db_pool block; figures no sample had are None.

        In connections: ``checked_out_max`` (in use), ``open_max`` (size + overflow: SQLAlchemy's
        overflow is negative while fewer than ``size`` connections are open) and ``capacity``
        (size + max_overflow). ``overflow_max`` is SQLAlchemy's raw counter, not a count."""
        rows = [s for s in self.samples() if any(s[k] is not None for k in _POOL_FIELDS)]
        size, extra = _last(rows, "size"), _last(rows, "max_overflow")
        out = {
            "size": size,
            "max_overflow": extra,
            "checked_out_max": _max(rows, "checked_out"),
            "open_max": max((n for n in open_connections(rows) if n is not None), default=None),
            "capacity": size + extra if None not in (size, extra) and extra >= 0 else None,
            "overflow_max": _max(rows, "overflow"),
            "exhaustion_events": self._events,
            "samples": self._figured,
        }
        if not rows:
            out["exhaustion_events"] = None
            out["unavailable_reason"] = f"no pool figures in {len(self.samples())} /health samples"
        return out


def open_connections(rows: list[dict]) -> list[float | int | None]:
    """Open connections (size + overflow) per sample, size carried over from earlier samples;
    None where either is unknown (in the order of ``rows``)."""
    size, out = None, []
    for row in rows:
        size = row.get("size") if row.get("size") is not None else size
        overflow = row.get("overflow")
        out.append(size + overflow if None not in (size, overflow) else None)
    return out


def _last(rows: list[dict], key: str) -> float | int | None:
    known = [r[key] for r in rows if r[key] is not None]
    return known[-1] if known else None


def _max(rows: list[dict], key: str) -> float | int | None:
    known = [r[key] for r in rows if r[key] is not None]
    return max(known) if known else None


def _fresh_state() -> dict:
    return {"size": None, "max_overflow": None, "timeouts": None}


def _exhausted(row: dict, last: dict) -> bool:
    """Whether this sample is an exhaustion event: every connection out (size + max_overflow) or
    the time-out counter grew. ``last`` carries size, max_overflow and timeouts over from earlier
    samples (a sample may lack them) and is updated."""
    size, extra = (row[k] if row[k] is not None else last[k] for k in ("size", "max_overflow"))
    out, timeouts = row["checked_out"], row["timeouts"]
    full = None not in (size, extra, out) and extra >= 0 and out >= size + extra
    grew = None not in (timeouts, last["timeouts"]) and timeouts > last["timeouts"]
    last.update({k: row[k] for k in last if row[k] is not None})
    return bool(full or grew)
