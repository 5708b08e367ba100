"""The long-run upkeep's pruning of Locust's own state, on Locust's real RequestStats (in a fresh
interpreter: importing Locust monkey-patches the process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
from locust.stats import RequestStats
from loadkit.locust_plugin import upkeep
from loadkit.watch.thinning import Downsampler

stats = RequestStats()
now = 10_000
entry = stats.get("/x", "GET")
for t in range(now - 300, now):
    entry.num_reqs_per_sec[t] = 1
print(upkeep.prune_stats(stats, now=now), min(entry.num_reqs_per_sec))
history = Downsampler(upkeep.HISTORY_KEEP)
most = 0
for minute in range(120):  # two hours of Locust's 5-second rows, thinned once a minute
    stats.history.extend({"time": minute * 60 + 5 * i} for i in range(12))
    history.thin(stats.history)
    most = max(most, len(stats.history))
print(most, upkeep.HISTORY_KEEP, upkeep.KEEP_S)
print(" ".join(str(row["time"]) for row in stats.history))
"""


def test_upkeep_bounds_locusts_per_second_counters_and_chart_history() -> None:
    """Locust's per-second counters older than KEEP_S go; two hours of its chart history, thinned
    once a minute as the upkeep does, hold at most HISTORY_KEEP rows, evenly spaced from the
    first to the last minutes."""
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    pruned, bounded, times = done.stdout.splitlines()
    most, keep, keep_s = map(int, bounded.split())
    assert pruned.split() == [str(300 - keep_s), str(10_000 - keep_s)]
    assert most <= keep
    kept = [int(t) for t in times.split()]
    assert kept[0] == 0 and kept[-1] >= 7200 - 5 * 64 and len(kept) > keep // 2
    assert len({b - a for a, b in zip(kept, kept[1:], strict=False)}) == 1
