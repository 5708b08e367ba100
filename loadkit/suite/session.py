"""Accounts and tokens for the pytest scenarios, over `loadkit.contract.accounts` (asyncio side).

`AccountPlan` is this process's view of the `Roles`: general accounts handed out in rotation from a
cursor shared by every process of the run (a file in the run folder, so pytest-xdist workers and the
scenario processes of the runner's ``all`` each take different accounts, with no fixed shares that
a short list cannot fill), plus the reserved and probe accounts. `Authenticator` wraps the
`TokenManager` (logins on a thread, within the login budget) and does the setup requests a scenario
needs (/me, a patient): `setup_fetch` waits out a 429 (its ``Retry-After``, in all at most
``SETUP_RETRY_MAX_S``) and retries, and a refusal past that, a 5xx or no answer raises `SetupError`,
one line naming the route and status, which fails that test alone. Messages never carry a secret.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from loadkit.contract import api
from loadkit.contract.accounts import Roles, SeedEnd, TokenManager
from loadkit.contract.token_store import locked, read_json, write_json
from loadkit.measure.http import HttpClient, Request, ssl_context

SETUP_RETRY_MAX_S = 90.0
ADDRESS_KEYED_POOL = 3  # general accounts kept once limits are keyed by address (access probe: 2)
PROBE_ACCOUNTS = ("default", "refresh", "upload", "extract", "upload_trust")
_PATIENTS: dict[str, str] = {}
_ME: dict[str, dict] = {}


class AccountsUnusable(Exception):
    """No usable account: one line naming the account and the status (a pre-flight error)."""


class SetupError(Exception):
    """A setup request failed: one line naming the route and status (fails that test alone)."""


async def fetch(
    client: HttpClient, request: Request, *, timeout_s: float
) -> tuple[int | None, bytes, str]:
    """One request on a fresh connection: (status or None, body, error message)."""
    status, body, error, _ = await fetch_full(client, request, timeout_s=timeout_s)
    return status, body, error


async def fetch_full(client: HttpClient, request: Request, *, timeout_s: float):
    """(status or None, body, error message, headers) of one request on a fresh connection."""
    if client.prefix:
        request = Request(request.method, client.prefix + request.path, request.endpoint,
                          request.headers, request.body, request.expect)  # fmt: skip
    try:
        conn = await client.connect()
    except (OSError, TimeoutError) as exc:
        return None, b"", f"{type(exc).__name__}: {exc}", {}
    try:
        body = await conn.exchange(request, client.host_block, timeout_s)
        return conn.status, body, "", dict(conn.headers or {})
    except (OSError, TimeoutError) as exc:
        return None, b"", f"{type(exc).__name__}: {exc}", {}
    finally:
        conn.close()


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_code(body: bytes) -> str:
    """The error envelope's code, if the body has one (never the body itself: it may echo input)."""
    data = _json(body)
    error = data.get("error") if isinstance(data, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def _retry_after(headers: dict[str, str]) -> float | None:
    value = (headers.get("retry-after") or "").strip()
    return min(float(value), SETUP_RETRY_MAX_S) if value.isdigit() else None


def route_of(request: Request) -> str:
    """ "GET /api/patients/" for a request (its endpoint, else its path without the query)."""
    return request.endpoint or f"{request.method} {request.path.split('?')[0]}"


async def setup_fetch(client: HttpClient, request: Request, *, timeout_s: float):
    """A setup request that survives refusals: (status, body); SetupError when it fails.

    A 429 is waited out (its Retry-After, at least a second) and retried while the waits stay
    within SETUP_RETRY_MAX_S; a 429 past that, a 5xx or no answer raises one line.
    """
    waited = 0.0
    while True:
        status, body, error, headers = await fetch_full(client, request, timeout_s=timeout_s)
        wait = max(1.0, _retry_after(headers) or SETUP_RETRY_MAX_S / 6)
        if status == 429 and waited + wait <= SETUP_RETRY_MAX_S:
            await asyncio.sleep(wait)
            waited += wait
            continue
        if status is None:
            raise SetupError(f"setup {route_of(request)} got no response ({error})")
        if status == 429 or status >= 500:
            again = f" after {waited:.0f} s of waiting out refusals" if status == 429 else ""
            code = f" ({_error_code(body)})" if _error_code(body) else ""
            raise SetupError(f"setup {route_of(request)} answered {status}{again}{code}")
        return status, body


def http_login(url: str, verify: bool | str, timeout_s: float):
    """A blocking login for `TokenManager`: (status, Token or None, detail)."""

    def post(path: str, payload: dict) -> tuple[int | None, bytes]:
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if url.startswith("https"):
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context(verify)))
        req = urllib.request.Request(url + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.build_opener(*handlers).open(req, timeout=timeout_s) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, ValueError):
            return None, b""

    def login(account: api.Account):
        sent = time.time()
        status, body = post(api.LOGIN, account.login_body())
        try:
            return status, api.parse_token_response(_json(body), sent), ""
        except ValueError:
            detail = _error_code(body) if status is not None else "no response"
            return status, None, detail

    def refresh(old: api.Token) -> api.Token | None:
        sent = time.time()
        status, body = post(api.REFRESH, {"refresh_token": old.refresh_token})
        try:
            return api.parse_token_response(_json(body), sent) if status == 200 else None
        except ValueError:
            return None

    return login, refresh


