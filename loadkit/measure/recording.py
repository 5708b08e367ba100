"""The run recorder: the one object a load driver feeds (status codes,
errors by kind, per-endpoint latency, the time series, per-persona figures). Its memory is
bounded: the time series keeps at most ``max_points`` buckets (`measure.timeseries`).

Error samples are grouped: one entry per (endpoint, kind, status, message), with the time it was
first seen and a ``count``, up to ``error_sample_limit`` distinct groups (``errors_by_kind`` counts
every error). A UUID in a message (a request id, a session id) reads as ``<id>``, so errors alike
but for their ids are one group."""

from __future__ import annotations

import re
import time

from loadkit.measure.histogram import LatencyHistogram, latency_fields
from loadkit.measure.timeseries import DEFAULT_MAX_POINTS, TimeSeries
from loadkit.measure.timeseries import Latencies as _Latencies
from loadkit.measure.values import iso_utc
from loadkit.report.redaction import redact

ERROR_KINDS = ("http_4xx", "http_5xx", "connection", "timeout", "check")
_MESSAGE_LIMIT = 500
_RAW_GROUPS_LIMIT = 256  # distinct unredacted errors remembered, so a repeat costs a lookup
_UNSEEN = object()
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b")


class RunRecorder:
    """Collects every request of a run; mergeable across workers and processes (via to_dict).

    ``RunRecorder.live`` (a `LiveMetrics`, set by ``--metrics-port``) sees every recorded request,
    with whether it fell in the warm-up, so its counters count what the report counts.
    """

    live = None

    def __init__(
        self,
        *,
        warmup_s: float = 0.0,
        error_sample_limit: int = 20,
        max_points: int = DEFAULT_MAX_POINTS,
    ) -> None:
        self.warmup_s = float(warmup_s)
        self.error_sample_limit = error_sample_limit
        self.t0: float | None = None
        self.total = 0
        self.late_starts = 0
        self.overall = LatencyHistogram()
        self.endpoints: dict[str, _Latencies] = {}
        self.status_codes: dict[int, int] = {}
        self.errors_by_kind: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self.errors: list[dict] = []
        self.series = TimeSeries(max_points=max_points)
        self.personas: dict[str, _Latencies] = {}  # who sent them: a Locust persona, a scenario
        self._raw_groups: dict[tuple, dict | None] = {}  # unredacted error -> its group (or none)

    def start(self, wall_time: float | None = None) -> None:
        """Fix t0, the origin of warm-up and time series (default: now)."""
        self.t0 = time.time() if wall_time is None else wall_time

    def record(
        self,
        endpoint: str,
        latency_s: float | None,
        *,
        status: int | None = None,
        error_kind: str | None = None,
        message: str = "",
        at: float | None = None,
        persona: str | None = None,
    ) -> None:
        """Record one request; ``at`` is when it was meant to start (wall time, default now).

        ``error_kind`` None with a latency means success; no latency means no response came: an
        error ("connection" unless the caller names another kind). ``persona``: who sent it.
        """
        if at is None:
            at = time.time()
        if self.t0 is None:
            self.t0 = at
        offset = at - self.t0
        if latency_s is None and error_kind is None:
            error_kind = "connection"
        second = self.series.at(int(offset) if offset > 0 else 0)
        second.requests += 1
        us = -1
        if latency_s is not None:
            us = int(latency_s * 1_000_000 + 0.5)
            second.hist.record(us)
        if error_kind is not None:
            second.failures += 1
        if self.live is not None:
            warmup = offset < self.warmup_s
            self.live.observe_request(endpoint, latency_s, error_kind, warmup=warmup)
        if offset < self.warmup_s:
            return
        self.total += 1
        ep = self.endpoints.get(endpoint)
        if ep is None:
            ep = self.endpoints[endpoint] = _Latencies()
        ep.requests += 1
        if status is not None:
            self.status_codes[status] = self.status_codes.get(status, 0) + 1
        if us >= 0:
            self.overall.record(us)
            ep.hist.record(us)
        if error_kind is not None:
            ep.failures += 1
            self._record_error(endpoint, error_kind, status, message, at)
        if persona is not None:
            self._record_persona(persona, us, error_kind is not None)

    def _record_persona(self, persona: str, us: int, failed: bool) -> None:
        item = self.personas.get(persona)
        if item is None:
            item = self.personas[persona] = _Latencies()
        item.requests += 1
        item.failures += failed
        if us >= 0:
            item.hist.record(us)

    def _record_error(
        self, endpoint: str, kind: str, status: int | None, message: str, at: float
    ) -> None:
        if kind not in self.errors_by_kind:
            raise ValueError(f"unknown error kind {kind!r}: one of {', '.join(ERROR_KINDS)}")
        self.errors_by_kind[kind] += 1
        raw = (endpoint, kind, status, message)
        group = self._raw_groups.get(raw, _UNSEEN)
        if group is not _UNSEEN:  # seen before: no redaction or search again
            if group is not None:
                group["count"] += 1
            return
        text = _UUID.sub("<id>", redact(str(message)))[:_MESSAGE_LIMIT] if message else ""
        group = self._add_error_group(
            {"time": iso_utc(at), "endpoint": endpoint, "kind": kind, "status": status,
             "message": text, "count": 1}
        )  # fmt: skip
        if len(self._raw_groups) < _RAW_GROUPS_LIMIT:
            self._raw_groups[raw] = group

    @staticmethod
    def _error_key(entry: dict) -> tuple:
        return entry["endpoint"], entry["kind"], entry["status"], entry["message"]

    def _add_error_group(self, entry: dict) -> dict | None:
        """Count ``entry`` in its group (endpoint, kind, status, message), or start a new group
        while there is room; the group keeps the earliest time. Returns the group (None: no
        room)."""
        key = self._error_key(entry)
        for group in self.errors:
            if self._error_key(group) == key:
                group["count"] = group.get("count", 1) + entry.get("count", 1)
                group["time"] = min(group["time"], entry["time"])
                return group
        if len(self.errors) >= self.error_sample_limit:
            return None
        self.errors.append(dict(entry, count=entry.get("count", 1)))
        return self.errors[-1]

    def record_late_start(self, n: int = 1) -> None:
        """Count requests that started later than intended (open model, saturated client)."""
        self.late_starts += n

    def merge(self, other: RunRecorder) -> None:
        """Add another recorder's figures; time series align on wall time (earliest t0 wins)."""
        if other.t0 is not None and self.t0 is not None and other.t0 < self.t0:
            self._shift_series(round(self.t0 - other.t0))
            self.t0 = other.t0
        shift = 0 if other.t0 is None or self.t0 is None else round(other.t0 - self.t0)
        self.t0 = self.t0 if self.t0 is not None else other.t0
        self.series.merge(other.series, shift)
        for name, item in other.endpoints.items():
            self.endpoints.setdefault(name, _Latencies()).merge(item)
        for code, n in other.status_codes.items():
            self.status_codes[code] = self.status_codes.get(code, 0) + n
        for kind, n in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + n
        for entry in other.errors:
            self._add_error_group(entry)
        self.errors.sort(key=lambda e: e["time"])
        for name, item in other.personas.items():
            self.personas.setdefault(name, _Latencies()).merge(item)
        self.total += other.total
        self.late_starts += other.late_starts
        self.overall.merge(other.overall)

    def _shift_series(self, seconds: int) -> None:
        self.series.shift(seconds)

    def to_dict(self) -> dict:
        """JSON- and msgpack-safe state (string keys, lists, numbers) to send between processes."""
        return {
            "warmup_s": self.warmup_s,
            "error_sample_limit": self.error_sample_limit,
            "t0": self.t0,
            "total": self.total,
            "late_starts": self.late_starts,
            "overall": self.overall.to_dict(),
            "endpoints": {name: item.to_dict() for name, item in self.endpoints.items()},
            "status_codes": {str(code): n for code, n in self.status_codes.items()},
            "errors_by_kind": dict(self.errors_by_kind),
            "errors": [dict(e) for e in self.errors],
            "series": self.series.to_dict(),
            "personas": {name: item.to_dict() for name, item in self.personas.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunRecorder:
        """Rebuild a recorder written by `to_dict`."""
        rec = cls(warmup_s=d["warmup_s"], error_sample_limit=d["error_sample_limit"])
        rec.series = TimeSeries.from_dict(d["series"])
        rec.t0, rec.total, rec.late_starts = d["t0"], d["total"], d["late_starts"]
        rec.overall = LatencyHistogram.from_dict(d["overall"])
        rec.endpoints = {k: _Latencies.from_dict(v) for k, v in d["endpoints"].items()}
        rec.status_codes = {int(k): n for k, n in d["status_codes"].items()}
        rec.errors_by_kind.update(d["errors_by_kind"])
        rec.errors = [dict(e) for e in d["errors"]]
        rec.personas = {k: _Latencies.from_dict(v) for k, v in d.get("personas", {}).items()}
        return rec

    @property
    def failures(self) -> int:
        """Steady-state requests that failed, whatever the kind."""
        return sum(item.failures for item in self.endpoints.values())

    def summary(self, *, duration_s: float) -> dict:
        """The report's flat request fields; ``duration_s`` is the whole run, warm-up included."""
        steady_s = duration_s - self.warmup_s
        failures = self.failures
        rate = None if not self.total else round(100 * failures / self.total, 4)
        return {
            "total_requests": self.total,
            "requests_per_second": round(self.total / steady_s, 3) if steady_s > 0 else None,
            "success_rate_percent": None if rate is None else round(100 - rate, 4),
            "error_rate_percent": rate,
            "late_starts": self.late_starts,
            **latency_fields(self.overall),
            "status_codes": {str(code): n for code, n in sorted(self.status_codes.items())},
            "errors_by_kind": {kind: self.errors_by_kind.get(kind, 0) for kind in ERROR_KINDS},
            "errors": [dict(e) for e in self.errors],
            "endpoints": {
                name: self._endpoint_fields(item) for name, item in self.endpoints.items()
            },
            "personas": self._persona_fields(steady_s),
            "timeseries": self.series.rows(duration_s),
            "timeseries_interval_s": self.series.interval_s,
        }

    @staticmethod
    def _endpoint_fields(item: _Latencies) -> dict:
        return {"requests": item.requests, "failures": item.failures, **latency_fields(item.hist)}

    def _persona_fields(self, steady_s: float) -> dict:
        """Each persona's steady-state requests, failures, latency and requests/s."""
        return {
            name: {
                **self._endpoint_fields(item),
                "requests_per_second": round(item.requests / steady_s, 3) if steady_s > 0 else None,
            }
            for name, item in sorted(self.personas.items())
        }


def measure_record_cost(calls: int = 200_000) -> dict[str, float]:
    """Microseconds per `RunRecorder.record` call (success and 4xx), for the module docstring."""
    import timeit

    rec = RunRecorder(warmup_s=0.0)
    rec.start()
    ok = timeit.timeit(
        lambda: rec.record("GET /api/sessions/{id}", 0.0123, status=200), number=calls
    )
    bad = timeit.timeit(
        lambda: rec.record("GET /api/sessions/{id}", 0.0123, status=404, error_kind="http_4xx"),
        number=calls,
    )
    return {"success_us": ok / calls * 1e6, "http_4xx_us": bad / calls * 1e6}


if __name__ == "__main__":
    cost = measure_record_cost()
    print(
        f"record(): {cost['success_us']:.2f} us per successful request, "
        f"{cost['http_4xx_us']:.2f} us per request answered 4xx"
    )
