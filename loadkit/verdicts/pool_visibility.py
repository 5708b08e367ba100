"""Whether /health's pool figures describe the pool a DB-heavy run actually used.

Deployed services of this kind report the pool of one engine while some requests go through a
second one (an auth engine, a sync engine), or report figures that never change. From one run's
pool samples and latency: the figures are incomplete when they never moved while more requests
were in flight than the pool holds, or when requests queued (p95 far above p50) while the reported
pool never filled. Pure: reads the run's figures, says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loadkit.verdicts.evidence import MIN_SAMPLES, too_few

QUEUE_P95_OVER_P50 = 5.0
QUEUE_MIN_P95_MS = 100.0


def judge(db_pool: Mapping, series: Iterable[Mapping], summary: Mapping, users: int | None) -> dict:
    """{complete: True/False/None, reason, samples} for a run with pool sampling."""
    out = [r["pool_checked_out"] for r in series if r.get("pool_checked_out") is not None]
    return {**_judge(out, db_pool.get("size"), summary, users), "samples": len(out)}


def _judge(out: list, size, summary: Mapping, users: int | None) -> dict:
    if len(out) < MIN_SAMPLES:
        return {"complete": None, "reason": too_few("the pool figures", len(out))}
    if size is None:
        return {"complete": None, "reason": "the pool size is unknown (not in /health)"}
    p50, p95 = summary.get("response_time_p50_ms"), summary.get("response_time_p95_ms")
    if max(out) == min(out) and users is not None and users > size:
        return {
            "complete": False,
            "reason": (
                f"the pool figures never moved (checked_out {out[0]} in all {len(out)} "
                f"samples) while {users} requests ran at once against a pool of {size}: "
                "/health does not describe the pool these requests use"
            ),
        }
    queued = p50 and p95 and p95 >= QUEUE_MIN_P95_MS and p95 >= QUEUE_P95_OVER_P50 * p50
    if queued and max(out) < size:
        return {
            "complete": False,
            "reason": (
                f"requests queued (p95 {p95:.0f} ms, p50 {p50:.0f} ms) while the reported "
                f"pool never filled (peak {max(out)} of {size}): the wait is elsewhere, e.g. a "
                "second engine that /health does not report, or the CPU"
            ),
        }
    return {"complete": True, "reason": f"checked_out moved between {min(out)} and {max(out)}"}
