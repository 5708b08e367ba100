"""Large uploads (`test_large_uploads`): concurrent session recordings of realistic size, streamed.

Sizes from the profile's ``[scenarios.large_uploads]``: ``concurrent`` uploads of ``upload_size``
(``25MB`` decimal or ``24MiB``), each a real WAV sent in pieces (`loadkit.measure.upload_body`).
Per upload and in total: bytes and MB/s sent, time to the response, time to ``processed`` (or
``failed`` with the server's ``error_message``); the server's RSS while the bodies stream (a server
that buffers whole bodies grows by about the bytes in flight and fails the
``server_rss_growth_streaming_mb`` limit); disk used under the bundled backend's upload folder
before and after. "upload -> processed" is one transaction (`transactions.upload_to_processed`),
timed from the server's ``created_at``/``processed_at`` where it sets them, else by polling; it is
not a request (not in total_requests, requests/s or the error rate). The refusal part (a 413 while
the body streams, the client stopping) runs on a second bundled backend with ``MAX_UPLOAD_BYTES``
lowered (`loadkit.suite.oversize_upload`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from loadkit.contract import api
from loadkit.measure import transactions
from loadkit.measure.http import Request
from loadkit.measure.send import classify
from loadkit.measure.upload_body import StreamedBody, megabytes_per_s, parse_size
from loadkit.suite import oversize_upload
from loadkit.suite.harness import UPLOAD, Ctx, monitored
from loadkit.suite.outcome import Outcome
from loadkit.verdicts import slo

RSS_SAMPLE_S = 0.02
RSS_GROWTH_SHARE = 0.5  # of the bytes in flight: streaming grows far less, buffering more
SEEDS = 8  # distinct recordings; one PCM block each, shared by every upload of that seed


async def large_uploads(ctx: Ctx, outcome: Outcome) -> None:
    """``concurrent`` simultaneous streamed uploads of ``upload_size``, each followed to the end."""
    try:
        cfg = ctx.profile.scenario("large_uploads")
        n, size = int(cfg["concurrent"]), parse_size(cfg["upload_size"])
    except (slo.TargetsError, KeyError, ValueError) as exc:
        outcome.problems.append(f"large_uploads: {exc}")
        return
    outcome.skip_reason = ctx.claim_uploads(n)
    if outcome.skip_reason:
        return
    poll_s, timeout_s = float(cfg.get("poll_interval_s", 1.0)), float(cfg["processing_timeout_s"])
    accounts = await ctx.take(n)
    folder, disk_reason = upload_folder(ctx)
    outcome.parameters.update(
        users=n, requests=n, accounts=len(accounts), upload_size=str(cfg["upload_size"]),
        upload_size_bytes=size, poll_interval_s=poll_s, processing_timeout_s=timeout_s,
    )  # fmt: skip
    before = disk_used(folder)
    started = time.time()
    async with monitored(ctx, outcome, interval_s=RSS_SAMPLE_S) as server:
        jobs = [_upload_and_follow(ctx, outcome, i, a, size, poll_s, timeout_s) for i, a in
                enumerate(accounts)]  # fmt: skip
        rows = await asyncio.gather(*jobs)
        rss = streaming_rss(server.samples(), rows, ctx.target.resources_reason)
    outcome.duration_s = time.time() - started
    disk = _disk_block(folder, disk_reason, before)
    oversize = await oversize_upload.refused_mid_body(ctx, cfg)
    _report(ctx, outcome, rows, rss, disk, oversize, poll_s)


def upload_folder(ctx: Ctx) -> tuple[Path | None, str | None]:
    """The bundled backend's upload folder, or None and why it cannot be read."""
    run_dir = os.environ.get("LOADTEST_RUN_DIR")
    if not ctx.target.started_here or not run_dir:
        return None, "the target was not started by this run: its upload folder is not visible here"
    return Path(run_dir) / "backend_uploads", None


def disk_used(folder: Path | None) -> int | None:
    """Bytes of disk the files under ``folder`` occupy (allocated blocks); None: no folder."""
    if folder is None:
        return None
    if not folder.exists():
        return 0
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def _disk_block(folder: Path | None, reason: str | None, before: int | None) -> dict:
    if folder is None:
        return {"available": False, "reason": reason}
    after = disk_used(folder)
    return {"available": True, "folder": str(folder), "before_bytes": before,
            "after_bytes": after, "grown_bytes": after - before}  # fmt: skip


async def _upload_and_follow(ctx, outcome, i, account, size, poll_s, timeout_s) -> dict:
    """One streamed upload on its own connection, then its session polled to the end."""
    headers = await ctx.auth.headers(account)
    patient = await ctx.auth.patient_id(account)
    row = await send_upload(ctx, outcome, headers, patient, StreamedBody(size, seed=i % SEEDS))
    if row.get("session_id"):
        await follow(ctx, row, headers, poll_s, timeout_s)
    return row


