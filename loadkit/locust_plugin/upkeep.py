"""What keeps a long Locust run steady, on the master or the local runner: checkpoints and pruning.

One greenlet per test (`start_upkeep`, killed by `LocustRun.end`): every ``--checkpoint-interval``
seconds from the test's start it writes the report as a checkpoint (`run_report.write_checkpoint`),
and every PRUNE_S it drops Locust's own per-second request and failure counters older than KEEP_S
(``StatsEntry.num_reqs_per_sec`` / ``num_fail_per_sec`` grow by a key a second per endpoint for the
whole run, and Locust reads only the last few seconds of them, for its current RPS) and thins
Locust's chart history (``RequestStats.history``, a row every 5 s for its HTML charts) to at most
HISTORY_KEEP rows evenly spaced over the run (`watch.thinning.Downsampler`): the charts get coarser,
not longer.
"""

from __future__ import annotations

import time

import gevent

from loadkit.locust_plugin.run_report import write_checkpoint
from loadkit.locust_plugin.state import STATE, logger
from loadkit.watch.thinning import Downsampler

PRUNE_S = 60.0
KEEP_S = 60
MAX_TICKS = 7 * 86400  # bounded: a week of one-second ticks
HISTORY_KEEP = 120  # Locust's 5-second chart rows held: 10 minutes, then evenly coarser


def prune_stats(stats: object, now: float | None = None) -> int:
    """Drop per-second counters older than KEEP_S from every entry; how many keys went."""
    oldest = int(now if now is not None else time.time()) - KEEP_S
    dropped = 0
    for entry in [*stats.entries.values(), stats.total]:
        for counts in (entry.num_reqs_per_sec, entry.num_fail_per_sec):
            old = [t for t in counts if t < oldest]
            for t in old:
                del counts[t]
            dropped += len(old)
    return dropped


def _due(start: float, every: float, done: int) -> float:
    return start + (done + 1) * every if every > 0 else float("inf")


def _upkeep(environment: object, interval_s: float) -> None:
    """Checkpoints on a fixed schedule from the start (rendering does not push them later)."""
    start = time.monotonic()
    checkpoints, prunes = 0, 0
    history = Downsampler(HISTORY_KEEP)
    for _ in range(MAX_TICKS):
        next_at = min(_due(start, interval_s, checkpoints), _due(start, PRUNE_S, prunes))
        gevent.sleep(max(0.0, next_at - time.monotonic()))
        if STATE.run is None or not STATE.run.running:
            return
        if time.monotonic() >= _due(start, PRUNE_S, prunes):
            prunes += 1
            prune_stats(environment.runner.stats)
            history.thin(environment.runner.stats.history)
        if time.monotonic() >= _due(start, interval_s, checkpoints):
            checkpoints += 1
            try:
                write_checkpoint(environment)
            except Exception as exc:  # a failed checkpoint must not end the run
                logger.warning("checkpoint not written: %s", exc)


def start_upkeep(environment: object) -> gevent.Greenlet:
    """Start the test's upkeep greenlet (checkpoints only with --checkpoint-interval > 0)."""
    interval = getattr(environment.parsed_options, "checkpoint_interval", 0) or 0
    return gevent.spawn(_upkeep, environment, float(interval))
