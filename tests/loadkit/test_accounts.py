"""Tests of the account and token manager (loadkit.contract.accounts, loadkit.contract.token_store)
over real HTTP.

A tiny token server on loopback counts logins and refreshes, rotates refresh tokens like the
contract says, and can limit logins per client address (answering 429 or, like the deployed
service, 500), so the login budget is checked against a limiter that really refuses.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadkit.contract import accounts as accounts_module
from loadkit.contract import api
from loadkit.contract.accounts import Roles, SeedEnd, TokenManager, manager_for, seed_number
from loadkit.contract.token_store import LoginBudget, StoreError, TokenStore, parse_rate
from loadkit.suite.session import http_login

PASSWORD = "Right@Password1"


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TokenHandler)
        self.lock = threading.Lock()
        self.logins: dict[str, int] = {}
        self.sent: list[float] = []  # every login that reached the limiter
        self.refreshes = 0
        self.valid_refresh: set[str] = set()
        self.refuse_refresh = False
        self.expires_in = 1800
        self.limit: tuple[int, float, int] | None = None  # (count, window_s, refusal status)
        self.allowed: deque[float] = deque()
        self.known = lambda email: True
        self.serial = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def issue(self) -> dict:
        with self.lock:
            self.serial += 1
            refresh = f"refresh-{self.serial}"
            self.valid_refresh.add(refresh)
        return {"access_token": f"access-{self.serial}", "refresh_token": refresh,
                "token_type": "bearer", "expires_in": self.expires_in}  # fmt: skip

    def over_limit(self) -> int | None:
        """Count one login against the address's moving window; the refusal status, if refused."""
        if self.limit is None:
            return None
        count, window, status = self.limit
        now = time.monotonic()
        with self.lock:
            self.sent.append(now)
            while self.allowed and self.allowed[0] <= now - window:
                self.allowed.popleft()
            if len(self.allowed) >= count:
                return status
            self.allowed.append(now)
        return None


class TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        if self.path == api.LOGIN:
            refused = srv.over_limit()
            if refused:
                return self.reply(refused, {"error": {"code": "rate_limited"}})
            time.sleep(0.02)  # login is slow by design (password hashing)
            if body["password"] != PASSWORD or not srv.known(body["email"]):
                return self.reply(401, {"error": {"code": "unauthorized"}})
            with srv.lock:
                srv.logins[body["email"]] = srv.logins.get(body["email"], 0) + 1
            return self.reply(200, srv.issue())
        with srv.lock:
            ok = not srv.refuse_refresh and body["refresh_token"] in srv.valid_refresh
            srv.valid_refresh.discard(body["refresh_token"])
            srv.refreshes += ok
        return self.reply(200, srv.issue()) if ok else self.reply(401, {"error": {}})


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOADTEST_TOKEN_CACHE", str(tmp_path / "cache" / "tokens.json"))
    monkeypatch.delenv("LOADTEST_NO_TOKEN_CACHE", raising=False)
    monkeypatch.delenv("LOADTEST_LOGIN_RATE", raising=False)
    return tmp_path / "cache" / "tokens.json"


def manager(server: TokenServer, rate: str = "5/minute", said: list | None = None, **kw):
    login, refresh = http_login(server.url, True, 5.0)
    made = manager_for(server.url, login, refresh, rate=rate, **kw)
    if said is not None:
        made.say = said.append
    return made


def accounts(n: int, prefix: str = "t") -> list[api.Account]:
    return [api.Account(f"{prefix}{i}@x.io", PASSWORD) for i in range(n)]


def test_twenty_threads_log_each_account_in_once(token_server: TokenServer) -> None:
    """Twenty threads on two accounts cause exactly one login per account, and share its token."""
    tokens = manager(token_server)
    two = accounts(2)
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda a=two[i % 2]: got.append(tokens.token(a).access_token))
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert token_server.logins == {"t0@x.io": 1, "t1@x.io": 1} and tokens.logins == 2
    assert len(got) == 20 and len(set(got)) == 2


