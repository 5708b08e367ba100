"""The base of every authenticated Locust persona: its account, its token, and requests named by
route.

Logins and refreshes go through the user's own Locust client (named "POST /api/v1/login" and
"POST /api/v1/refresh"), so they show in Locust's stats and in our report. Tokens come from the one
`loadkit.contract.accounts.TokenManager`: kept in the shared cache file (worker processes and later
runs reuse them), refreshed before expiry, and logins paced by the login budget once one was refused
(a 429 is waited out and counts as no failure; a 500 is the limiter defect and does). A failed login
is a recorded failure naming the account, and every user on that account stops (`StopUser`) or,
after a 401, moves to another account (`locust_plugin.refusals`): none goes on unauthenticated.
"""

from __future__ import annotations

import contextlib
import logging
import time

from locust import FastHttpUser
from locust.exception import StopUser

from loadkit.contract.account_pool import AccountPool, UploadBudget
from loadkit.contract.accounts import SeedEnd, TokenManager, manager_for
from loadkit.contract.api import (
    LOGIN,
    ME,
    REFRESH,
    Account,
    LoginError,
    Token,
    auth_headers,
    endpoint,
    parse_token_response,
)
from loadkit.locust_plugin.refusals import Refusals
from loadkit.measure.send import error_kind, locust_message

logger = logging.getLogger("loadkit.locust")


class TransferFailed(Exception):
    """A request the HTTP client itself broke off (no answer, a body cut short), with a message
    the same for every request that broke alike: Locust groups its failures table by message, and
    geventhttpclient's names the concrete URL. The client's exception stays in ``original``, so
    the error kind still comes from its type (`loadkit.measure.send.error_kind`)."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(locust_message(original, error_kind(original)))
        self.original = original


class _Shared:
    """Per-process state shared by every user: accounts, tokens, upload budgets, failed logins."""

    pool: AccountPool | None = None
    tokens: TokenManager | None = None
    uploads = UploadBudget()
    failed_logins: dict[str, str] = {}
    refusals = Refusals()
    therapist_ids: dict[str, str | None] = {}  # email -> id from GET /api/v1/me (None: unknown)
    warned = False


SHARED = _Shared()


def configure_accounts(
    accounts: list[Account], manager: TokenManager | None = None, host: str = ""
) -> None:
    """Install this process's accounts and token manager (called from the init hook)."""
    SHARED.pool = AccountPool(accounts)
    SHARED.tokens = manager or manager_for(host or "http://unknown", None, sleep=time.sleep)
    SHARED.failed_logins = {}
    SHARED.refusals = Refusals()
    SHARED.therapist_ids = {}


def worker_share(runner: object, options: object) -> tuple[int, int]:
    """(index, count) of this process among the load generators, for sharding accounts."""
    index = max(0, int(getattr(runner, "worker_index", 0) or 0))
    count = (
        max(1, int(getattr(options, "expect_workers", 1) or 1))
        if hasattr(runner, "client_id")
        else 1
    )
    if type(runner).__name__ == "LocalRunner":
        count = 1
    return index, max(count, index + 1)


def _warn_overload() -> None:
    """The account pool's "more than 2 users per account" line, once per process."""
    if SHARED.pool is not None and SHARED.pool.overloaded and not SHARED.warned:
        SHARED.warned = True
        logger.warning(SHARED.pool.overloaded)


def _process_accounts() -> set[str]:
    """The emails this process's users may log in with (general and reserved)."""
    pool = SHARED.pool
    return set() if pool is None else {a.email for a in (*pool.general, *pool.reserved)}


def _response_detail(resp: object) -> str:
    """A short, secret-free description of a refused token request."""
    try:
        message = str(resp.json()["error"]["message"])[:120]
    except Exception:  # not the error envelope: name the client's error, if any
        error = getattr(resp, "error", None)
        message = type(error).__name__ if error else ""
    return message


