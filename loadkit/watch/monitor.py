"""The server's process tree, sampled by a background thread at a fixed interval.

`ServerMonitor` samples the SERVER's process tree (parent plus children, e.g. uvicorn workers,
rediscovered at every sample) with psutil: RSS summed, CPU from cpu_times deltas (100% = one core).
It also measures this process's own CPU over the same time, flagged above 90%: the figures then
describe the generator. `find_server_pid` finds the process listening on a loopback target's port;
any other host gets None, and the resources block says why. The pool's monitor is
`loadkit.watch.pool`; `server_series` joins the two into the report's time-series rows.

Memory stays flat on long runs: a monitor keeps at most ``keep`` samples (default ``KEEP_SAMPLES``,
`loadkit.watch.sampler`); at that count adjacent pairs merge (the earlier time, peaks kept, CPU
averaged), so older samples are coarser, while the summaries (peak, CPU average) are kept exactly
as they come.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import psutil

from loadkit.watch.loopback import is_loopback
from loadkit.watch.pool import PoolMonitor, open_connections
from loadkit.watch.sampler import KEEP_SAMPLES, Sampler
from loadkit.watch.thinning import merge_server, thinned

MB = 1024 * 1024
SATURATION_PERCENT = 90.0


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


class ServerMonitor:
    """RSS and CPU of a server's process tree, sampled on a background thread."""

    def __init__(
        self,
        pid: int | None,
        *,
        interval_s: float = 1.0,
        unavailable_reason: str | None = None,
        saturation_percent: float = SATURATION_PERCENT,
        keep: int | None = None,
    ) -> None:
        self.pid = pid
        self.keep = keep or KEEP_SAMPLES  # samples held; then adjacent pairs merge
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
        self._sampler = Sampler(interval_s, self.sample_once, "server-monitor")

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
            if len(self._samples) >= self.keep:
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
