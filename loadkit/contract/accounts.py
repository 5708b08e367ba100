"""The one account and token manager of every tool: which account does what, and its token.

`Roles` splits the account list once, for pytest and Locust alike: the first ``RESERVED`` accounts
belong to the rate-limit scenarios (nothing else touches them), the next ones to the defect probes
(when the list is long enough to spare them), the rest are general. Seed accounts are numbered from
001, so the reserved and probe ones are the lowest numbers: they exist on a backend seeded with
fewer accounts than the suite assumes, and a 401 on a higher seed account marks the end of the seed
list (`TokenManager` then drops it and every account after it) instead of ending the run.

`TokenManager` gives a valid token for an account: from memory or the shared cache file
(`loadkit.contract.token_store`), refreshed before expiry under a cross-process lock (refresh tokens
rotate), else a login within the address's `LoginBudget`. Logins go at full speed until the first
refusal (a 429, or a 5xx once a login had succeeded); from then on each login waits for its slot,
and the manager says so once. A 5xx refusal is also recorded as the ``limiter-500`` defect. HTTP is
the caller's (``login``/``refresh`` callables), so Locust's client and the pytest side share it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadkit.contract import api, jwt
from loadkit.contract.token_store import LoginBudget, TokenStore, parse_rate

logger = logging.getLogger("loadkit.contract.accounts")
RESERVED = 2  # [0]: the default-limit scenario, [1]: the upload-limit one
PROBE_ROLES = ("default", "refresh", "upload", "extract", "upload_trust")
MIN_GENERAL = 3
MAX_REFUSALS = 8  # refusals of one login before it gives up
REFRESH_MARGIN_S = 120.0  # refresh this long before expiry, or REFRESH_FRACTION of a short lifetime
REFRESH_FRACTION = 0.1
# A refused refresh (e.g. the refresh limit, when many tokens expire together) keeps the
# token while more than KEEP_FRACTION of the margin is left, and is retried after RETRY_FRACTION.
KEEP_FRACTION = 0.25
RETRY_FRACTION = 0.125
CONCURRENT_LOGIN_WAIT_S = 1.5
_SEED = re.compile(r"loadtest-(\d{3,})@example\.com")


@dataclass
class Roles:
    """The account list, split once: reserved (rate-limit), probe (by role), general."""

    reserved: list[api.Account]
    probe: dict[str, api.Account]
    general: list[api.Account]

    @classmethod
    def split(cls, accounts: Sequence[api.Account]) -> Roles:
        """Reserved first, then probe accounts when at least MIN_GENERAL stay general."""
        accounts = list(accounts)
        if not accounts:
            raise api.AccountsError("no account to log in with")
        reserved = accounts[:RESERVED] if len(accounts) > RESERVED else []
        rest = accounts[len(reserved) :]
        probe: dict[str, api.Account] = {}
        if len(rest) >= len(PROBE_ROLES) + MIN_GENERAL:
            probe = dict(zip(PROBE_ROLES, rest, strict=False))
            rest = rest[len(PROBE_ROLES) :]
        return cls(reserved, probe, rest)

    def describe(self) -> str:
        """ "12 accounts: 2 reserved, 5 probe, 5 general"."""
        n = len(self.reserved) + len(self.probe) + len(self.general)
        return (
            f"{n} accounts: {len(self.reserved)} reserved, {len(self.probe)} probe, "
            f"{len(self.general)} general"
        )


def lifetime_s(token: api.Token) -> float | None:
    """The access token's lifetime: its expires_in, else its JWT's exp - iat; None when unknown."""
    if token.lifetime_s is not None:
        return token.lifetime_s
    claims = jwt.claims(token.access_token) or {}
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp > iat:
        return float(exp - iat)
    return None


def refresh_margin_s(token: api.Token) -> float:
    """How long before expiry to refresh: REFRESH_MARGIN_S, or 10% of a shorter lifetime (a 60 s
    token refreshes 6 s before it expires, not on every request)."""
    life = lifetime_s(token)
    return REFRESH_MARGIN_S if life is None else min(REFRESH_MARGIN_S, REFRESH_FRACTION * life)


def seed_number(email: str) -> int | None:
    """The number of a seed account (loadtest-NNN@example.com), else None."""
    m = _SEED.fullmatch(email)
    return int(m.group(1)) if m else None


class SeedEnd(Exception):
    """A seed account does not exist on the target: the seed list ends before it."""

    def __init__(self, account: api.Account) -> None:
        self.account = account
        super().__init__(f"{account.email} does not exist on the target")


def _say(message: str) -> None:
    """One progress line on the terminal (pytest captures sys.stderr; not sys.__stderr__)."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"loadtest: {message}\n")
    stream.flush()


@dataclass
class Event:
    """A login refusal, for the report (never a token)."""

    at: float
    status: int | None
    email: str
    first_try: bool
    defect: str | None = None


