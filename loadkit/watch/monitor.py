"""Monitors of the system under test, sampled by background threads at a fixed interval.

`ServerMonitor` samples the SERVER's process tree (parent plus children, e.g. uvicorn workers,
rediscovered at every sample) with psutil: RSS summed, CPU from cpu_times deltas (100% = one core).
It also measures this process's own CPU over the same time, flagged above 90%: the figures then
describe the generator. `find_server_pid` finds the process listening on a loopback target's port;
any other host gets None, and the resources block says why. `PoolMonitor` polls GET /health
(urllib, no proxy) for SQLAlchemy's pool counters and treats every missing or extra field as
unknown.

Memory stays flat on long runs: a monitor keeps at most ``KEEP_SAMPLES`` samples; at that count
adjacent pairs merge (the earlier time, peaks kept, CPU averaged), so older samples are coarser,
while the summaries (peak, CPU average, pool maxima, exhaustion events) are kept exactly as they
come.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

import psutil

from loadkit.measure.values import number
from loadkit.watch.loopback import is_loopback
from loadkit.watch.thinning import merge_pool, merge_server, thinned

MB = 1024 * 1024
SATURATION_PERCENT = 90.0
MAX_SAMPLES = 100_000  # bounds a monitor left running: 27 hours at 1 s
KEEP_SAMPLES = 3600  # samples held (an hour at 1 s); then pairs merge
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


def _listeners(port: int) -> set[int]:
    """PIDs listening on a TCP port on this machine."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:  # some platforms need per-process queries
        conns = []
        for proc in psutil.process_iter():
            try:
                conns += [c._replace(pid=proc.pid) for c in proc.net_connections(kind="tcp")]
            except (psutil.AccessDenied, psutil.NoSuchProcess):
                continue
    return {
        c.pid
        for c in conns
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }


def find_server_pid(host_url: str) -> int | None:
    """The process listening on the target's port, for a loopback host only (else None).

    Several listeners (uvicorn workers sharing a socket) resolve to their common ancestor.
    """
    parts = urlsplit(host_url if "://" in host_url else f"http://{host_url}")
    if not parts.hostname or not is_loopback(parts.hostname):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pids = _listeners(port)
    for pid in sorted(pids):
        try:
            parents = {p.pid for p in psutil.Process(pid).parents()}
        except psutil.NoSuchProcess:
            continue
        if not parents & pids:
            return pid
    return min(pids) if pids else None


def _own_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


class _Sampler:
    """A daemon thread calling ``sample`` every ``interval_s`` until stopped (bounded)."""

    def __init__(self, interval_s: float, sample: Callable[[], None], name: str) -> None:
        self.interval_s = interval_s
        self._sample = sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        for _ in range(MAX_SAMPLES):
            if self._stop.wait(self.interval_s):
                return
            self._sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, 2 * self.interval_s))


