"""The realistic persona's request mix, written once: Locust's RealisticTherapist and the
engine's capacity search both read their weights and think time from here.

Each `Action` is one task of the persona: its name (the task method in load_test.py), its weight,
the route it sends, and whether a per-account budget paces it (uploads: 10 an hour per account by
the contract). A budgeted action cannot follow an arrival rate, so the capacity search leaves it
out and says so; Locust's persona still takes it within the upload budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadkit.contract import api

THINK_TIME_S = (1.0, 3.0)  # Locust's between(1, 3): uniform, so 2 s on average
PROCESSING_POLL_S = 2.0  # how often the persona polls a new session until processed or failed


@dataclass(frozen=True)
class Action:
    """One task of the persona: name, weight, route, and what kind of request it is."""

    name: str
    weight: int
    endpoint: str
    read: bool = True
    budgeted: bool = False


REALISTIC: tuple[Action, ...] = (
    Action("list_sessions", 5, api.endpoint("GET", api.SESSIONS)),
    Action("view_session", 4, api.endpoint("GET", api.SESSION)),
    Action("list_patients", 3, api.endpoint("GET", api.PATIENTS)),
    Action("patient_sessions", 2, api.endpoint("GET", api.SESSIONS)),
    Action("view_notes", 1, api.endpoint("GET", api.SESSION_NOTES)),
    Action("create_patient", 1, api.endpoint("POST", api.PATIENTS), read=False),
    Action("upload_and_follow", 1, api.endpoint("POST", api.SESSION_UPLOAD), False, True),
    Action("health", 1, api.endpoint("GET", api.HEALTH)),
)
MIXES = ("realistic", "reads")


def weight(name: str) -> int:
    """The weight of the persona's task ``name`` (KeyError for a task the mix lacks)."""
    for action in REALISTIC:
        if action.name == name:
            return action.weight
    raise KeyError(f"no task {name!r} in the realistic mix")


def mean_think_s() -> float:
    """The persona's mean think time between two tasks, in seconds."""
    return sum(THINK_TIME_S) / 2


def arrival_mix(kind: str = "realistic") -> tuple[Action, ...]:
    """The actions an arrival-rate run sends: every unbudgeted one ("realistic") or the reads."""
    if kind not in MIXES:
        raise ValueError(f"unknown mix {kind!r}: one of {', '.join(MIXES)}")
    return tuple(a for a in REALISTIC if not a.budgeted and (a.read or kind == "realistic"))


def left_out(kind: str = "realistic") -> list[str]:
    """The persona's tasks an arrival-rate run of ``kind`` does not send, by name."""
    sent = {a.name for a in arrival_mix(kind)}
    return [a.name for a in REALISTIC if a.name not in sent]
