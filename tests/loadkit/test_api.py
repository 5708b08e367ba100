"""Tests of loadkit.api: routes, WAV payloads, accounts, tokens, the token cache over HTTP."""

from __future__ import annotations

import io
import json
import random
import threading
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadkit import api

# A tiny token server: counts logins and refreshes, rotates refresh tokens like the contract says.


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TokenHandler)
        self.lock = threading.Lock()
        self.logins: dict[str, int] = {}
        self.refreshes = 0
        self.valid_refresh: set[str] = set()
        self.refuse_refresh = False
        self.serial = 0

    def issue(self) -> dict:
        with self.lock:
            self.serial += 1
            refresh = f"refresh-{self.serial}"
            self.valid_refresh.add(refresh)
        return {"access_token": f"access-{self.serial}", "refresh_token": refresh,
                "token_type": "bearer", "expires_in": 1800}  # fmt: skip


class TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        if self.path == api.LOGIN:
            time.sleep(0.05)  # login is slow by design (password hashing)
            if body["password"] != "Right@Password1":
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


def post(server: TokenServer, path: str, body: dict) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def login_via(server: TokenServer, clock: list[float]):
    def login(account: api.Account) -> api.Token:
        status, body = post(server, api.LOGIN, account.login_body())
        if status != 200:
            raise api.LoginError(account.email, status, str(body))
        return api.parse_token_response(body, clock[0])

    return login


def refresh_via(server: TokenServer, clock: list[float]):
    def refresh(token: api.Token) -> api.Token:
        status, body = post(server, api.REFRESH, {"refresh_token": token.refresh_token})
        if status != 200:
            raise RuntimeError(f"refresh refused: {status}")
        return api.parse_token_response(body, clock[0])

    return refresh


# Routes and payloads ------------------------------------------------------------------------------


def test_endpoint_keys_use_templates_never_ids() -> None:
    """Endpoints are keyed by method and template; paths fill the template in."""
    assert api.endpoint("get", api.SESSION) == "GET /api/sessions/{id}"
    assert api.path(api.SESSION_NOTES, id="abc") == "/api/sessions/abc/notes"
    assert api.upload_path("p1") == "/api/sessions/upload?patient_id=p1"
    assert api.PATIENTS.endswith("/") and api.SESSIONS.endswith("/")


@pytest.mark.parametrize("size", [1024, 1025, 64 * 1024, 1_000_001])
def test_wav_bytes_is_a_real_wave_file_of_the_exact_size(size: int) -> None:
    """wav_bytes parses with the stdlib wave module and has exactly the requested size."""
    data = api.wav_bytes(size, seed=3)
    assert len(data) == size and data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, api.WAV_RATE)
        assert w.getnframes() == (size - 44) // 2
        frames = w.readframes(w.getnframes())
    assert len(set(frames[:2000])) > 50  # a signal, not silence


def test_wav_bytes_is_deterministic_per_seed_and_refuses_tiny_files() -> None:
    """Same seed, same bytes; another seed, other bytes; under 1 KB is refused."""
    assert api.wav_bytes(4096, seed=1) == api.wav_bytes(4096, seed=1)
    assert api.wav_bytes(4096, seed=1) != api.wav_bytes(4096, seed=2)
    with pytest.raises(ValueError):
        api.wav_bytes(1000)


def test_payload_factories_follow_the_contract() -> None:
    """Patient bodies are deterministic per rng; signup passwords meet the password rules."""
    assert api.patient_payload(random.Random(5)) == api.patient_payload(random.Random(5))
    assert 1 <= len(api.patient_payload(random.Random(5))["name"]) <= 255
    body = api.signup_payload(rng=random.Random(9))
    pw = body["password"]
    assert len(pw) >= 12 and any(c.islower() for c in pw) and any(c.isupper() for c in pw)
    assert any(c.isdigit() for c in pw) and any(c in "@$!%*?&" for c in pw)
    assert body["role"] == "therapist" and body["email"] != api.signup_payload()["email"]


# Accounts ----------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("LOADTEST_ACCOUNTS", "SEED_ACCOUNTS", "SEED_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def accounts_file(tmp_path: Path, name: str, emails: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps([{"email": e, "password": "Pw@123456789a"} for e in emails]))
    return path


