"""What Locust's DefectProber found, as defect records that survive distributed mode (pure, no
Locust import).

`locust_plugin.defect_prober.DefectProber` names each finding here through `verdicts.defects`
(the pytest probes' ids, routes and evidence: one record per id and route, a repeat counting in
``evidence.count``), and says what it could not judge (a spent upload limit) as a note. A worker
ships its tally with its recorder delta and the master merges it (`locust_plugin.run.LocustRun`),
as `ProberTally`.
``explained`` counts the prober's failed requests that a named defect explains: they are its
findings, not the service's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadkit.verdicts import defects

MAX_NOTES = 20


@dataclass
class DefectTally:
    """The defect prober's named defects, the failures they explain, and what it could not judge."""

    found: list[dict] = field(default_factory=list)
    explained: int = 0
    notes: list[str] = field(default_factory=list)

    def name(self, id_: str, route: str, message: str, *, failed: int = 1, **evidence) -> None:
        """One finding; ``failed``: how many of the prober's failed requests it explains."""
        defects.add(self.found, id_, route, message, **evidence)
        self.explained += failed

    def add_records(self, records: list[dict], failed: int = 0) -> None:
        """Records made by a `verdicts.defects` helper (``from_limit``, ``from_access``, ...)."""
        for record in records:
            self._add_counted(record)
        self.explained += failed

    def say(self, note: str) -> None:
        """What the prober could not judge, and why (distinct, bounded)."""
        if note not in self.notes and len(self.notes) < MAX_NOTES:
            self.notes.append(note)

    def _add_counted(self, record: dict) -> None:
        """Add a record, its evidence count added to a known one of the same id and route."""
        for known in self.found:
            if known["id"] == record["id"] and known["route"] == record["route"]:
                seen = int(known["evidence"].get("count", 1))
                known["evidence"]["count"] = seen + int(record["evidence"].get("count", 1))
                return
        self.found.append({**record, "evidence": dict(record["evidence"])})

    def merge(self, other: DefectTally) -> None:
        """Add another process's tally (the master merging a worker's)."""
        self.add_records(other.found, other.explained)
        for note in other.notes:
            self.say(note)

    def to_dict(self) -> dict:
        return {"found": [dict(r) for r in self.found], "explained": self.explained,
                "notes": list(self.notes)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> DefectTally:
        tally = cls()
        tally.add_records(list(d.get("found") or []), int(d.get("explained", 0)))
        for note in d.get("notes") or []:
            tally.say(str(note))
        return tally

    def findings(self) -> tuple[list[dict], int]:
        """(defect records, the prober's failures they explain)."""
        return [dict(r) for r in self.found], self.explained
