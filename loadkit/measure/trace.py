"""A run recorder that also keeps each request, for verdicts that need order and time.

The rate-limit scenario counts allowed requests in any window by their start times, and the
sustained scenario compares the first third of a run with the last; a histogram cannot answer
either. The trace is bounded (``max_samples``) so a long run cannot exhaust memory; the report's
figures still come from the `RunRecorder` it extends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from loadkit.measure.histogram import nearest_rank
from loadkit.measure.recording import RunRecorder


@dataclass(frozen=True)
class Sample:
    """One request: when it was meant to start (wall time), how long it took, what came back."""

    endpoint: str
    at: float
    latency_s: float | None
    status: int | None
    error_kind: str | None
    message: str = ""


class TracingRecorder(RunRecorder):
    """`RunRecorder` that keeps the first ``max_samples`` requests as `Sample`s."""

    def __init__(self, *, max_samples: int = 200_000, **kwargs: float | int) -> None:
        super().__init__(**kwargs)
        self.max_samples = max_samples
        self.samples: list[Sample] = []

    def record(
        self,
        endpoint: str,
        latency_s: float | None,
        *,
        status: int | None = None,
        error_kind: str | None = None,
        message: str = "",
        at: float | None = None,
        persona: str | None = None,
    ) -> None:
        """Record as `RunRecorder.record` does, and keep the request."""
        at = time.time() if at is None else at
        if len(self.samples) < self.max_samples:
            self.samples.append(Sample(endpoint, at, latency_s, status, error_kind, message))
        super().record(
            endpoint, latency_s, status=status, error_kind=error_kind, message=message, at=at,
            persona=persona,
        )  # fmt: skip


def thirds_p95_ms(samples: list[Sample]) -> tuple[float | None, float | None]:
    """p95 (ms) of the first and of the last third of the answered requests, by intended start."""
    answered = sorted((s for s in samples if s.latency_s is not None), key=lambda s: s.at)
    third = len(answered) // 3
    if third == 0:
        return None, None
    early = nearest_rank([s.latency_s * 1000 for s in answered[:third]], 95)
    late = nearest_rank([s.latency_s * 1000 for s in answered[-third:]], 95)
    return early, late