@dataclass
class Authenticator:
    """Tokens, /me and a patient of accounts on one target, for one event loop."""

    client: HttpClient
    manager: TokenManager
    timeout_s: float = 30.0
    _checked: set[str] = field(default_factory=set)

    async def token(self, account: api.Account) -> api.Token:
        """A valid token (a login, when needed, runs on a thread within the login budget)."""
        try:
            return await asyncio.to_thread(self.manager.token, account)
        except api.LoginError as exc:
            raise SetupError(str(exc)) from None

    async def headers(self, account: api.Account) -> dict[str, str]:
        """The Authorization header of a valid token (a cached one is checked once with /me)."""
        token = await self.token(account)
        if account.email not in self._checked:
            self._checked.add(account.email)
            status, body = await self._me(token)
            if status == 401:  # a cached token the server no longer takes: log in again
                self.manager.drop(account, token)
                token = await self.token(account)
                status, body = await self._me(token)
            if status == 200 and isinstance(_json(body), dict):
                _ME[account.email] = _json(body)
        return api.auth_headers(token.access_token)

    async def _me(self, token: api.Token) -> tuple[int, bytes]:
        req = Request("GET", api.ME, headers=api.auth_headers(token.access_token))
        return await setup_fetch(self.client, req, timeout_s=self.timeout_s)

    async def me(self, account: api.Account) -> dict:
        """GET /api/v1/me of the account (cached; {} when the target does not answer it)."""
        await self.headers(account)
        return _ME.get(account.email, {})

    async def patient_id(self, account: api.Account) -> str:
        """One patient of the account's (listed, or created with its therapist_id)."""
        if account.email in _PATIENTS:
            return _PATIENTS[account.email]
        headers, me = await self.headers(account), await self.me(account)
        query = f"?therapist_id={me.get('id')}&limit=1" if me.get("id") else "?limit=1"
        req = Request("GET", api.PATIENTS + query, api.endpoint("GET", api.PATIENTS), headers)
        status, body = await setup_fetch(self.client, req, timeout_s=self.timeout_s)
        patients = _json(body) if status == 200 else None
        if isinstance(patients, list) and patients and isinstance(patients[0], dict):
            _PATIENTS[account.email] = str(patients[0]["id"])
        else:
            _PATIENTS[account.email] = await self._create_patient(account, headers, me)
        return _PATIENTS[account.email]

    async def _create_patient(self, account: api.Account, headers, me: dict) -> str:
        payload = api.patient_payload(random.Random(account.email))
        if me.get("id"):
            payload["therapist_id"] = str(me["id"])
        req = Request.json("POST", api.PATIENTS, payload, headers=headers)
        req = Request(req.method, req.path, api.endpoint("POST", api.PATIENTS), req.headers,
                      req.body, req.expect)  # fmt: skip
        status, body = await setup_fetch(self.client, req, timeout_s=self.timeout_s)
        created = _json(body)
        if status not in (200, 201) or not isinstance(created, dict) or "id" not in created:
            raise SetupError(
                f"setup POST {api.PATIENTS} answered {status}: {account.email} has no patient"
                + (f" ({_error_code(body)})" if _error_code(body) else "")
            )
        return str(created["id"])


@dataclass
class AccountPlan:
    """This process's accounts: general ones in a run-wide rotation, reserved and probe ones."""

    roles: Roles
    cursor_file: Path | None = None
    manager: TokenManager | None = None
    _cursor: int = 0

    @property
    def general(self) -> list[api.Account]:
        """The general accounts that exist on the target; once the limits showed they are keyed
        by address (spreading over accounts then buys nothing), those already holding a token."""
        end = self.manager.seed_end() if self.manager is not None else None
        pool = [a for a in self.roles.general if self._exists(a, end)]
        if self.address_keyed():
            held = [a for a in pool if self.manager.cached(a) is not None]
            if len(held) >= ADDRESS_KEYED_POOL:
                return held
        return pool

    def address_keyed(self) -> bool:
        """Whether login refusals showed that the target keys its limits by client address."""
        m = self.manager
        return m is not None and (m.limit_shaped() is not None or m.budget.paced())

    def _exists(self, account: api.Account, end: int | None = None) -> bool:
        from loadkit.contract.accounts import seed_number

        if end is None and self.manager is not None:
            end = self.manager.seed_end()
        n = seed_number(account.email)
        return end is None or n is None or n < end

    def _advance(self, n: int) -> int:
        """The rotation's position before taking ``n`` (shared through the cursor file)."""
        if self.cursor_file is None:
            start, self._cursor = self._cursor, self._cursor + n
            return start
        with locked(self.cursor_file):
            start = int(read_json(self.cursor_file).get("cursor", 0))
            write_json(self.cursor_file, {"cursor": start + n})
        return start

    def peek(self, n: int) -> list[api.Account]:
        """The next ``n`` general accounts, without taking them (to log them in ahead)."""
        start = int(read_json(self.cursor_file).get("cursor", 0)) if self.cursor_file else 0
        pool = self.general
        return [pool[(start + i) % len(pool)] for i in range(min(n, len(pool)))] if pool else []

    def take(self, n: int) -> list[api.Account]:
        """The next ``n`` general accounts in rotation (distinct while n <= the pool)."""
        pool = self.general
        if not pool:
            raise SetupError("no general account exists on the target")
        start = self._advance(max(1, n))
        return [pool[(start + i) % len(pool)] for i in range(max(1, n))]

    def reserved_for(self, index: int) -> api.Account | None:
        """Reserved account ``index`` (0: default limit, 1: upload limit), None if too few."""
        reserved = self.roles.reserved
        return reserved[index] if index < len(reserved) else None

    def probe_account(self, name: str) -> api.Account | None:
        """The probe ``name``'s own account, None when none could be spared."""
        return self.roles.probe.get(name)


