"""The "upload -> processed" transaction, one rule for both tools: its time, and the report block.

Its time comes from the server's ``created_at``/``processed_at`` where the server sets them, else
from when polling saw it processed, counted from the upload's start (the block says which, and the
polling interval). Transactions are not requests: they are never in ``total_requests``, requests/s
or the error rate. `UploadTransactions` is mergeable across Locust workers (``to_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loadkit.measure.histogram import LatencyHistogram, latency_fields

KEY = "upload_to_processed"
MESSAGES_KEPT = 5  # distinct server error_messages of failed sessions kept in the block


def stamp(text: object) -> float | None:
    """An ISO time as epoch seconds; None when absent or unreadable."""
    try:
        return datetime.fromisoformat(str(text)).timestamp() if text else None
    except ValueError:
        return None


def to_processed(session: dict, started_at: float, seen_at: float) -> tuple[float | None, str]:
    """(seconds from upload to processed, "server" or "polling"); None seconds unless processed."""
    created, processed = stamp(session.get("created_at")), stamp(session.get("processed_at"))
    if created is not None and processed is not None:
        return round(processed - created, 3), "server"
    if session.get("status") == "processed":
        return round(seen_at - started_at, 3), "polling"
    return None, "polling"


@dataclass
class UploadTransactions:
    """Every followed upload: how it ended, and the times of those that reached processed."""

    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    count: int = 0
    failed: int = 0
    timings: set[str] = field(default_factory=set)
    messages: dict[str, int] = field(default_factory=dict)

    def record(self, final_status: str, seconds: float | None, timing: str | None,
               error_message: str | None = None) -> None:  # fmt: skip
        """One followed upload that ended ``final_status`` (processed, failed, unfinished)."""
        self.count += 1
        if final_status == "failed":
            self.failed += 1
            self._message(str(error_message or "no error_message"), 1)
        if final_status == "processed" and seconds is not None:
            self.hist.record(int(seconds * 1e6))
            self.timings.add(timing or "polling")

    def _message(self, text: str, n: int) -> None:
        if text in self.messages or len(self.messages) < MESSAGES_KEPT:
            self.messages[text] = self.messages.get(text, 0) + n

    def merge(self, other: UploadTransactions) -> None:
        self.hist.merge(other.hist)
        self.count += other.count
        self.failed += other.failed
        self.timings |= other.timings
        for text, n in other.messages.items():
            self._message(text, n)

    def to_dict(self) -> dict:
        return {"hist": self.hist.to_dict(), "count": self.count, "failed": self.failed,
                "timings": sorted(self.timings), "messages": dict(self.messages)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> UploadTransactions:
        item = cls(count=int(d.get("count", 0)), failed=int(d.get("failed", 0)))
        if d.get("hist"):
            item.hist = LatencyHistogram.from_dict(d["hist"])
        item.timings = set(d.get("timings") or [])
        item.messages = {str(k): int(v) for k, v in (d.get("messages") or {}).items()}
        return item

    def block(self, poll_s: float) -> dict:
        """The report's ``transactions`` block: the latency fields of those that reached
        processed, how many were followed and failed, and how they were timed."""
        fields = {"count": self.count, "processed": self.hist.count, **latency_fields(self.hist)}
        fields["failed"] = self.failed
        fields["timing"] = "+".join(sorted(self.timings)) or None
        if "polling" in self.timings:
            fields["poll_interval_s"] = poll_s
        if self.messages:
            fields["error_messages"] = dict(self.messages)
        return {KEY: fields}