def test_the_cache_file_is_private_and_shared_by_the_next_process(
    token_server: TokenServer, cache_in_tmp: Path
) -> None:
    """Tokens land in a 0600 file; a second manager (another process) reuses them, no login."""
    account = accounts(1)[0]
    first = manager(token_server).token(account)
    assert stat.S_IMODE(cache_in_tmp.stat().st_mode) == 0o600
    assert "access-" in cache_in_tmp.read_text() and PASSWORD not in cache_in_tmp.read_text()
    second = manager(token_server).token(account)
    assert second.access_token == first.access_token and token_server.logins == {"t0@x.io": 1}
    assert second.expires_at > time.time() + 1700  # wall-clock expiry survives the process


def test_no_token_cache_keeps_tokens_in_memory(
    token_server: TokenServer, cache_in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LOADTEST_NO_TOKEN_CACHE no file is written and a new manager logs in again."""
    monkeypatch.setenv("LOADTEST_NO_TOKEN_CACHE", "1")
    account = accounts(1)[0]
    manager(token_server).token(account)
    manager(token_server).token(account)
    assert token_server.logins == {"t0@x.io": 2} and not cache_in_tmp.exists()


def test_refresh_near_expiry_rotates_and_a_refused_refresh_logs_in(
    token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token within the margin is refreshed, not re-logged; a refused refresh logs in again."""
    token_server.expires_in = 60  # inside the refresh margin from the start:
    monkeypatch.setattr(accounts_module, "REFRESH_FRACTION", 1.0)
    monkeypatch.setattr(accounts_module, "KEEP_FRACTION", 1.0)  # a refused refresh: log in now
    tokens = manager(token_server)
    account = accounts(1)[0]
    first = tokens.token(account)
    second = tokens.token(account)
    assert second.access_token != first.access_token and token_server.refreshes == 1
    assert token_server.logins == {"t0@x.io": 1}
    token_server.refuse_refresh = True
    third = tokens.token(account)
    assert third.access_token not in (first.access_token, second.access_token)
    assert token_server.logins == {"t0@x.io": 2} and (tokens.logins, tokens.refreshes) == (2, 1)


def test_a_token_answered_401_is_dropped_and_logged_in_again(token_server: TokenServer) -> None:
    """drop() forgets the token in memory and in the file; the next call logs in."""
    tokens = manager(token_server)
    account = accounts(1)[0]
    old = tokens.token(account)
    tokens.drop(account, old)
    assert manager(token_server).cached(account) is None
    assert tokens.token(account).access_token != old.access_token
    assert token_server.logins == {"t0@x.io": 2}


def test_a_wrong_password_is_one_line_naming_the_account(token_server: TokenServer) -> None:
    """A refused login raises LoginError naming the account and status; nothing is cached."""
    tokens = manager(token_server)
    with pytest.raises(api.LoginError, match="bad@x.io: HTTP 401") as info:
        tokens.token(api.Account("bad@x.io", "Wrong@Password1"))
    assert "Wrong@Password1" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("refusal", [500, 429])
def test_logins_past_the_address_budget_wait_for_slots(
    token_server: TokenServer, refusal: int
) -> None:
    """Full speed until the limiter refuses (500 like the deployed service, or 429); then every
    account still logs in, the limiter never refuses a paced login, a 500 is the limiter-500
    defect, and one progress line says how long the rest takes."""
    token_server.limit = (3, 2.0, refusal)
    said: list[str] = []
    tokens = manager(token_server, rate="3/2s", said=said)
    eight = accounts(8)
    tokens.pending = len(eight)
    started = time.monotonic()
    for account in eight:
        tokens.token(account)
    took = time.monotonic() - started
    assert sorted(token_server.logins) == sorted(a.email for a in eight)
    assert len(tokens.events) == 1, tokens.events  # one refusal, then paced: never again
    assert 2.0 < took < 12.0 and tokens.waited_s > 2.0
    assert len(said) == 1 and "logging in" in said[0] and "3/2s" in said[0]
    ids = [d["id"] for d in tokens.defects()]
    assert ids == (["limiter-500"] if refusal == 500 else [])
    assert tokens.limit_shaped() and "address" in tokens.limit_shaped()


def test_a_refusal_paces_other_processes_through_the_budget_file(tmp_path: Path) -> None:
    """Two budgets on one file (two processes): a refusal seen by one paces the other."""
    one = LoginBudget("http://t", parse_rate("5/10s"), tmp_path / "b.json")
    two = LoginBudget("http://t", parse_rate("5/10s"), tmp_path / "b.json")
    assert one.reserve() == 0 and not two.paced()
    assert one.refused() is True and one.refused() is False  # switched on once
    assert two.paced() and 10 < two.reserve() < 12
    gap = two.reserve() - one.reserve()  # later slots are spread by period/N
    assert gap < 0 or gap > 1.9


def test_seed_accounts_past_the_targets_seed_list_end_the_list(token_server: TokenServer) -> None:
    """Against a backend seeded with 3 accounts, loadtest-005 is past the end (SeedEnd), not a
    failed run; the manager remembers where the list ends."""
    token_server.known = lambda email: (seed_number(email) or 0) <= 3
    tokens = manager(token_server, seeds_from_default=True)
    seeds = api.seed_accounts(6, PASSWORD)
    tokens.token(seeds[0])
    with pytest.raises(SeedEnd):
        tokens.token(seeds[4])
    assert tokens.missing_from == 5
    with pytest.raises(SeedEnd):
        tokens.token(seeds[5])  # known missing: no request
    assert token_server.logins == {"loadtest-001@example.com": 1}


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("5/minute", 5, 60), ("5/min", 5, 60), ("5/10s", 5, 10), ("5 per 10 seconds", 5, 10),
     ("10/hour", 10, 3600), ("3/60", 3, 60), (None, 5, 60)],
)  # fmt: skip
def test_login_rates_parse(text: str | None, count: int, period: float) -> None:
    """--login-rate takes N/unit, N/Ms, N/seconds and N per M units; default 5/minute."""
    rate = parse_rate(text)
    assert (rate.count, rate.period_s) == (count, period)


