"""pytest's side of `--metrics-port PORT`: the live Prometheus endpoint of a pytest load run.

The process that runs the scenarios serves `LiveMetrics` (the main process; under xdist each
worker, on PORT + its index). Requests reach it through the recorder (`RunRecorder.live`); the
harness names what it watches while a scenario runs (`watch`: the outcome, the server and pool
monitors, the canary), and the gauges are read from those at each scrape.
"""

from __future__ import annotations

from loadkit.measure.live_metrics import LINGER_S, LiveMetrics, newest
from loadkit.measure.recording import RunRecorder

_WATCHED: dict[str, object] = {}


def serve(port: int, testid: str) -> LiveMetrics:
    """Serve on 127.0.0.1:``port`` and see every recorded request (raises MetricsPortError)."""
    live = LiveMetrics(testid)
    live.serve(port)
    live.on_scrape(refresh)
    RunRecorder.live = live
    return live


def watch(**watched: object) -> None:
    """Name what the running scenario has: ``outcome``, ``server``, ``pool``, ``canary``."""
    if RunRecorder.live is not None:
        _WATCHED.update(watched)


def refresh(live: LiveMetrics) -> None:
    """Set the gauges from what is watched now (called at each scrape)."""
    server, pool = _WATCHED.get("server"), _WATCHED.get("pool")
    live.set_server_sample(newest(server))
    live.set_generator_cpu(server.generator_cpu_percent() if server is not None else None)
    live.set_pool_sample(newest(pool))
    canary = _WATCHED.get("canary")
    live.set_canary_p99(canary.p99_ms() if canary is not None else None)
    outcome = _WATCHED.get("outcome")
    if outcome is not None:
        live.set_users(outcome.parameters.get("users"))
        live.set_thresholds(list(outcome.thresholds))


def stop() -> None:
    """The session ends: keep serving LINGER_S for a last scrape, then close."""
    live, RunRecorder.live = RunRecorder.live, None
    if live is not None:
        live.stop(LINGER_S)
    _WATCHED.clear()
