"""verdicts.drift: the leak verdict tells the reference backend's planted leak from none.

A real backend on loopback, GET /live at about 50/s for 15 s (bounded count), its RSS sampled every
0.5 s by watch.monitor.ServerMonitor, the rows judged by drift.drift_block as a report's would be
(min_duration_s lowered to 10 s for the test; the report's default is 60 s). Both backends run at
once: about 17 s in all.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from loadkit.verdicts import drift
from loadkit.watch.monitor import ServerMonitor

SECONDS = 15.0
RATE = 50.0
LEAK = 64 * 1024  # bytes kept per request: ~3 MB/s at 50/s


def _rows(url: str, pid: int) -> list[dict]:
    """Drive GET /live for SECONDS and return {t, server_rss_mb} rows, t since the start."""
    monitor = ServerMonitor(pid, interval_s=0.5)
    monitor.start()
    start = time.monotonic()
    with httpx.Client(base_url=url, timeout=5.0) as client:
        for i in range(int(SECONDS * RATE)):
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            client.get("/live")
    monitor.stop()
    t0 = monitor.samples()[0]["t"]
    return [{"t": s["t"] - t0, "server_rss_mb": s["rss_mb"]} for s in monitor.samples()]


def _verdict(rows: list[dict]) -> dict:
    return drift.drift_block(rows, interval_s=0.5, min_duration_s=10.0)["leak"]


@pytest.mark.slow
def test_the_planted_leak_is_called_a_leak_and_no_leak_is_not(backend_factory) -> None:
    """LEAK_BYTES_PER_REQUEST=64 KiB: the RSS slope's interval lies above the limit: "leak". The
    same load at the same time on a backend with no planted leak: not "leak" (15 s cannot resolve
    10 MB/h either way, so "inconclusive" or "no leak")."""
    leaky = backend_factory(LEAK_BYTES_PER_REQUEST=str(LEAK))
    sound = backend_factory()
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(_rows, b.url, b.pid) for b in (leaky, sound)]
        leak, none = (_verdict(run.result()) for run in runs)
    assert leak["verdict"] == "leak", leak
    assert leak["growth_mb"] > drift.NOISE_FLOOR_MB and leak["ci95"][0] > leak["limit_mb_per_h"]
    assert none["verdict"] in ("no leak", "inconclusive"), none
    assert none["growth_mb"] < drift.NOISE_FLOOR_MB
