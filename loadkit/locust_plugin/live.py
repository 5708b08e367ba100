"""Locust's side of `--metrics-port PORT`: the live Prometheus endpoint of a run.

The master (or the single local process) serves `LiveMetrics` on 127.0.0.1:PORT from start-up
until LINGER_S after quitting. Requests reach it through the recorder (`RunRecorder.live`), so
its counters count what the report counts. A worker (which gets the option from the master with
the spawn message) counts into an unserved `LiveMetrics` and ships `take_delta()` with its stats
report; the master merges it. Gauges are read from the run's monitors at each scrape.
"""

from __future__ import annotations

from locust.runners import WorkerRunner

from loadkit.locust_plugin.state import logger
from loadkit.measure.live_metrics import LINGER_S, LiveMetrics, MetricsPortError, newest
from loadkit.measure.recording import RunRecorder

DATA_KEY = "loadkit_live"


def serve(environment: object, state: object, testid: str) -> str | None:
    """Master/local: serve the metrics if asked; a problem (port taken) as one line, else None."""
    port = getattr(environment.parsed_options, "metrics_port", 0) or 0
    if not port:
        return None
    live = LiveMetrics(testid)
    try:
        live.serve(port)
    except MetricsPortError as exc:
        return str(exc)
    live.on_scrape(lambda metrics: refresh(metrics, environment, state.run))
    logger.info("live metrics: http://127.0.0.1:%d/metrics (testid %s)", port, testid)
    RunRecorder.live = live
    return None


def begin(environment: object) -> None:
    """A test starts: counters from zero; a worker counts for the master when it serves."""
    if isinstance(environment.runner, WorkerRunner):
        wanted = getattr(environment.parsed_options, "metrics_port", 0)
        if wanted and RunRecorder.live is None:
            RunRecorder.live = LiveMetrics("worker")
    if RunRecorder.live is not None:
        RunRecorder.live.reset()


def ship(data: dict) -> None:
    """Worker: add what was counted since the last report to the stats message."""
    if RunRecorder.live is not None:
        data[DATA_KEY] = RunRecorder.live.take_delta()


def merge(data: dict) -> None:
    """Master: add a worker's counts."""
    if RunRecorder.live is not None and DATA_KEY in data:
        RunRecorder.live.merge_delta(data[DATA_KEY])


def refresh(live: LiveMetrics, environment: object, run: object) -> None:
    """Set the gauges from the run's monitors (called at each scrape)."""
    if run is None:
        return
    live.set_server_sample(newest(run.server))
    live.set_pool_sample(newest(run.pool))
    live.set_canary_p99(run.live_canary.p99_ms() if run.live_canary is not None else None)
    live.set_users(getattr(environment.runner, "user_count", None))
    live.set_generator_cpu(run.generator_cpu_percent())
    if run.started_at is not None:
        live.set_thresholds(run.thresholds()[0])


def stop() -> None:
    """Quitting: keep serving LINGER_S (a last scrape sees the final counts), then close."""
    live, RunRecorder.live = RunRecorder.live, None
    if live is not None:
        live.stop(LINGER_S)