@dataclass
class TokenManager:
    """Tokens of accounts on one target, shared by threads, processes and runs."""

    store: TokenStore
    budget: LoginBudget
    login: Callable[[api.Account], tuple[int | None, api.Token | None, str]] | None
    refresh: Callable[[api.Token], api.Token | None] | None = None
    sleep: Callable[[float], object] = time.sleep
    say: Callable[[str], None] = _say
    seeds_from_default: bool = False
    events: list[Event] = field(default_factory=list)
    waited_s: float = 0.0
    reported: int = 0
    estimate: Callable[[], int] | None = None  # logins still to come, once pacing starts
    logins: int = 0
    refreshes: int = 0
    pending: int = 0  # logins still expected (for the progress line)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _answered: bool = False
    _retry_at: dict[str, float] = field(default_factory=dict)  # email -> next refresh attempt
    _waiting_until: float = 0.0
    missing_from: int | None = None  # the first seed number the target does not have

    def _lock(self, email: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(email, threading.Lock())

    def cached(self, account: api.Account) -> api.Token | None:
        """A token of the account that is valid for a while yet (no request)."""
        token = self.store.get(account.email)
        return token if token is not None and not token.needs_refresh(margin_s=0) else None

    def token(self, account: api.Account, login=None, refresh=None) -> api.Token:
        """A valid token: cached, refreshed near expiry, else a login within the budget.

        ``login``/``refresh`` replace the manager's own for this call (a Locust user's client)."""
        token = self.store.get(account.email)
        if token is not None and self._good(account, token):
            self._answered = True  # a login with this password was answered before
            return token
        with self._lock(account.email):
            token = self.store.get(account.email)
            if token is not None and self._good(account, token):
                return token
            renewed = self._refreshed(account, token, refresh) if token is not None else None
            if renewed is None and token is not None and self._keep(account, token):
                return token
            token = renewed or self._logged_in(account, login or self.login)
            self.store.put(account.email, token, self.sleep)
            return token

    def _good(self, account: api.Account, token: api.Token) -> bool:
        """Outside the refresh margin, or inside it while a refused refresh waits to be retried."""
        margin = refresh_margin_s(token)
        if not token.needs_refresh(margin_s=margin):
            return True
        waiting = time.time() < self._retry_at.get(account.email, 0.0)
        return waiting and not token.needs_refresh(margin_s=margin * KEEP_FRACTION)

    def _keep(self, account: api.Account, token: api.Token) -> bool:
        """After a refused refresh: keep a token that has a while left, and retry later."""
        margin = refresh_margin_s(token)
        if not token.refresh_token or token.needs_refresh(margin_s=margin * KEEP_FRACTION):
            return False
        self._retry_at[account.email] = time.time() + margin * RETRY_FRACTION
        return True

    def drop(self, account: api.Account, token: api.Token | None = None) -> None:
        """A token was answered 401: forget it; the next call logs in again."""
        self.store.drop(account.email, token, self.sleep)

    def _refreshed(self, account: api.Account, old: api.Token, refresh=None) -> api.Token | None:
        refresh = refresh or self.refresh
        if not old.refresh_token or refresh is None:
            return None
        with self.store.refreshing(account.email, self.sleep):
            newer = self.store.get(account.email)  # another process may have refreshed it
            if newer is not None and not newer.needs_refresh(margin_s=refresh_margin_s(newer)):
                return newer
            try:
                token = refresh(newer or old)
            except Exception:  # a refused refresh falls back to logging in again
                token = None
        if token is not None:
            with self._guard:
                self.refreshes += 1
        return token

    def _logged_in(self, account: api.Account, login: Callable) -> api.Token:
        if not account.password:
            raise api.LoginError(account.email, None, "its pre-issued token expired (no password)")
        n = seed_number(account.email)
        end = self.seed_end()
        if end is not None and n is not None and n >= end:
            raise SeedEnd(account)
        first = True
        for _ in range(MAX_REFUSALS + 1):
            self._wait_for_slot()
            status, token, detail = login(account)
            if token is not None:
                if not self._answered:
                    self.budget.note_answered(self.sleep)
                self._answered = True
                with self._guard:
                    self.logins += 1
                    self.pending = max(0, self.pending - 1)
                return token
            if not self._refusal(account, status, first):
                self._not_refused(account, status, detail)
            first = False
        raise api.LoginError(account.email, status, f"still refused after {MAX_REFUSALS} waits")

    def seed_end(self) -> int | None:
        """The first seed number the target lacks (found by this or another process)."""
        if self.seeds_from_default and self.missing_from is None:
            self.missing_from = self.budget.seed_end()
        return self.missing_from

    def _not_refused(self, account: api.Account, status: int | None, detail: str) -> None:
        n = seed_number(account.email)
        answered = self._answered or self.budget.answered()
        if status == 401 and self.seeds_from_default and answered and n and n > 1:
            with self._guard:
                self.missing_from = min(self.missing_from or n, n)
            self.budget.note_seed_end(n, self.sleep)
            raise SeedEnd(account)
        raise api.LoginError(account.email, status, detail)

    def _wait_for_slot(self) -> None:
        wait = self.budget.reserve(self.sleep)
        if wait > 0:
            now = time.time()
            with self._guard:  # wall time spent waiting (threads wait side by side)
                start = max(now, self._waiting_until)
                self.waited_s += max(0.0, now + wait - start)
                self._waiting_until = max(self._waiting_until, now + wait)
            self.sleep(wait)

    def _refusal(self, account: api.Account, status: int | None, first: bool) -> bool:
        """Whether ``status`` is the limiter refusing (then pace from now on and retry)."""
        if status is not None and status >= 500 and not self._answered:
            self.sleep(CONCURRENT_LOGIN_WAIT_S)  # logins sent alongside may have been answered
        answered = self._answered or self.budget.paced() or self.budget.answered()
        limited = status == 429 or (status is not None and status >= 500 and answered)
        if not limited:
            return False
        defect = "limiter-500" if status != 429 else None
        self.events.append(Event(time.time(), status, account.email, first, defect))
        if self.budget.refused(self.sleep):
            self._announce(status)
        return True

    def _announce(self, status: int | None) -> None:
        rate = self.budget.rate
        line = f"the login budget is reached (POST {api.LOGIN} answered {status})"
        if self.estimate is not None:
            self.pending = self.estimate()
        if self.pending > 1:
            minutes = max(1, round((rate.period_s + rate.seconds_for(self.pending)) / 60))
            line += f": logging in {self.pending} accounts at {rate}: about {minutes} min"
        else:
            line += f": logins wait for the budget of {rate}"
        self.say(line)

    def unreported(self) -> list[Event]:
        """The refusals met since the last call (each goes into one report)."""
        new, self.reported = self.events[self.reported :], len(self.events)
        return new

    def defects(self, events: list[Event] | None = None) -> list[dict]:
        """The limiter defects the logins met (one record per id)."""
        bad = [e for e in (self.events if events is None else events) if e.defect]
        if not bad:
            return []
        return [
            {
                "id": "limiter-500",
                "route": api.endpoint("POST", api.LOGIN),
                "message": (
                    f"past the login limit the service answered {bad[0].status} instead of 429 "
                    "with Retry-After"
                ),
                "evidence": {"refusals": len(bad), "statuses": sorted({e.status for e in bad})},
            }
        ]

    def limit_shaped(self) -> str | None:
        """One line when login refusals show the limit is keyed by address, else None."""
        fresh = [e for e in self.events if e.first_try]
        if not fresh:
            return None
        what = (
            "the first login of an account that had sent nothing was"
            if len(fresh) == 1
            else f"{len(fresh)} first logins of accounts that had sent nothing were"
        )
        return (
            f"{what} refused: the "
            "deployment keys its login limit by client address, so one machine running the "
            "suite shares one budget and the limit, not the server, shaped the login figures"
        )


def manager_for(
    target: str,
    login: Callable,
    refresh: Callable | None = None,
    *,
    rate: str | None = None,
    sleep: Callable[[float], object] = time.sleep,
    seeds_from_default: bool = False,
) -> TokenManager:
    """The manager of one target: --login-rate (else LOADTEST_LOGIN_RATE, else 5/minute)."""
    chosen = parse_rate(rate or os.environ.get("LOADTEST_LOGIN_RATE"))
    return TokenManager(
        TokenStore(target),
        LoginBudget(target, chosen),
        login,
        refresh,
        sleep=sleep,
        seeds_from_default=seeds_from_default,
    )


def load_tokens(path: str, store: TokenStore) -> list[api.Account]:
    """Accounts of a --tokens FILE (JSON list of {email, access_token, refresh_token?,
    expires_at? (epoch s)}); their tokens go into ``store``. No password: no login."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise api.AccountsError(f"{path}: cannot read the tokens file ({exc})") from None
    if not isinstance(data, list) or not data:
        raise api.AccountsError(f"{path}: expected a non-empty JSON list of tokens")
    accounts = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("email", "access_token")
        ):
            raise api.AccountsError(f"{path}: entry {i} needs 'email' and 'access_token'")
        expires = item.get("expires_at") or _jwt_expiry(item["access_token"]) or time.time() + 1800
        token = api.Token(item["access_token"], item.get("refresh_token"), float(expires))
        store.put(item["email"], token)
        accounts.append(api.Account(item["email"], ""))
    return accounts


def _jwt_expiry(token: str) -> float | None:
    exp = (jwt.claims(token) or {}).get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def source_accounts(accounts_path: str | None, tokens_path: str | None, store: TokenStore):
    """(accounts, from the default seeds?): --tokens, else --accounts, LOADTEST_ACCOUNTS, seeds."""
    tokens_path = tokens_path or os.environ.get("LOADTEST_TOKENS", "").strip() or None
    if tokens_path:
        return load_tokens(tokens_path, store), False
    from_default = not (accounts_path or os.environ.get("LOADTEST_ACCOUNTS", "").strip())
    return api.load_accounts(accounts_path), from_default
