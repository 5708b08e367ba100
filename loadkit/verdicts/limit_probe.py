"""Judging each response of a rate-limit prober as it comes: pure logic, no I/O, no Locust.

The prober sends requests on an account of its own past a limit of ``limit`` per ``window_s``. Each
answer:
- 2xx: fine while at most ``limit`` were allowed in the moving window since the server last told us
  when to come back; one more allowed beyond that is a defect (the limit does not hold);
- 429 with an integer Retry-After: the limit works; wait that long (bounded) and start counting
  afresh, since a fixed-window deployment may then grant a whole new window;
- 429 without an integer Retry-After, any other status, or no response at all: a defect.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_RETRY_AFTER_S = 120.0
BACKOFF_AFTER_DEFECT_S = 1.0


@dataclass(frozen=True)
class ProbeVerdict:
    """What one response means: a failure message (None: as the contract says) and how long to
    wait."""

    failure: str | None
    wait_s: float = 0.0


class ProbeJudge:
    """Judges a stream of responses against ``limit`` allowed requests per ``window_s`` seconds."""

    def __init__(self, *, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._allowed: deque[float] = deque()

    def judge(self, at: float, status: int | None, retry_after: str | None) -> ProbeVerdict:
        """The verdict on a request started at ``at`` (wall time) that got ``status``."""
        if status == 429:
            return self._refused(retry_after)
        if status is not None and 200 <= status < 300:
            return self._allowed_at(at, status)
        got = "no response" if status is None else f"HTTP {status}"
        return ProbeVerdict(
            f"{got} while probing the limit (expected 2xx or 429)", BACKOFF_AFTER_DEFECT_S
        )

    def _refused(self, retry_after: str | None) -> ProbeVerdict:
        text = (retry_after or "").strip()
        if not text.isdigit():
            shown = "missing" if retry_after is None else repr(retry_after)
            return ProbeVerdict(
                f"429 without an integer Retry-After ({shown})", BACKOFF_AFTER_DEFECT_S
            )
        self._allowed.clear()
        return ProbeVerdict(None, min(float(text), MAX_RETRY_AFTER_S))

    def _allowed_at(self, at: float, status: int) -> ProbeVerdict:
        while self._allowed and self._allowed[0] <= at - self.window_s:
            self._allowed.popleft()
        self._allowed.append(at)
        if len(self._allowed) > self.limit:
            # no running count in the text: Locust groups failures by message, one row per text
            return ProbeVerdict(
                f"HTTP {status} beyond the limit: more than {self.limit} allowed within "
                f"{self.window_s:g} s"
            )
        return ProbeVerdict(None)
