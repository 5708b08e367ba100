"""The upload -> processed transaction: one timing rule, and a block that survives the trip from
a Locust worker to its master."""

from __future__ import annotations

from loadkit.measure.transactions import KEY, UploadTransactions, to_processed


def test_server_stamps_win_over_polling() -> None:
    """With created_at and processed_at the time is the server's; without, polling's from the
    upload's start; a failed session has no time."""
    session = {"status": "processed", "created_at": "2026-01-01T00:00:00+00:00",
               "processed_at": "2026-01-01T00:00:01.250000+00:00"}  # fmt: skip
    assert to_processed(session, 100.0, 109.0) == (1.25, "server")
    assert to_processed({"status": "processed"}, 100.0, 104.5) == (4.5, "polling")
    assert to_processed({"status": "failed"}, 100.0, 104.5)[0] is None


def test_block_merges_across_workers_and_keeps_the_servers_messages() -> None:
    """Two workers' tallies, merged through to_dict: counts add, the p50 sits among the times,
    the failed ones' error_message is counted, polling names its interval."""
    one, two = UploadTransactions(), UploadTransactions()
    one.record("processed", 1.0, "polling")
    one.record("failed", None, "polling", "no model key")
    two.record("processed", 3.0, "polling")
    two.record("failed", None, "polling", "no model key")
    two.record("unfinished", None, "polling")
    merged = UploadTransactions.from_dict(one.to_dict())
    merged.merge(UploadTransactions.from_dict(two.to_dict()))
    block = merged.block(2.0)[KEY]
    assert (block["count"], block["processed"], block["failed"]) == (5, 2, 2)
    assert 1000 <= block["response_time_p50_ms"] <= 3000
    assert block["error_messages"] == {"no model key": 2}
    assert block["timing"] == "polling" and block["poll_interval_s"] == 2.0
