"""Upload throughput of a Locust run: bytes sent and MB/s (decimal), in total and per size.

Each process tallies its own answered uploads (`UploadFigures.record`); a worker ships the tally
since its last report with the recorder's delta and the master adds it up (`merge`), so the report's
``uploads`` block counts every upload once. The field names are those of the pytest large-upload
scenario's totals (`loadkit.suite.large_uploads`): ``uploads``, ``sent_bytes``, ``seconds``,
``mb_per_s``; here ``seconds`` is the summed time of the upload requests (from the first byte sent
to the response), so ``mb_per_s`` is the rate one upload streamed at, whatever the concurrency.
Pure Python: no Locust import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadkit.measure.transactions import UploadTransactions
from loadkit.measure.upload_body import megabytes_per_s

MEASURED = (
    "uploads answered 200; seconds: summed upload request time (first byte sent to response); "
    "mb_per_s: sent_bytes / seconds, decimal MB"
)


@dataclass
class _Tally:
    uploads: int = 0
    sent_bytes: int = 0
    seconds: float = 0.0

    def add(self, uploads: int, sent_bytes: int, seconds: float) -> None:
        self.uploads += uploads
        self.sent_bytes += sent_bytes
        self.seconds += seconds

    def fields(self) -> dict:
        return {
            "uploads": self.uploads,
            "sent_bytes": self.sent_bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": megabytes_per_s(self.sent_bytes, self.seconds),
        }


@dataclass
class UploadFigures:
    """Answered uploads by recording size: count, bytes sent, request seconds; and the failed
    ones."""

    by_size: dict[int, _Tally] = field(default_factory=dict)
    failed: int = 0
    followed: UploadTransactions = field(default_factory=UploadTransactions)  # upload -> processed

    def record(self, size_bytes: int, sent_bytes: int, seconds: float, *, ok: bool) -> None:
        """One upload of a ``size_bytes`` recording (``sent_bytes`` with the multipart envelope)
        that took ``seconds``; ``ok``: answered 200."""
        if not ok:
            self.failed += 1
            return
        self.by_size.setdefault(size_bytes, _Tally()).add(1, sent_bytes, seconds)

    def merge(self, other: UploadFigures) -> None:
        for size, tally in other.by_size.items():
            self.by_size.setdefault(size, _Tally()).add(
                tally.uploads, tally.sent_bytes, tally.seconds
            )
        self.failed += other.failed
        self.followed.merge(other.followed)

    def to_dict(self) -> dict:
        """Message-safe state (string keys) for a worker's delta."""
        sizes = {str(s): [t.uploads, t.sent_bytes, t.seconds] for s, t in self.by_size.items()}
        return {"by_size": sizes, "failed": self.failed, "followed": self.followed.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> UploadFigures:
        figures = cls(failed=int(d.get("failed", 0)))
        for size, (uploads, sent, seconds) in d.get("by_size", {}).items():
            figures.by_size[int(size)] = _Tally(int(uploads), int(sent), float(seconds))
        figures.followed = UploadTransactions.from_dict(d.get("followed") or {})
        return figures

    def block(self) -> dict | None:
        """The report's ``uploads`` block (None when no upload was attempted); ``by_size`` only
        for a mix of sizes."""
        if not self.by_size and not self.failed:
            return None
        total = _Tally()
        for tally in self.by_size.values():
            total.add(tally.uploads, tally.sent_bytes, tally.seconds)
        block = {**total.fields(), "failed": self.failed, "measured": MEASURED}
        if len(self.by_size) > 1:
            block["by_size"] = {str(s): t.fields() for s, t in sorted(self.by_size.items())}
        return block