def test_account_precedence_path_then_env_then_seed(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """--accounts beats LOADTEST_ACCOUNTS, which beats the seed accounts."""
    seeded = api.load_accounts()
    assert len(seeded) == 100 and seeded[0].email == "loadtest-001@example.com"
    assert seeded[-1].email == "loadtest-100@example.com" and seeded[0].password == "LoadTest@2026"
    clean_env.setenv("LOADTEST_ACCOUNTS", str(accounts_file(tmp_path, "env.json", ["e@x.io"])))
    assert [a.email for a in api.load_accounts()] == ["e@x.io"]
    cli = accounts_file(tmp_path, "cli.json", ["c1@x.io", "c2@x.io"])
    assert [a.email for a in api.load_accounts(str(cli))] == ["c1@x.io", "c2@x.io"]


def test_seed_accounts_follow_seed_variables(clean_env: pytest.MonkeyPatch) -> None:
    """SEED_ACCOUNTS and SEED_PASSWORD change the seed accounts like they change the backend's."""
    clean_env.setenv("SEED_ACCOUNTS", "7")
    clean_env.setenv("SEED_PASSWORD", "Other@Pass123")
    accounts = api.load_accounts()
    assert len(accounts) == 7 and {a.password for a in accounts} == {"Other@Pass123"}


@pytest.mark.parametrize(
    "content",
    ["{nope", "{}", "[]", '[{"email": "a@x.io"}]', '[{"email": 1, "password": "p"}]', "[3]"],
)
def test_malformed_accounts_file_is_one_line(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, content: str
) -> None:
    """A malformed accounts file raises AccountsError, one line naming the file."""
    path = tmp_path / "accounts.json"
    path.write_text(content)
    with pytest.raises(api.AccountsError) as info:
        api.load_accounts(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(api.AccountsError, match="cannot read"):
        api.load_accounts(str(tmp_path / "absent.json"))


def test_repr_hides_the_password() -> None:
    """Neither repr nor str of an account or token shows a secret."""
    account = api.Account("a@x.io", "Sup3r@Secret!")
    token = api.Token("access-secret", "refresh-secret", 10.0)
    for text in (repr(account), str(account), repr(token), repr([account])):
        assert "Secret" not in text and "secret" not in text
    assert "a@x.io" in repr(account)


def test_split_reserves_the_last_accounts_and_shards_are_disjoint() -> None:
    """Rate-limit accounts are the last ones; worker shards never share an account."""
    accounts = api.seed_accounts(10, "Pw@123456789a")
    general, reserved = api.split_accounts(accounts, reserved=2)
    assert reserved == accounts[-2:] and general == accounts[:-2]
    shards = [api.shard(general, i, 3) for i in range(3)]
    assert sorted(a.email for s in shards for a in s) == sorted(a.email for a in general)
    with pytest.raises(api.AccountsError):
        api.split_accounts(accounts, reserved=10)
    with pytest.raises(api.AccountsError):
        api.shard(accounts[:2], 2, 3)


# Tokens ------------------------------------------------------------------------------------------


def test_parse_token_response_and_needs_refresh() -> None:
    """expires_in sets the monotonic expiry; refresh is due within the margin."""
    token = api.parse_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 1800}, 100.0
    )
    assert token.expires_at == 1900.0
    assert not token.needs_refresh(1839.0) and token.needs_refresh(1840.0)
    with pytest.raises(ValueError):
        api.parse_token_response({"detail": "nope"}, 0.0)


def test_login_error_names_account_and_status_only() -> None:
    """LoginError is one line with the account and status, never the password."""
    err = api.LoginError("a@x.io", 401, 'bad {"password": "x"}\nsecond line')
    assert str(err).startswith("login failed for a@x.io: HTTP 401") and "\n" not in str(err)
    assert "no response" in str(api.LoginError("a@x.io", None))


def test_token_cache_logs_each_account_in_once_across_threads(token_server: TokenServer) -> None:
    """Twenty threads on two accounts cause exactly one login per account, and share its token."""
    clock = [1000.0]
    cache = api.TokenCache(clock=lambda: clock[0])
    accounts = [api.Account(f"t{i}@x.io", "Right@Password1") for i in range(2)]
    got: list[tuple[str, str]] = []
    lock = threading.Lock()

    def user(account: api.Account) -> None:
        token = cache.get_or_login(account, login_via(token_server, clock))
        with lock:
            got.append((account.email, token.access_token))

    threads = [threading.Thread(target=user, args=(accounts[i % 2],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert token_server.logins == {"t0@x.io": 1, "t1@x.io": 1} and cache.logins == 2
    assert len(got) == 20 and len({tok for _, tok in got}) == 2


def test_token_cache_refreshes_near_expiry_and_falls_back_to_login(
    token_server: TokenServer,
) -> None:
    """Within the margin the token is refreshed (not re-logged); a refused refresh logs in again."""
    clock = [1000.0]
    cache = api.TokenCache(refresh_via(token_server, clock), margin_s=60, clock=lambda: clock[0])
    account = api.Account("r@x.io", "Right@Password1")
    login = login_via(token_server, clock)
    first = cache.get_or_login(account, login)
    clock[0] += 1700  # 100 s before expiry: still fine
    assert cache.get_or_login(account, login) is first
    clock[0] += 50  # 50 s before expiry: inside the margin
    second = cache.get_or_login(account, login)
    assert second.access_token != first.access_token and token_server.refreshes == 1
    assert token_server.logins == {"r@x.io": 1}
    token_server.refuse_refresh = True
    clock[0] += 1800
    third = cache.get_or_login(account, login)
    assert third.access_token not in (first.access_token, second.access_token)
    assert token_server.logins == {"r@x.io": 2} and (cache.logins, cache.refreshes) == (2, 1)


def test_token_cache_propagates_login_failure_with_the_account(token_server: TokenServer) -> None:
    """A refused login raises LoginError naming the account and status; nothing is cached."""
    cache = api.TokenCache()
    account = api.Account("bad@x.io", "Wrong@Password1")
    with pytest.raises(api.LoginError, match="bad@x.io: HTTP 401") as info:
        cache.get_or_login(account, login_via(token_server, [0.0]))
    assert "Wrong@Password1" not in str(info.value) and cache.get(account) is None
