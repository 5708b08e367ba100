"""loadkit.contract.api: routes, WAV payloads, accounts and tokens (the manager: test_accounts)."""

from __future__ import annotations

import io
import json
import random
import wave
from pathlib import Path

import pytest

from loadkit.contract import api

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


def test_shards_are_disjoint() -> None:
    """Worker shards never share an account; a worker without one is an AccountsError."""
    accounts = api.seed_accounts(10, "Pw@123456789a")
    shards = [api.shard(accounts, i, 3) for i in range(3)]
    assert sorted(a.email for s in shards for a in s) == sorted(a.email for a in accounts)
    with pytest.raises(api.AccountsError):
        api.shard(accounts[:2], 2, 3)


# Tokens ------------------------------------------------------------------------------------------


def test_parse_token_response_and_needs_refresh() -> None:
    """expires_in sets the wall-clock expiry; refresh is due within the margin."""
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
