"""watch.monitor keeps a bounded list of samples on long runs, and its summaries exact."""

from __future__ import annotations

import os

import pytest

from loadkit.watch import monitor
from loadkit.watch.thinning import Downsampler, merge_pool, thinned


def test_server_samples_stay_bounded_and_the_summary_counts_every_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sampling this process 50 times with room for 8: at most 8 held, peak and CPU count exact."""
    monkeypatch.setattr(monitor, "KEEP_SAMPLES", 8)
    mon = monitor.ServerMonitor(os.getpid())
    rows = [mon.sample_once() for _ in range(50)]
    assert len(mon.samples()) < 8
    summary = mon.summary()
    assert summary["cpu_samples"] == 49  # the first sample has no CPU figure
    assert summary["memory_peak_mb"] == max(r["rss_mb"] for r in rows)
    assert mon.samples()[0]["t"] == rows[0]["t"]  # memory before load stays as it was


def test_thinning_pool_samples_keeps_the_peaks() -> None:
    """Merged pairs keep the maximum connections in use and the later pool size."""
    fields = ("size", "checked_out", "overflow", "timeouts")
    rows = [
        {"t": t, "status": 200, "error": None, "size": 5, "checked_out": t % 4,
         "overflow": -5 + t % 3, "timeouts": 0}
        for t in range(9)
    ]  # fmt: skip
    out = thinned(rows, lambda a, b: merge_pool(a, b, fields))
    assert [r["t"] for r in out] == [0, 1, 3, 5, 7]
    assert max(r["checked_out"] for r in out) == 3
    assert [r["checked_out"] for r in out[1:]] == [2, 3, 2, 3]


def test_a_monitor_holds_at_most_its_own_keep() -> None:
    """A monitor made with keep=10 (Locust's monitors use 600) never holds more than 10 samples."""
    mon = monitor.ServerMonitor(os.getpid(), keep=10)
    for _ in range(40):
        mon.sample_once()
        assert len(mon.samples()) < 10


def test_chart_rows_stay_evenly_spaced_over_the_whole_run() -> None:
    """10,000 rows appended with keep=100: never more than 100 held, always evenly spaced from the
    first row to the newest, however the list is thinned (one row at a time or in batches)."""
    for batch in (1, 7):
        rows: list[int] = []
        sampler = Downsampler(100)
        for start in range(0, 10_000, batch):
            rows.extend(range(start, min(start + batch, 10_000)))
            sampler.thin(rows)
            assert len(rows) <= 100
            assert len({b - a for a, b in zip(rows, rows[1:], strict=False)}) <= 1, rows
        assert rows[0] == 0 and rows[-1] >= 10_000 - sampler.stride and len(rows) > 50
