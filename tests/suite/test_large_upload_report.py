"""The large-upload scenario's judgement, from rows as the scenario builds them: the
upload_to_processed transaction (server stamps or polling, the interval stated) and its optional
threshold in thresholds.upload, and the problems that quote the server."""

from types import SimpleNamespace

from loadkit.suite.large_uploads import _report, transaction_block
from loadkit.suite.outcome import Outcome
from loadkit.verdicts.slo import Profile


def _row(seconds: float | None, final: str = "processed", timing: str = "server") -> dict:
    row = {"size_bytes": 12_000_000, "started_at": 100.0, "answered_at": 100.2, "status": 200,
           "sent_bytes": 12_000_172, "final_status": final}  # fmt: skip
    if seconds is not None:
        row.update(to_processed_s=seconds, timing=timing)
    return row


def test_transaction_uses_the_latency_fields_and_states_the_polling_interval() -> None:
    """Processed uploads give the latency fields; a failed one is counted, not timed; the polling
    interval is stated only when a time came from polling."""
    rows = [_row(0.8), _row(1.2), _row(None, "failed")]
    block = transaction_block(rows, 1.0)["upload_to_processed"]
    assert (block["count"], block["processed"], block["failed"]) == (3, 2, 1)
    assert 1190 <= block["response_time_p95_ms"] <= 1210 and block["timing"] == "server"
    assert "poll_interval_s" not in block
    polled = transaction_block([_row(2.0, timing="polling")], 0.5)["upload_to_processed"]
    assert polled["timing"] == "polling" and polled["poll_interval_s"] == 0.5


def _judged(limit_ms: float, rows: list[dict]) -> Outcome:
    limits = {"upload": {"upload_to_processed_p95_ms": limit_ms}}
    ctx = SimpleNamespace(profile=Profile("t", limits, {}, {}))
    outcome = Outcome("large_uploads", "http://127.0.0.1:1", "t")
    _report(ctx, outcome, rows, {"available": False}, {"available": False}, {}, 1.0)
    return outcome


def test_upload_to_processed_p95_can_carry_a_threshold() -> None:
    """thresholds.upload.upload_to_processed_p95_ms is judged on the transaction's p95."""
    slow = _judged(1000, [_row(1.5), _row(0.5)])
    (row,) = [t for t in slow.thresholds if t["metric"] == "upload_to_processed_p95_ms"]
    assert row["passed"] is False and 1490 <= row["actual"] <= 1510
    fast = _judged(2000, [_row(1.5), _row(0.5)])
    assert all(t["passed"] for t in fast.thresholds)


def test_a_failed_upload_is_a_problem_quoting_the_server() -> None:
    """A session that ends failed is a problem carrying the server's error_message."""
    failed = _row(None, "failed") | {"error_message": "audio file missing"}
    outcome = _judged(60_000, [_row(1.0), failed])
    assert any("the server said: audio file missing" in p for p in outcome.problems)