@pytest.mark.parametrize("text", ["fast", "0/minute", "5/fortnight", "5/0s"])
def test_bad_login_rates_are_one_line(text: str) -> None:
    """A login rate that does not parse is a StoreError naming it."""
    with pytest.raises(StoreError, match="login rate"):
        parse_rate(text)


def test_roles_reserve_the_first_accounts_and_spare_probe_ones_when_enough() -> None:
    """Reserved accounts come first, probe ones next when 3 general stay; with 12 all roles."""
    twelve = Roles.split(api.seed_accounts(12, PASSWORD))
    assert [a.email for a in twelve.reserved] == [
        "loadtest-001@example.com",
        "loadtest-002@example.com",
    ]
    assert len(twelve.probe) == 5 and len(twelve.general) == 5
    small = Roles.split(api.seed_accounts(6, PASSWORD))
    assert len(small.reserved) == 2 and not small.probe and len(small.general) == 4
    assert Roles.split(api.seed_accounts(1, PASSWORD)).general  # one account: general only


def test_tokens_file_gives_accounts_without_passwords(tmp_path: Path) -> None:
    """--tokens FILE: the accounts carry no password; their tokens are served from the store."""
    from loadkit.contract.accounts import load_tokens

    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"email": "sso@x.io", "access_token": "pre-issued"}]))
    store = TokenStore("http://t", use_file=False)
    found = load_tokens(str(path), store)
    assert [a.email for a in found] == ["sso@x.io"] and found[0].password == ""
    assert store.get("sso@x.io").access_token == "pre-issued"
    tokens = TokenManager(store, LoginBudget("http://t", parse_rate(None), tmp_path / "b"), None)
    assert tokens.token(found[0]).access_token == "pre-issued"