async def send_upload(ctx: Ctx, outcome: Outcome, headers, patient, body: StreamedBody) -> dict:
    """Send ``body``, record it as one request; the per-upload row (bytes, MB/s, response)."""
    head = {**headers, "Content-Type": body.content_type}
    request = Request("POST", api.upload_path(patient), UPLOAD, head, body, expect=200)
    client = ctx.client()
    row: dict = {"size_bytes": body.size, "body_bytes": len(body), "started_at": time.time()}
    t0 = time.perf_counter()
    try:
        conn = await client.connect()
        reply = await conn.exchange(request, client.host_block, max(ctx.target.timeout_s, 120.0))
    except (OSError, TimeoutError) as exc:
        kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
        outcome.recorder.record(UPLOAD, None, error_kind=kind, message=f"{type(exc).__name__}")
        return row | {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    took = time.perf_counter() - t0
    conn.close()
    kind = classify(conn.status, 200)
    said = f"HTTP {conn.status}, expected 200" if kind else ""
    outcome.recorder.record(UPLOAD, took, status=conn.status, error_kind=kind, message=said)
    session = _json(reply)
    row.update(status=conn.status, sent_bytes=conn.body_sent, response_s=round(took, 3))
    row.update(answered_at=time.time(), mb_per_s=megabytes_per_s(conn.body_sent, took))
    row.update(session_id=session.get("id"), created_at=session.get("created_at"))
    if conn.status != 200:
        row["error"] = reply[:200].decode("utf-8", "replace")
    return row


async def follow(ctx: Ctx, row: dict, headers, poll_s: float, timeout_s: float) -> None:
    """Poll the session until processed or failed (bounded); its times into ``row``."""
    request = Request("GET", api.path(api.SESSION, id=row["session_id"]), headers=headers)
    client, deadline = ctx.client(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        try:
            conn = await client.connect()
            session = _json(await conn.exchange(request, client.host_block, ctx.target.timeout_s))
            conn.close()
        except (OSError, TimeoutError):
            continue
        if session.get("status") in ("processed", "failed"):
            _ended(row, session, time.time())
            return
    row["final_status"] = "unfinished"


def _ended(row: dict, session: dict, seen_at: float) -> None:
    """Record how the session ended: from the server's stamps where set, else when polled."""
    row["final_status"] = session["status"]
    if session["status"] == "failed":
        row["error_message"] = str(session.get("error_message") or "no error_message")
    seconds, timing = transactions.to_processed(session, row["started_at"], seen_at)
    if seconds is not None:
        row.update(to_processed_s=seconds, timing=timing)


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def streaming_rss(samples: list[dict], rows: list[dict], reason: str | None) -> dict:
    """The server's RSS before the bodies and its peak while they streamed (MB)."""
    start = min(r["started_at"] for r in rows)
    end = max(r.get("answered_at", start) for r in rows)
    before = [s["rss_mb"] for s in samples if s["t"] <= start] or [None]
    during = [s["rss_mb"] for s in samples if start <= s["t"] <= end + RSS_SAMPLE_S]
    if not samples or before[-1] is None or not during:
        return {"available": False, "reason": reason or "no server samples while bodies streamed"}
    peak = max(during)
    return {"available": True, "before_mb": before[-1], "peak_mb": peak, "samples": len(during),
            "growth_mb": round(peak - before[-1], 3),
            "sample_interval_s": RSS_SAMPLE_S}  # fmt: skip


def transaction_block(rows: list[dict], poll_s: float) -> dict:
    """``upload_to_processed``: the latency fields of every upload that reached processed."""
    followed = transactions.UploadTransactions()
    for r in rows:
        followed.record(r.get("final_status") or "unfinished", r.get("to_processed_s"),
                        r.get("timing"), r.get("error_message"))  # fmt: skip
    return followed.block(poll_s)


def _totals(rows: list[dict]) -> dict:
    sent = sum(r.get("sent_bytes", 0) for r in rows)
    start = min(r["started_at"] for r in rows)
    end = max(r.get("answered_at", start) for r in rows)
    return {"uploads": len(rows), "sent_bytes": sent, "seconds": round(end - start, 3),
            "mb_per_s": megabytes_per_s(sent, end - start)}  # fmt: skip


def _report(ctx, outcome, rows, rss, disk, oversize, poll_s) -> None:
    """Fill the report's blocks and judge: limits, every upload processed, RSS, the refusal."""
    transactions = transaction_block(rows, poll_s)
    outcome.extra["transactions"] = transactions
    total = _totals(rows)
    for r in rows:
        r.pop("answered_at", None)
    outcome.extra["large_uploads"] = {"uploads": rows, "total": total,
                                      "server_rss_streaming": rss, "disk": disk,
                                      "oversize": oversize}  # fmt: skip
    p95 = transactions["upload_to_processed"]["response_time_p95_ms"]
    summary = outcome.summary() | {"upload_to_processed_p95_ms": p95}
    outcome.thresholds += slo.check(summary, ctx.profile.limits("upload"))
    if rss["available"]:
        in_flight_mb = sum(r["size_bytes"] for r in rows) / 1e6
        limit = {"server_rss_growth_streaming_mb": round(RSS_GROWTH_SHARE * in_flight_mb, 1)}
        outcome.thresholds += slo.check({"server_rss_growth_streaming_mb": rss["growth_mb"]}, limit)
    outcome.problems += _row_problems(rows) + oversize.get("problems", [])


def _row_problems(rows: list[dict]) -> list[str]:
    problems = []
    for i, r in enumerate(rows):
        if r.get("status") != 200:
            said = r.get("error", "")
            problems.append(f"upload {i}: HTTP {r.get('status')}; the server said: {said}")
        elif r.get("final_status") == "failed":
            problems.append(f"upload {i} failed: the server said: {r['error_message'][:200]}")
        elif r.get("final_status") != "processed":
            problems.append(f"upload {i} did not reach 'processed' in time")
    return problems
