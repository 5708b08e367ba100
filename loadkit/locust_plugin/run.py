"""One Locust test as the report sees it: the aggregate recorder, the monitors, live samples, the
report.

Every process records its own requests into a `RunRecorder`. A worker ships what it recorded since
its last report (`take_delta`) with Locust's own stats message, and the master merges it
(`merge_delta`), so the master's recorder holds exactly what one process would have recorded. The
server and pool monitors and the live sampler run on the master (or the single local process) only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import psutil

from loadkit.contract import mix
from loadkit.measure.histogram import LatencyHistogram
from loadkit.measure.recording import RunRecorder
from loadkit.measure.timeseries import DEFAULT_MAX_POINTS
from loadkit.measure.upload_figures import UploadFigures
from loadkit.report.schema import build_report
from loadkit.report.writer import write_report
from loadkit.verdicts import cost, locust_verdict
from loadkit.verdicts.defect_tally import DefectTally
from loadkit.verdicts.prober_tally import ProberTally
from loadkit.verdicts.slo import Profile
from loadkit.watch import canary
from loadkit.watch.monitor import ServerMonitor, server_series
from loadkit.watch.pool import PoolMonitor
from loadkit.watch.thinning import Downsampler

LIVE_WINDOW_S = 5
LIVE_KEEP = 600  # the Server tab's rows (1 s) held: 10 minutes, then evenly coarser
LIVE_MAX_TICKS = 7 * 86400  # bounded: a week of one-second rows
SATURATED_PERCENT = 90.0


class ProcessCpu:
    """This process's CPU (100% = one core) since ``start``."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._start: tuple[float, float] | None = None

    def _now(self) -> tuple[float, float]:
        times = self._proc.cpu_times()
        return time.monotonic(), times.user + times.system

    def start(self) -> None:
        self._start = self._now()

    def percent(self) -> float | None:
        if self._start is None:
            return None
        wall, cpu = self._now()
        elapsed = wall - self._start[0]
        return round(100 * (cpu - self._start[1]) / elapsed, 2) if elapsed > 0.5 else None


