"""Which account each simulated user of one load-generator process gets, and its upload budget.

Pure bookkeeping (no HTTP, no Locust). The rate limit is 100/minute per user, so the load is
spread: each process takes a disjoint share of the general accounts of
`loadkit.contract.accounts.Roles` (`loadkit.contract.api.shard` by worker index and count) and hands
them out round robin, one user per account before any account gets a second. More than
``MAX_USERS_PER_ACCOUNT`` users on one account means the limit, not the server, will shape the
figures: `take` says so once. The rate-limit prober draws from the reserved accounts (the same ones
the pytest side reserves) that nobody else touches. Uploads are budgeted per account below the
contract's 10/hour, so a long run never trips that limit.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

from loadkit.contract.accounts import Roles
from loadkit.contract.api import Account, AccountsError, shard

MAX_USERS_PER_ACCOUNT = 2
UPLOADS_PER_HOUR = 8  # the contract allows 10/hour per user: keep a margin


class AccountPool:
    """General accounts round robin, reserved ones for the prober; one instance per process."""

    def __init__(self, accounts: Sequence[Account]) -> None:
        roles = Roles.split(accounts)
        self.general = roles.general + list(roles.probe.values())  # Locust's prober needs no own
        self.reserved = roles.reserved or list(self.general[:1])  # too few: the prober shares one
        self.given = len(accounts)
        self._next = {"general": 0, "reserved": 0}
        self._users: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.overloaded: str | None = None

    def take(self, kind: str, worker_index: int = 0, worker_count: int = 1) -> Account:
        """The account for a new user of ``kind`` ("general" or "reserved") on worker
        index/count."""
        accounts = self._share(
            self.general if kind == "general" else self.reserved, worker_index, worker_count
        )
        with self._lock:
            account = accounts[self._next[kind] % len(accounts)]
            self._next[kind] += 1
            self._users[account.email] += 1
            if kind == "general" and self._users[account.email] > MAX_USERS_PER_ACCOUNT:
                self._note_overload(len(accounts))
        return account

    def release(self, account: Account) -> None:
        """A user stopped: its account has one user fewer."""
        with self._lock:
            self._users[account.email] = max(0, self._users[account.email] - 1)

    @staticmethod
    def _share(accounts: list[Account], index: int, count: int) -> list[Account]:
        """This worker's disjoint share; all of them when there are fewer accounts than workers."""
        try:
            return shard(accounts, index, count) if count > 1 else accounts
        except (AccountsError, ValueError):
            return [accounts[index % len(accounts)]]

    def _note_overload(self, pool_size: int) -> None:
        if self.overloaded is None:
            kept = len({a.email for a in self.reserved} - {a.email for a in self.general})
            self.overloaded = (
                f"more than {MAX_USERS_PER_ACCOUNT} users per account ({pool_size} of the "
                f"{self.given} accounts serve this process's users, {kept} are reserved for the "
                "rate-limit prober): the per-user rate limit (100/minute) will shape the "
                "figures, not the server"
            )


class UploadBudget:
    """At most ``per_hour`` uploads per account in any hour (moving window)."""

    def __init__(
        self, per_hour: int = UPLOADS_PER_HOUR, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_hour = per_hour
        self._clock = clock
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def try_take(self, account: Account) -> bool:
        """Spend one upload of the account's budget; False (nothing spent) when it is used up."""
        now = self._clock()
        with self._lock:
            sent = self._sent[account.email]
            while sent and sent[0] <= now - 3600:
                sent.popleft()
            if len(sent) >= self.per_hour:
                return False
            sent.append(now)
            return True
