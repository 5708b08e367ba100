"""Bounded lists for runs of any length: they get coarser, not longer.

`thinned`: a monitor's samples, adjacent pairs merged into one past its ``keep``
(`loadkit.watch.sampler.KEEP_SAMPLES` by default). A merged sample has the earlier time, the pair's
peaks (RSS, connections in use, overflow, time-outs) and its average CPU. `Downsampler`: rows only
drawn in a chart (Locust's chart history, the Server tab's live rows), evenly spaced over the whole
run, at most ``keep`` of them.
"""

from __future__ import annotations

from collections.abc import Callable

MAXED = ("checked_out", "overflow", "timeouts")


def thinned(samples: list[dict], merge: Callable[[dict, dict], dict]) -> list[dict]:
    """The samples with adjacent pairs merged (the first sample kept as it is: memory before
    load); half as many."""
    rest = samples[1:]
    pairs = [merge(a, b) for a, b in zip(rest[::2], rest[1::2], strict=False)]
    return samples[:1] + pairs + (rest[-1:] if len(rest) % 2 else [])


def merge_server(a: dict, b: dict) -> dict:
    """Two server samples {t, rss_mb, cpu_percent, generator_rss_mb} as one."""
    cpu = [c for c in (a["cpu_percent"], b["cpu_percent"]) if c is not None]
    return {
        "t": a["t"],
        "rss_mb": max(a["rss_mb"], b["rss_mb"]),
        "cpu_percent": round(sum(cpu) / len(cpu), 2) if cpu else None,
        "generator_rss_mb": max(a["generator_rss_mb"], b["generator_rss_mb"]),
    }


def merge_pool(a: dict, b: dict, fields: tuple[str, ...]) -> dict:
    """Two pool samples as one: maxima of MAXED, the later known value of the other fields."""
    row = {"t": a["t"], "status": b["status"], "error": b["error"] or a["error"]}
    for key in fields:
        known = [r[key] for r in (a, b) if r[key] is not None]
        row[key] = (max(known) if key in MAXED else known[-1]) if known else None
    return row


class Downsampler:
    """Chart rows at one stride over the whole run, at most ``keep`` of them.

    `thin` judges the rows appended to a list since its last call (the list may be someone else's,
    e.g. Locust's ``stats.history``): the n-th row since the start stays when n is a multiple of the
    stride. Past ``keep`` rows every other one goes and the stride doubles, so the rows are always
    evenly spaced from the first to the newest, as the time series' points are."""

    def __init__(self, keep: int) -> None:
        self.keep, self.stride = keep, 1
        self._seen = 0  # rows judged since the start
        self._judged = 0  # length of the list after the last call

    def thin(self, rows: list) -> None:
        """Judge the rows appended since the last call, in place."""
        self._judged = min(self._judged, len(rows))  # the owner cleared the list
        new = rows[self._judged :]
        del rows[self._judged :]
        for row in new:
            if self._seen % self.stride == 0:
                rows.append(row)
                if len(rows) > self.keep:
                    rows[:] = rows[::2]
                    self.stride *= 2
            self._seen += 1
        self._judged = len(rows)
