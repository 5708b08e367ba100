"""Accounts and tokens for the pytest scenarios, over the engine's own HTTP client (asyncio).

`AccountPlan` holds this process's share of the accounts (split by pytest-xdist worker) and the
reserved accounts that only the rate-limit tests use; it hands out general accounts in rotation, so
consecutive tests spread over different accounts and no account nears the default limit.
`Authenticator` logs each account in once per process (tokens live in a process-wide
`api.TokenCache`), refreshes a token before it expires, and finds (or creates) a patient per
account. Messages never carry a password or token.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

from loadkit import api
from loadkit.http import HttpClient, Request

RESERVED_ACCOUNTS = 2  # [0]: default-limit test, [1]: upload-limit test
# Accounts of the defect probes (loadkit.probes), set aside beside the reserved ones when the list
# is long enough: each spends one limit that no other test may feel.
PROBE_ACCOUNTS = ("default", "refresh", "upload", "extract", "upload_trust")
MIN_GENERAL_ACCOUNTS = 8
TOKENS = api.TokenCache()
_PATIENTS: dict[str, str] = {}


class AccountsUnusable(Exception):
    """No usable account: one line naming the account and the status (a pre-flight error)."""


async def fetch(
    client: HttpClient, request: Request, *, timeout_s: float
) -> tuple[int | None, bytes, str]:
    """One request on a fresh connection: (status or None, body, error message)."""
    if client.prefix:
        request = Request(
            request.method,
            client.prefix + request.path,
            request.endpoint,
            request.headers,
            request.body,
            request.expect,
        )
    try:
        conn = await client.connect()
    except (OSError, TimeoutError) as exc:
        return None, b"", f"{type(exc).__name__}: {exc}"
    try:
        body = await conn.exchange(request, client.host_block, timeout_s)
        return conn.status, body, ""
    except (OSError, TimeoutError) as exc:
        return None, b"", f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass
class Authenticator:
    """Tokens and patients of accounts on one target, for one event loop."""

    client: HttpClient
    timeout_s: float = 30.0
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def token(self, account: api.Account) -> api.Token:
        """A valid token: cached, refreshed within a minute of expiry, else a fresh login."""
        token = TOKENS.get(account)
        if token is not None and not token.needs_refresh():
            return token
        async with self._locks.setdefault(account.email, asyncio.Lock()):
            token = TOKENS.get(account)
            if token is not None and not token.needs_refresh():
                return token
            token = (await self._refresh(token)) if token is not None else None
            token = token or await self._login(account)
            TOKENS.put(account, token)
            return token

    async def headers(self, account: api.Account) -> dict[str, str]:
        """The Authorization header of a valid token."""
        return api.auth_headers((await self.token(account)).access_token)

    async def _login(self, account: api.Account) -> api.Token:
        sent = time.monotonic()
        req = Request.json("POST", api.LOGIN, account.login_body())
        status, body, error = await fetch(self.client, req, timeout_s=self.timeout_s)
        if status != 200:
            raise api.LoginError(account.email, status, error or _error_code(body))
        try:
            return api.parse_token_response(_json(body), sent)
        except ValueError as exc:
            raise api.LoginError(account.email, status, str(exc)) from None

    async def _refresh(self, old: api.Token) -> api.Token | None:
        if not old.refresh_token:
            return None
        sent = time.monotonic()
        req = Request.json("POST", api.REFRESH, {"refresh_token": old.refresh_token})
        status, body, _ = await fetch(self.client, req, timeout_s=self.timeout_s)
        try:
            return api.parse_token_response(_json(body), sent) if status == 200 else None
        except ValueError:
            return None

    async def patient_id(self, account: api.Account) -> str:
        """One patient of the account's (listed, or created when it has none)."""
        if account.email in _PATIENTS:
            return _PATIENTS[account.email]
        headers = await self.headers(account)
        req = Request("GET", f"{api.PATIENTS}?limit=1", headers=headers)
        status, body, error = await fetch(self.client, req, timeout_s=self.timeout_s)
        patients = _json(body) if status == 200 else None
        if isinstance(patients, list) and patients and isinstance(patients[0], dict):
            _PATIENTS[account.email] = str(patients[0]["id"])
        else:
            _PATIENTS[account.email] = await self._create_patient(account, headers)
        return _PATIENTS[account.email]

    async def _create_patient(self, account: api.Account, headers: dict[str, str]) -> str:
        payload = api.patient_payload(random.Random(account.email))
        req = Request.json("POST", api.PATIENTS, payload, headers=headers)
        status, body, error = await fetch(self.client, req, timeout_s=self.timeout_s)
        created = _json(body)
        if status != 200 or not isinstance(created, dict) or "id" not in created:
            raise AccountsUnusable(
                f"{account.email} has no patient and creating one failed: "
                f"{error or f'HTTP {status}'}"
            )
        return str(created["id"])


def _error_code(body: bytes) -> str:
    """The error envelope's code, if the body has one (never the body itself: it may echo input)."""
    data = _json(body)
    error = data.get("error") if isinstance(data, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


@dataclass
class AccountPlan:
    """This process's general accounts (rotated between tests), the reserved rate-limit ones and
    the probes' own accounts (empty when the list is too short to spare them)."""

    general: list[api.Account]
    reserved: list[api.Account]
    cursor: int = 0
    probe: list[api.Account] = field(default_factory=list)

    @classmethod
    def build(cls, path: str | None, *, worker: int = 0, workers: int = 1) -> AccountPlan:
        """Accounts (--accounts > LOADTEST_ACCOUNTS > seed accounts), reserved ones set aside."""
        try:
            accounts = api.load_accounts(path)
            general, reserved = api.split_accounts(accounts, reserved=RESERVED_ACCOUNTS)
            probe: list[api.Account] = []
            if len(general) >= len(PROBE_ACCOUNTS) + MIN_GENERAL_ACCOUNTS:
                general, probe = api.split_accounts(general, reserved=len(PROBE_ACCOUNTS))
            return cls(api.shard(general, worker, workers), reserved, probe=probe)
        except api.AccountsError as exc:
            raise AccountsUnusable(str(exc)) from None

    def take(self, n: int) -> list[api.Account]:
        """The next ``n`` general accounts in rotation (distinct while n <= the share)."""
        n = max(1, n)
        picked = [self.general[(self.cursor + i) % len(self.general)] for i in range(n)]
        self.cursor = (self.cursor + n) % len(self.general)
        return picked

    def reserved_for(self, index: int) -> api.Account:
        """Reserved account ``index`` (0: default limit, 1: upload limit)."""
        return self.reserved[index]

    def probe_account(self, name: str) -> api.Account | None:
        """The probe ``name``'s own account (PROBE_ACCOUNTS), None when none could be spared."""
        if not self.probe:
            return None
        return self.probe[PROBE_ACCOUNTS.index(name)]


def accounts_needed(requests: int, *, limit: int, share: float = 0.5) -> int:
    """Accounts so that ``requests`` in one window use at most ``share`` of each one's limit."""
    per_account = max(1, int(limit * share))
    return max(1, -(-requests // per_account))


def check_login(target, account: api.Account) -> None:
    """Log one account in now (pre-flight): AccountsUnusable names the account and the status."""
    from loadkit import engine

    async def main() -> None:
        client = HttpClient(target.url, verify=target.verify)
        await Authenticator(client, timeout_s=target.timeout_s).token(account)

    try:
        engine.run(main())
    except api.LoginError as exc:
        raise AccountsUnusable(str(exc)) from None
