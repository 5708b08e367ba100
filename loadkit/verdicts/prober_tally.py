"""What the rate-limit prober found, as counts that survive Locust's distributed mode, and the
defect records they prove (pure, no Locust import).

`load_test.RateLimitProber` records each answer here; a worker ships its tally with its recorder
delta and the master merges it (`locust_plugin.run.LocustRun`). At report time `findings` names
the defects the pytest default-limit scenario names, through the same `verdicts.defects.from_limit`
(route ``GET /api/sessions/``, limit ``default``): ``default-limit-missing`` when more than the
limit were allowed in one window and nothing was refused, ``limiter-500`` when past it a 5xx came
back, ``retry-after-missing`` for a 429 without an integer Retry-After. A prober that never went
past the limit (a short run) proves nothing and names nothing. The prober's failed requests that a
named defect explains are its findings, not the service's errors: ``explained`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadkit.contract import api
from loadkit.verdicts import defects

ROUTE = api.endpoint("GET", api.SESSIONS)


@dataclass
class ProberTally:
    """The prober's answers: requests, statuses, and the failures by what they show."""

    requests: int = 0
    beyond: int = 0  # 2xx beyond the limit in one window
    bare: int = 0  # 429 without an integer Retry-After
    fives: int = 0  # 5xx (failed: the limit should answer 429)
    statuses: dict[str, int] = field(default_factory=dict)

    def record(self, status: int | None, *, failed: bool) -> None:
        """One answer (``status`` None: no response) and whether the prober's verdict failed it."""
        self.requests += 1
        key = str(status) if status else "none"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if failed and status is not None:
            self.beyond += 200 <= status < 300
            self.bare += status == 429
            self.fives += status >= 500

    def merge(self, other: ProberTally) -> None:
        """Add another process's tally (the master merging a worker's)."""
        self.requests += other.requests
        self.beyond, self.bare = self.beyond + other.beyond, self.bare + other.bare
        self.fives += other.fives
        for status, n in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + n

    def to_dict(self) -> dict:
        return {"requests": self.requests, "beyond": self.beyond, "bare": self.bare,
                "fives": self.fives, "statuses": dict(self.statuses)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> ProberTally:
        return cls(int(d.get("requests", 0)), int(d.get("beyond", 0)), int(d.get("bare", 0)),
                   int(d.get("fives", 0)), dict(d.get("statuses") or {}))  # fmt: skip

    def findings(self) -> tuple[list[dict], int]:
        """(defect records, the prober's failures they explain); ([], 0) before the limit."""
        refused = self.statuses.get("429", 0)
        if not (self.beyond or refused or self.fives):
            return [], 0
        found: list[dict] = []
        statuses = {s: n for s, n in self.statuses.items() if s.isdigit()}
        defects.from_limit(found, ROUTE, name="default", statuses=statuses, refused=refused,
                           bare=self.bare, total=self.requests)  # fmt: skip
        ids = {d["id"] for d in found}
        explained = (
            self.beyond * ("default-limit-missing" in ids)
            + self.fives * ("limiter-500" in ids)
            + self.bare * ("retry-after-missing" in ids)
        )
        return found, explained