async def with_seed_fallback(plan: AccountPlan, auth: Authenticator, accounts: list) -> list:
    """Log the accounts in; accounts past the end of the seed list are replaced from the pool."""
    for _ in range(3):
        try:
            await asyncio.gather(*(auth.token(a) for a in accounts))
            return accounts
        except SeedEnd:
            accounts = [a if plan._exists(a) else plan.take(1)[0] for a in accounts]
    raise SetupError(f"the target lacks the seed accounts ({plan.roles.describe()})")


def accounts_needed(requests: int, *, limit: int, share: float = 0.5) -> int:
    """Accounts so that ``requests`` in one window use at most ``share`` of each one's limit."""
    per_account = max(1, int(limit * share))
    return max(1, -(-requests // per_account))


def build_plan(target, *, accounts: str | None, tokens: str | None, rate: str | None,
               cursor_file: Path | None) -> AccountPlan:  # fmt: skip
    """The plan of this process: accounts split into roles, and the target's token manager."""
    from loadkit.contract.accounts import manager_for, source_accounts
    from loadkit.contract.token_store import StoreError

    login, refresh = http_login(target.url, target.verify, target.timeout_s)
    try:
        manager = manager_for(target.url, login, refresh, rate=rate)
        found, from_default = source_accounts(accounts, tokens, manager.store)
        manager.seeds_from_default = from_default
        return AccountPlan(Roles.split(found), cursor_file, manager)
    except (api.AccountsError, StoreError) as exc:
        raise AccountsUnusable(str(exc)) from None


def prelogin(plan: AccountPlan, accounts: list[api.Account], *, workers: int = 8) -> None:
    """Log in ``accounts`` now (the first alone: a wrong password ends the run, exit 2)."""
    from concurrent.futures import ThreadPoolExecutor

    manager = plan.manager
    todo = [a for a in dict.fromkeys(accounts) if manager.cached(a) is None]
    if not todo:
        return
    manager.pending = len(todo)
    rate = manager.budget.rate
    if manager.budget.paced() and len(todo) > 1:
        minutes = max(1, round(rate.seconds_for(len(todo)) / 60))
        manager.say(f"logging in {len(todo)} accounts at {rate}: about {minutes} min")
    try:
        manager.token(todo[0])
    except api.LoginError as exc:
        raise AccountsUnusable(str(exc)) from None
    except SeedEnd:
        pass

    general = set(plan.roles.general)
    refused: list[api.LoginError] = []

    def one(account: api.Account) -> None:
        if account in general and plan.address_keyed() and _held(plan) >= ADDRESS_KEYED_POOL:
            manager.pending = max(0, manager.pending - 1)
            return  # keyed by address: a few general accounts do, each login costs a slot
        try:
            manager.token(account)
        except SeedEnd:
            pass
        except api.LoginError as exc:  # a wrong password ends the run; else its test says so
            if exc.status in (401, 403):
                refused.append(exc)

    roles_first = sorted(todo[1:], key=lambda a: a in general)
    manager.estimate = lambda: (
        sum(manager.cached(a) is None for a in todo if a not in general)
        + max(0, min(sum(a in general for a in todo), ADDRESS_KEYED_POOL) - _held(plan))
    )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, roles_first))
    manager.pending, manager.estimate = 0, None
    if refused:
        raise AccountsUnusable(str(refused[0]))


def _held(plan: AccountPlan) -> int:
    return sum(plan.manager.cached(a) is not None for a in plan.roles.general)


def needed_accounts(plan: AccountPlan, general: int, roles: list[str]) -> list[api.Account]:
    """The accounts a run of tests will take: the next ``general`` in rotation and the roles."""
    picked = plan.peek(general)
    for role in roles:
        kind, _, index = role.partition(":")
        account = plan.reserved_for(int(index)) if kind == "reserved" else plan.probe_account(role)
        if account is not None:
            picked.append(account)
    return picked
