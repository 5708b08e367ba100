"""The base of every authenticated Locust persona: its account, its token, and requests named by
route.

Logins and refreshes go through the user's own Locust client (named "POST /api/v1/login" and
"POST /api/v1/refresh"), so they show in Locust's stats and in our report. Tokens come from the one
`loadkit.contract.accounts.TokenManager`: kept in the shared cache file (worker processes and later
runs reuse them), refreshed before expiry, and logins paced by the login budget once one was refused
(a 429 is waited out and counts as no failure; a 500 is the limiter defect and does). A failed login
is a recorded failure naming the account, and every user on that account stops (`StopUser`): none
goes on unauthenticated.
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
        if SHARED.pool.overloaded and not SHARED.warned:
            SHARED.warned = True
            logger.warning(SHARED.pool.overloaded)
        with contextlib.suppress(StopUser):  # Locust logs a traceback for one from on_start:
            self.access_token()  # the user's first task stops it instead (failed_logins)

    def context(self) -> dict:
        """Carried with each request to the request hook: the persona that sent it."""
        return {"persona": type(self).__name__}

    def on_stop(self) -> None:
        if SHARED.pool is not None and hasattr(self, "account"):
            SHARED.pool.release(self.account)

    def access_token(self) -> str:
        """A valid access token for this user's account; stops the user when login fails."""
        failed = SHARED.failed_logins.get(self.account.email)
        if failed:
            raise StopUser()
        return self.token_of(self.account).access_token

    def token_of(self, account: Account) -> Token:
        """A valid token of ``account`` through this user's client; stops the user on failure."""
        try:
            return SHARED.tokens.token(account, self._login, self._refresh)
        except (LoginError, SeedEnd) as exc:
            SHARED.failed_logins.setdefault(account.email, str(exc))
            raise StopUser() from None

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
        if token is None and status not in (429, None) and status < 500:
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