class ApiUser(FastHttpUser):
    """An authenticated therapist persona; subclasses add tasks. ``account_kind``: general or
    reserved."""

    abstract = True
    account_kind = "general"
    account: Account

    def on_start(self) -> None:
        if SHARED.pool is None:
            raise StopUser()
        index, count = worker_share(self.environment.runner, self.environment.parsed_options)
        self.account = SHARED.pool.take(self.account_kind, index, count)
        with contextlib.suppress(StopUser):  # Locust logs a traceback for one from on_start:
            self.access_token()  # the user's first task stops it instead (failed_logins)

    def context(self) -> dict:
        """Carried with each request to the request hook: the persona that sent it."""
        return {"persona": type(self).__name__}

    def on_stop(self) -> None:
        if SHARED.pool is not None and hasattr(self, "account"):
            SHARED.pool.release(self.account)

    def access_token(self) -> str:
        """A valid access token for this user's account; an account refused with 401 is swapped
        for another of its kind (`refusals`); any other failed login stops the user."""
        for _ in range(len(_process_accounts()) + 1):
            if self.account.email not in SHARED.failed_logins:
                token = self._token_or_none(self.account)
                if token is not None:
                    _warn_overload()  # once an account works: not before a run that cannot start
                    return token.access_token
            if self.account.email not in SHARED.refusals.refused:
                raise StopUser()
            self._swap_account()
        raise StopUser()

    def _swap_account(self) -> None:
        """Take the next account of this user's kind that was not refused; none: stop."""
        index, count = worker_share(self.environment.runner, self.environment.parsed_options)
        SHARED.pool.release(self.account)
        for _ in range(len(_process_accounts())):
            self.account = SHARED.pool.take(self.account_kind, index, count)
            if self.account.email not in SHARED.refusals.refused:
                return
            SHARED.pool.release(self.account)
        SHARED.refusals.exhausted(
            self.account_kind, type(self).__name__, _process_accounts(), SHARED.failed_logins
        )
        raise StopUser()

    def token_of(self, account: Account) -> Token:
        """A valid token of ``account`` through this user's client; stops the user on failure."""
        token = self._token_or_none(account)
        if token is None:
            raise StopUser()
        return token

    def _token_or_none(self, account: Account) -> Token | None:
        """A valid token of ``account``, or None after a failed login (recorded, and a 401
        noted in `refusals`)."""
        try:
            token = SHARED.tokens.token(account, self._login, self._refresh)
        except (LoginError, SeedEnd) as exc:
            SHARED.failed_logins.setdefault(account.email, str(exc))
            SHARED.refusals.note(exc, _process_accounts(), SHARED.failed_logins)
            return None
        SHARED.refusals.worked(account.email)
        return token

    def _token_request(self, path: str, body: dict, account: Account):
        """(status, Token or None, detail); a 429 (waited out by the manager) is no failure."""
        sent = time.time()
        name = endpoint("POST", path)
        with self.client.post(path, json=body, name=name, catch_response=True) as resp:
            status = resp.status_code or None
            try:
                token = parse_token_response(resp.json(), sent) if status == 200 else None
            except Exception:  # a 200 without a usable token is a failed login too
                token = None
            detail = "" if token else _response_detail(resp)
            if token or status == 429:
                resp.success()
            else:
                resp.failure(str(LoginError(account.email, status, detail)))
        return status, token, detail

    def _login(self, account: Account):
        """One login; after a failure, users waiting on the same account do not try again."""
        if account.email in SHARED.failed_logins:
            return None, None, "an earlier login of this account failed"
        status, token, detail = self._token_request(LOGIN, account.login_body(), account)
        if token is None and status not in (401, 429, None) and status < 500:
            logger.error(
                "%s: stopping the users on this account", LoginError(account.email, status, detail)
            )
        return status, token, detail

    def _refresh(self, token: Token) -> Token | None:
        body = {"refresh_token": token.refresh_token}
        return self._token_request(REFRESH, body, self.account)[1]

    def therapist_id(self) -> str | None:
        """The account's own user id, from GET /api/v1/me once per account and process (None
        when /me does not answer one): the deployed service requires it as a new patient's
        ``therapist_id``, and the contract accepts the caller's own."""
        email = self.account.email
        if email not in SHARED.therapist_ids:
            resp = self.api("GET", ME, name=endpoint("GET", ME))
            try:
                SHARED.therapist_ids[email] = str(resp.json()["id"])
            except Exception:  # a failed request was recorded already
                return None  # not cached: the next patient asks again
        return SHARED.therapist_ids[email]

    def api(
        self,
        method: str,
        path: str,
        *,
        name: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: object,
    ) -> object:
        """One authenticated request named by its route template; a status outside ``expect`` fails
        it."""
        headers = {**auth_headers(self.access_token()), **kwargs.pop("headers", {})}
        with self.client.request(
            method, path, name=name, headers=headers, catch_response=True, **kwargs
        ) as resp:
            if resp.status_code == 401:
                SHARED.tokens.drop(self.account)
            broken = resp.request_meta.get("exception")  # what the client itself raised
            if broken is not None and (resp.status_code or 0) < 400:
                resp.failure(TransferFailed(broken))  # no answer, or a body cut short
            elif resp.status_code in expect:
                resp.success()
            else:
                shown = f"HTTP {resp.status_code}" if resp.status_code else "no response"
                resp.failure(f"{shown}, expected {'/'.join(map(str, expect))}")
        return resp
