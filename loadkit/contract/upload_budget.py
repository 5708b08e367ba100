"""The upload budget of the client address, shared by the tests of a run in a stated order.

Against a deployment that keys its limits by account (the contract), every test uploads on
accounts of its own and nothing here applies. Once refusals show the limits are keyed by client
address (`TokenManager.limit_shaped`: first logins of fresh accounts refused), the upload limit
(``upload_rate_limit.limit`` of the profile, 10/hour on the deployed service, refused uploads
counting too) is one budget for the whole run. It is then shared in ``PRIORITY`` order among the
run's tests that upload: each test in turn gets its whole need if it still fits, and a test that
does not fit is skipped with the reason ("the upload budget of this address is spent: 10 of 10
used by concurrent_uploads"), so no test is failed by what an earlier one spent. The tests that
probe the upload limit itself (they spend whatever is left) come last. The ledger is a file in the
run folder, so xdist workers and the runner's scenario processes share it.
"""

from __future__ import annotations

from pathlib import Path

from loadkit.contract.token_store import locked, read_json, write_json

PRIORITY = (
    "upload_trust_probe",
    "concurrent_uploads",
    "event_loop_probe",
    "limiter_semantics_probe[extract]",
    "access_control_probe",
    "rate_limit_enforcement[upload_limit]",
    "limiter_semantics_probe[upload]",
)
SPENDS_ALL = ("rate_limit_enforcement[upload_limit]", "limiter_semantics_probe[upload]")
ORDER_LINE = "upload budget order: " + " > ".join(PRIORITY)


class UploadLedger:
    """Uploads spent and planned in this run (a file in the run folder)."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def plan(self, needs: dict[str, int], *, scarce: bool, limit: int) -> None:
        """Register the run's upload needs (test name -> uploads) and whether the budget is
        the address's (scarce); tests planned by an earlier process keep their place."""
        with locked(self.file):
            data = read_json(self.file)
            used = data.get("used", {})
            data.setdefault("planned", {}).update({k: v for k, v in needs.items() if k not in used})
            data["scarce"] = bool(data.get("scarce")) or scarce
            data["limit"] = limit
            write_json(self.file, data)

    def mark_scarce(self) -> None:
        """Refusals showed the budget belongs to the address (after the run was planned)."""
        with locked(self.file):
            data = read_json(self.file)
            data["scarce"] = True
            write_json(self.file, data)

    def claim(self, test: str, need: int) -> str | None:
        """Spend ``need`` uploads for ``test``; None when granted, else the skip reason."""
        with locked(self.file):
            data = read_json(self.file)
            used: dict[str, int] = data.setdefault("used", {})
            if data.get("scarce"):
                reason = _refusal(data, test, need)
                if reason:
                    return reason
            used[test] = used.get(test, 0) + need
            data.setdefault("planned", {}).pop(test, None)
            write_json(self.file, data)
        return None


def _refusal(data: dict, test: str, need: int) -> str | None:
    """Why ``test`` cannot have ``need`` uploads of the address's budget (None: it can)."""
    limit = int(data.get("limit") or 10)
    used: dict[str, int] = data.get("used", {})
    spent = sum(used.values())
    left = limit - spent
    kept = _kept_for_others(data, test, left)
    wanted = 1 if test in SPENDS_ALL else need  # a limit test spends what is left, then is refused
    if wanted <= left - sum(kept.values()) and not (test in SPENDS_ALL and kept):
        return None
    if kept:
        names = ", ".join(f"{n} ({k})" for n, k in kept.items())
        return (
            f"the upload budget of this address ({limit} per window, keyed by address) is kept "
            f"for {names}, first in the {ORDER_LINE}; {spent} already used"
        )
    by = ", ".join(f"{n}" for n in used) or "earlier requests"
    return (
        f"the upload budget of this address is spent: {spent} of {limit} used by {by} "
        f"({test} needs {need})"
    )


def _kept_for_others(data: dict, test: str, left: int) -> dict[str, int]:
    """Uploads set aside for pending tests of higher priority (each whole, while they fit)."""
    rank = PRIORITY.index(test) if test in PRIORITY else len(PRIORITY)
    kept: dict[str, int] = {}
    for name in PRIORITY[:rank]:
        need = int(data.get("planned", {}).get(name, 0))
        if need and name not in SPENDS_ALL and need <= left - sum(kept.values()):
            kept[name] = need
    return kept
