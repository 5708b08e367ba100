"""The refusal part of `test_large_uploads`: a body past the server's upload limit, refused with a
413 while it streams, and the client stopping (it reports how much it sent).

The limit is lowered on a second bundled backend (``MAX_UPLOAD_BYTES`` = the profile's
``oversize_limit``), started for this part and stopped after it, with its own SQLite file and
upload folder in the run folder. On a remote target it is skipped with the reason: its limit
cannot be lowered from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

from loadkit.contract import api
from loadkit.measure.http import HttpClient, Request
from loadkit.measure.upload_body import StreamedBody, parse_size
from loadkit.suite.session import setup_fetch
from loadkit.watch import targeting

REMOTE = "the target was not started by this run: its MAX_UPLOAD_BYTES cannot be lowered from here"


async def refused_mid_body(ctx, cfg: dict) -> dict:
    """The oversize block: limit, body, status, bytes sent, whether the client stopped early."""
    run_dir = os.environ.get("LOADTEST_RUN_DIR")
    if not ctx.target.started_here or not run_dir or ctx.plan is None:
        return {"skipped": REMOTE}
    try:
        limit, size = parse_size(cfg["oversize_limit"]), parse_size(cfg["oversize_upload"])
    except (KeyError, ValueError) as exc:
        return {"skipped": f"no oversize sizes in scenarios.large_uploads: {exc}"}
    folder = Path(run_dir) / "oversize_backend"
    folder.mkdir(exist_ok=True)
    backend = await asyncio.to_thread(_start, folder, limit)
    try:
        client = HttpClient(backend.url)
        account = ctx.plan.peek(1)[0]
        headers, patient = await _login(client, account, ctx.target.timeout_s)
        block = await _send(client, headers, patient, StreamedBody(size, seed=1))
    finally:
        await asyncio.to_thread(backend.stop)
    return {"max_upload_bytes": limit, "upload_size_bytes": size, **block,
            "problems": _problems(block, limit)}  # fmt: skip


def _start(folder: Path, limit: int):
    env = {"DATABASE_URL": f"sqlite:///{folder / 'backend.db'}",
           "UPLOAD_DIR": str(folder / "uploads"), "MAX_UPLOAD_BYTES": str(limit)}  # fmt: skip
    return targeting.start_reference(env=env, log_path=folder / "backend.log")


async def _login(client: HttpClient, account: api.Account, timeout_s: float):
    """Log in on the second backend (seeded like the first); (headers, one patient id)."""
    body = {"email": account.email, "password": account.password}
    status, reply = await setup_fetch(
        client, Request.json("POST", api.LOGIN, body), timeout_s=timeout_s
    )
    token = api.parse_token_response(json.loads(reply), time.time())
    headers = api.auth_headers(token.access_token)
    status, reply = await setup_fetch(
        client, Request("GET", api.PATIENTS, headers=headers), timeout_s=timeout_s
    )
    return headers, json.loads(reply)[0]["id"]


async def _send(client: HttpClient, headers: dict, patient: str, body: StreamedBody) -> dict:
    """Stream ``body``; what the server answered and how much of the body went before it did."""
    head = {**headers, "Content-Type": body.content_type}
    request = Request("POST", api.upload_path(patient), headers=head, body=body, expect=413)
    conn = await client.connect()
    t0 = time.perf_counter()
    error = None
    try:
        await conn.exchange(request, client.host_block, 60.0)
    except (OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return {"status": conn.status or None, "sent_bytes": conn.body_sent,
            "body_bytes": len(body), "stopped_early": conn.body_sent < len(body),
            "response_s": round(time.perf_counter() - t0, 3), "error": error}  # fmt: skip


def _problems(block: dict, limit: int) -> list[str]:
    if block["status"] != 413:
        return [f"an upload past MAX_UPLOAD_BYTES={limit} got HTTP {block['status']}, not 413"]
    if not block["stopped_early"]:
        return ["the 413 came only after the whole body was sent: the client did not stop"]
    return []