class ServerMonitor:
    """RSS and CPU of a server's process tree, sampled on a background thread."""

    def __init__(
        self,
        pid: int | None,
        *,
        interval_s: float = 1.0,
        unavailable_reason: str | None = None,
        saturation_percent: float = SATURATION_PERCENT,
    ) -> None:
        self.pid = pid
        self.saturation_percent = saturation_percent
        self._reason = unavailable_reason or "no server process on this machine (remote target?)"
        self._samples: list[dict] = []
        self._peak_mb: float | None = None
        self._cpu_sum, self._cpu_n = 0.0, 0
        self._own = psutil.Process()  # the generator: this process (the master, distributed)
        self._lock = threading.Lock()
        self._cpu_seen: dict[tuple[int, float], float] = {}
        self._last_wall: float | None = None
        self._own_start: tuple[float, float] | None = None
        self._own_end: tuple[float, float] | None = None
        self._sampler = _Sampler(interval_s, self.sample_once, "server-monitor")

    def start(self) -> None:
        """Take the initial sample now (memory before load) and start the thread."""
        self._own_start = (time.monotonic(), _own_cpu_seconds())
        if self.pid is not None:
            self.sample_once()
        self._sampler.start()

    def stop(self) -> None:
        """Stop the thread and close the generator's CPU window (idempotent)."""
        self._sampler.stop()
        if self._own_end is None:
            self._own_end = (time.monotonic(), _own_cpu_seconds())

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        try:
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return [root]

    def sample_once(self) -> dict | None:
        """Sample the tree now: {t, rss_mb, cpu_percent}; None when the process is gone."""
        if self.pid is None:
            return None
        wall, rss, cpu_s, seen = time.time(), 0, 0.0, {}
        try:
            tree = self._tree()
        except psutil.NoSuchProcess:
            self._reason = f"server process {self.pid} exited"
            return None
        for proc in tree:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            seen[key] = times.user + times.system
            cpu_s += seen[key] - self._cpu_seen.get(key, seen[key])
        return self._add(wall, rss, cpu_s, seen)

    def _add(self, wall: float, rss: int, cpu_s: float, seen: dict) -> dict:
        with self._lock:
            elapsed = None if self._last_wall is None else wall - self._last_wall
            cpu = round(100 * cpu_s / elapsed, 2) if elapsed else None
            row = {"t": wall, "rss_mb": round(rss / MB, 3), "cpu_percent": cpu}
            row["generator_rss_mb"] = round(self._own.memory_info().rss / MB, 3)
            self._samples.append(row)
            self._peak_mb = max(self._peak_mb or 0.0, row["rss_mb"])
            if cpu is not None:
                self._cpu_sum, self._cpu_n = self._cpu_sum + cpu, self._cpu_n + 1
            if len(self._samples) >= KEEP_SAMPLES:
                self._samples = thinned(self._samples, merge_server)
            self._cpu_seen, self._last_wall = seen, wall
            return row

    def samples(self) -> list[dict]:
        """Every sample so far: {t (wall), rss_mb, cpu_percent (None for the first)}."""
        with self._lock:
            return [dict(s) for s in self._samples]

    def generator_rss(self, t0: float) -> list[tuple[float, float]]:
        """(seconds since t0, MB) of this process's own RSS, sampled with the server's."""
        return [(s["t"] - t0, s["generator_rss_mb"]) for s in self.samples()]

    def latest(self) -> dict | None:
        """The newest sample (no copy of the list: the live view asks every second)."""
        with self._lock:
            return dict(self._samples[-1]) if self._samples else None

    def generator_cpu_percent(self) -> float | None:
        """This process's CPU (100% = one core) between start and stop (or now)."""
        if self._own_start is None:
            return None
        end = self._own_end or (time.monotonic(), _own_cpu_seconds())
        elapsed = end[0] - self._own_start[0]
        return round(100 * (end[1] - self._own_start[1]) / elapsed, 2) if elapsed > 0 else None

    def summary(self) -> dict:
        """The report's resources block (unknown figures None, with the reason)."""
        own = self.generator_cpu_percent()
        generator = {
            "generator_cpu_percent": own,
            "generator_saturated": None if own is None else own > self.saturation_percent,
        }
        samples = self.samples()
        if self.pid is None or not samples:
            keys = ("memory_initial_mb", "memory_peak_mb", "memory_growth_mb", "cpu_avg_percent")
            return {
                "server_pid": self.pid,
                **dict.fromkeys(keys),
                "cpu_samples": 0,
                **generator,
                "unavailable_reason": self._reason,
            }
        return {"server_pid": self.pid, **self._figures(samples), **generator}

    def _figures(self, samples: list[dict]) -> dict:
        """Initial and growth from the samples; peak and CPU average from every sample taken."""
        with self._lock:
            peak, cpu_sum, cpu_n = self._peak_mb, self._cpu_sum, self._cpu_n
        return {
            "memory_initial_mb": samples[0]["rss_mb"],
            "memory_peak_mb": peak,
            "memory_growth_mb": round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 3),
            "cpu_avg_percent": round(cpu_sum / cpu_n, 2) if cpu_n else None,
            "cpu_samples": cpu_n,
        }


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

    def __init__(self, base_url: str, *, interval_s: float = 1.0, timeout_s: float = 2.0) -> None:
        self.url = base_url.rstrip("/") + "/health"
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._samples: list[dict] = []
        self._events, self._figured, self._state = 0, 0, _fresh_state()
        self._lock = threading.Lock()
        self._sampler = _Sampler(interval_s, self.sample_once, "pool-monitor")

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
            if len(self._samples) >= KEEP_SAMPLES:
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


def server_series(server: ServerMonitor, pool: PoolMonitor | None) -> list[dict]:
    """Rows for build_report's time series: one per sample, the other monitor's fields None;
    ``pool_open`` is size + overflow, in connections."""
    rows = [
        {
            "t": s["t"],
            "server_rss_mb": s["rss_mb"],
            "server_cpu_percent": s["cpu_percent"],
            "pool_checked_out": None,
            "pool_open": None,
            "pool_overflow": None,
        }
        for s in server.samples()
    ]
    samples = pool.samples() if pool is not None else []
    for s, opened in zip(samples, open_connections(samples), strict=True):
        rows.append(
            {
                "t": s["t"],
                "server_rss_mb": None,
                "server_cpu_percent": None,
                "pool_checked_out": s["checked_out"],
                "pool_open": opened,
                "pool_overflow": s["overflow"],
            }
        )
    return sorted(rows, key=lambda r: r["t"])
