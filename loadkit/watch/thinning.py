"""Thinning a monitor's samples: adjacent pairs merge into one, so a monitor that runs for hours
keeps a bounded list (`loadkit.watch.sampler.KEEP_SAMPLES`). A merged sample has the earlier time,
the pair's peaks (RSS, connections in use, overflow, time-outs) and its average CPU.
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