@dataclass
class LocustRun:
    """State of the current (or last) test in this process."""

    profile: Profile
    warmup_s: float = 0.0
    max_points: int = DEFAULT_MAX_POINTS  # --timeseries-points
    recorder: RunRecorder = field(default_factory=RunRecorder)
    started_at: float | None = None
    stopped_at: float | None = None
    running: bool = False
    server: ServerMonitor | None = None
    pool: PoolMonitor | None = None
    own_cpu: ProcessCpu = field(default_factory=ProcessCpu)
    worker_cpu: dict[str, float] = field(default_factory=dict)
    live: list[dict] = field(default_factory=list)
    live_thin: Downsampler = field(default_factory=lambda: Downsampler(LIVE_KEEP))
    sampler: gevent.Greenlet | None = None
    checkpointer: gevent.Greenlet | None = None  # upkeep.start_upkeep: checkpoints, pruning
    finalized: bool = False
    live_canary: canary.Canary | None = None
    canary_idle_ms: float | None = None
    canary_base: str | None = None
    uploads: UploadFigures = field(default_factory=UploadFigures)
    prober: ProberTally = field(default_factory=ProberTally)  # the rate-limit prober's answers
    defect_prober: DefectTally = field(default_factory=DefectTally)  # DefectProber's findings

    def begin(self, *, monitors: tuple[ServerMonitor, PoolMonitor | None] | None = None) -> None:
        """A test starts: fresh recorder, CPU window, and (master/local) monitors and live
        sampler. The canary's idle p99 is measured first, before the run's clock starts, so its
        1.5 s never count in the run's duration or requests/s."""
        if monitors is not None:
            self._measure_canary_idle(monitors[1])
        self.started_at, self.stopped_at, self.running = time.time(), None, True
        self.recorder = RunRecorder(warmup_s=self.warmup_s, max_points=self.max_points)
        self.recorder.start(self.started_at)
        self.uploads, self.prober = UploadFigures(), ProberTally()
        self.defect_prober = DefectTally()
        self.worker_cpu, self.finalized = {}, False
        self.own_cpu.start()
        self.live.clear()
        self.live_thin = Downsampler(LIVE_KEEP)
        if monitors is not None:
            self.server, self.pool = monitors
            self.server.start()
            if self.pool is not None:
                self.pool.start()
            self.sampler = gevent.spawn(self._sample_live)
            if self.canary_base is not None:
                settings = canary.Settings.from_profile(self.profile)
                self.live_canary = canary.Canary(self.canary_base, settings).start()

    def prime_canary(self, host: str) -> None:
        """Measure the canary's idle p99 at start-up (init), so that starting a test does not wait
        for it (the web UI would show its start form through an autostarted test's first 1.5 s)."""
        canary.idle_p99_ms(host.rstrip("/"), canary.Settings.from_profile(self.profile))

    def _measure_canary_idle(self, pool: PoolMonitor | None) -> None:
        """The /live canary's idle p99 (master or local only), before any load: measured once per
        target and process (at init when the host was known then)."""
        self.canary_base = None if pool is None else pool.url.removesuffix("/health")
        if self.canary_base is not None:
            settings = canary.Settings.from_profile(self.profile)
            self.canary_idle_ms = canary.idle_p99_ms(self.canary_base, settings)

    def end(self) -> None:
        """The test stopped: stop monitors and sampler (idempotent)."""
        if self.running:
            self.stopped_at, self.running = time.time(), False
        for greenlet in (self.sampler, self.checkpointer):
            if greenlet is not None:
                greenlet.kill(block=False)
        self.sampler = self.checkpointer = None
        for monitor in (self.server, self.pool, self.live_canary):
            if monitor is not None:
                monitor.stop()

    def probe_extra(self, duration_s: float, resources: dict | None, summary: dict) -> dict:
        """The upload throughput, the canary block and the per-endpoint CPU cost (time-share
        estimate) for the report."""
        extra = {}
        uploads = self.uploads.block()
        if uploads is not None:
            extra["uploads"] = uploads
        if self.defect_prober.notes:  # what DefectProber could not judge (a spent limit)
            extra["defect_prober"] = {"not_judged": list(self.defect_prober.notes)}
        if self.uploads.followed.count:
            extra["transactions"] = self.uploads.followed.block(mix.PROCESSING_POLL_S)
        if self.live_canary is not None:
            extra["canary"] = self.live_canary.summary(self.canary_idle_ms)
        cpu = (resources or {}).get("cpu_avg_percent")
        if cpu is not None:
            block = cost.time_share(summary["endpoints"], cpu / 100 * duration_s)
            if block is not None:
                extra["cost"] = block
        return extra

    def record_upload(self, size: int, sent: int, seconds: float, *, ok: bool, at: float) -> None:
        """One upload's recording size, bytes sent and time (``at``: when it started), past the
        warm-up only, as the recorder counts requests."""
        t0 = self.recorder.t0 if self.recorder.t0 is not None else at
        if at - t0 >= self.warmup_s:
            self.uploads.record(size, sent, seconds, ok=ok)

    def record_transaction(self, at: float, final_status: str, seconds: float | None,
                           timing: str, error_message: str | None = None) -> None:  # fmt: skip
        """One followed upload (``at``: when the upload started), past the warm-up only."""
        t0 = self.recorder.t0 if self.recorder.t0 is not None else at
        if at - t0 >= self.warmup_s:
            self.uploads.followed.record(final_status, seconds, timing, error_message)

    def take_delta(self) -> dict:
        """What this worker recorded since its last report, as a message-safe dict."""
        fresh = RunRecorder(warmup_s=self.warmup_s, max_points=self.max_points)
        delta, self.recorder = self.recorder, fresh
        self.recorder.start(delta.t0)
        uploads, self.uploads = self.uploads, UploadFigures()
        prober, self.prober = self.prober, ProberTally()
        found, self.defect_prober = self.defect_prober, DefectTally()
        return {"recorder": delta.to_dict(), "cpu": self.own_cpu.percent(),
                "uploads": uploads.to_dict(), "prober": prober.to_dict(),
                "defect_prober": found.to_dict()}  # fmt: skip

    def merge_delta(self, client_id: str, data: dict) -> None:
        """Merge a worker's delta into the aggregate (master)."""
        self.recorder.merge(RunRecorder.from_dict(data["recorder"]))
        self.uploads.merge(UploadFigures.from_dict(data.get("uploads") or {}))
        self.prober.merge(ProberTally.from_dict(data.get("prober") or {}))
        self.defect_prober.merge(DefectTally.from_dict(data.get("defect_prober") or {}))
        if data.get("cpu") is not None:
            self.worker_cpu[client_id] = data["cpu"]

    def generator_cpu_percent(self) -> float | None:
        """The busiest load-generator process's CPU over the test."""
        known = [c for c in (self.own_cpu.percent(), *self.worker_cpu.values()) if c is not None]
        return max(known) if known else None

    def findings(self) -> tuple[list[dict], int]:
        """(defect records, failures they explain) of both probers: rate-limit and defect."""
        found, explained = self.prober.findings()
        more, also = self.defect_prober.findings()
        return [*found, *more], explained + also

    def thresholds(self) -> tuple[list[dict], list[str]]:
        """The threshold rows on the figures so far (the live web UI; the report judges its own
        summary in `report`)."""
        found, explained = self.findings()
        cpu = self.generator_cpu_percent()
        rows, skipped = locust_verdict.thresholds(self.profile, self.recorder, cpu, explained)
        return [*rows, locust_verdict.defects_row(found)], skipped

    def recent_p95_ms(self, now: float | None = None) -> tuple[float | None, float]:
        """(p95 ms, requests/s) over the last LIVE_WINDOW_S whole seconds that hold data."""
        t0 = self.recorder.t0 or self.started_at or time.time()
        newest = int((now or time.time()) - t0)
        hist, requests = LatencyHistogram(), 0
        for sec in range(newest - LIVE_WINDOW_S, newest):
            item = self.recorder.series.second(sec)
            if item is not None:
                hist.merge(item.hist)
                requests += item.requests
        p95 = round(hist.percentile(95) / 1000, 3) if hist.count else None
        return p95, round(requests / LIVE_WINDOW_S, 2)

    def _sample_live(self) -> None:
        """Once a second while the test runs: server, pool and latency figures for the UI."""
        for _ in range(LIVE_MAX_TICKS):
            gevent.sleep(1.0)
            self.live.append(self.live_row())
            self.live_thin.thin(self.live)

    def live_row(self) -> dict:
        """The newest figures: server RSS/CPU, pool, p95 and throughput of the last seconds."""
        server = (self.server.latest() if self.server is not None else None) or {}
        pool = (self.pool.latest() if self.pool is not None else None) or {}
        p95, rps = self.recent_p95_ms()
        return {
            "t": round(time.time(), 3),
            "server_rss_mb": server.get("rss_mb"),
            "server_cpu_percent": server.get("cpu_percent"),
            "pool_checked_out": pool.get("checked_out"),
            "pool_overflow": pool.get("overflow"),
            "p95_ms": p95,
            "requests_per_second": rps,
        }

    def report(self, *, test_name: str, target: str, parameters: dict, extra: dict) -> dict:
        """The report in the shared schema (tool "locust"); ``interrupted`` when still running."""
        end = self.stopped_at or time.time()
        started = self.started_at or end
        duration = max(0.0, end - started)
        summary = self.recorder.summary(duration_s=duration)  # once: the report's, the cost's
        cpu = self.generator_cpu_percent()  # once: the threshold row's and the resources'
        found, explained = self.findings()
        rows, skipped = locust_verdict.thresholds(self.profile, summary, cpu, explained)
        found = [*extra.get("defects", []), *found]
        rows.append(locust_verdict.defects_row(found))
        resources = self.server.summary() if self.server is not None else None
        if resources is not None:
            resources["generator_cpu_percent"] = cpu
            resources["generator_saturated"] = None if cpu is None else cpu > SATURATED_PERCENT
        return build_report(
            test_name=test_name,
            tool="locust",
            started_at=started,
            duration_s=duration,
            recorder=self.recorder,
            summary=summary,
            target=target,
            profile=self.profile.name,
            parameters=parameters,
            warmup_s=self.warmup_s,
            interrupted=self.running,
            resources=resources,
            db_pool=self.pool.summary() if self.pool is not None else None,
            server_series=server_series(self.server, self.pool) if self.server else None,
            thresholds=rows,
            extra={
                **extra,
                "defects": found,
                "error_sources": locust_verdict.error_sources(summary, explained),
                **self.probe_extra(duration, resources, summary),
                "thresholds_skipped": skipped,
            },
        )

    @staticmethod
    def write(report: dict, directory: Path) -> Path:
        return write_report(report, directory)
