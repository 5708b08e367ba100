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

stats = RequestStats()
now = 10_000
entry = stats.get("/x", "GET")
for t in range(now - 300, now):
    entry.num_reqs_per_sec[t] = 1
print(upkeep.prune_stats(stats, now=now), min(entry.num_reqs_per_sec))
rows = upkeep.HISTORY_KEEP + 10
stats.history = [{"time": i} for i in range(rows)]
print(upkeep.thin_history(stats), rows, upkeep.KEEP_S)
print(" ".join(str(row["time"]) for row in stats.history))
print(upkeep.thin_history(stats, keep=10_000))
"""


def test_upkeep_bounds_locusts_per_second_counters_and_chart_history() -> None:
    """Locust's per-second counters older than KEEP_S go; its chart history past HISTORY_KEEP
    rows keeps the newest half whole and every other row of the older half."""
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    pruned, thinned, times, again = done.stdout.splitlines()
    dropped, rows, keep_s = map(int, thinned.split())
    assert pruned.split() == [str(300 - keep_s), str(10_000 - keep_s)]
    half = rows // 2
    assert dropped == half // 2
    kept = [int(t) for t in times.split()]
    assert kept == list(range(0, half, 2)) + list(range(half, rows))
    assert again == "0"
