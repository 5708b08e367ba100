"""Every rate limit answers 429 with an integer Retry-After; a refused request changes nothing."""

import httpx

from tests.backend.helpers import (
    Backend,
    RawHttp,
    assert_rate_limited,
    audio_bytes,
    bearer,
    files_in,
    login,
    scalar,
    seed_email,
    table_counts,
    unique_email,
    upload,
    upload_head,
)

LIMITS = {"DEFAULT": 6, "LOGIN": 3, "REFRESH": 3, "SIGNUP": 2, "UPLOAD": 2, "EXTRACT": 2}
WINDOWS = {
    "DEFAULT": 60,
    "LOGIN": 60,
    "REFRESH": 60,
    "SIGNUP": 3600,
    "UPLOAD": 3600,
    "EXTRACT": 3600,
}
UNITS = {60: "minute", 3600: "hour"}
LIVE_TOKENS = "SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL"


# Small limits and six seed accounts.
BACKEND_ENV = {f"RATE_LIMIT_{k}": f"{n}/{UNITS[WINDOWS[k]]}" for k, n in LIMITS.items()}
BACKEND_ENV["SEED_ACCOUNTS"] = "6"


def test_default_limit_per_user(backend: Backend, client: httpx.Client) -> None:
    """The default limit counts per user; over it, reads and writes are 429 and write nothing."""
    alice = bearer(login(client, seed_email(1))["access_token"])
    for _ in range(LIMITS["DEFAULT"]):
        assert client.get("/api/patients/", headers=alice).status_code == 200
    assert_rate_limited(client.get("/api/patients/", headers=alice), WINDOWS["DEFAULT"])
    before = table_counts(backend.db_path)
    refused = client.post("/api/patients/", json={"name": "Over the limit"}, headers=alice)
    assert_rate_limited(refused, WINDOWS["DEFAULT"])
    assert table_counts(backend.db_path) == before
    bob = bearer(login(client, seed_email(2))["access_token"])
    assert client.get("/api/patients/", headers=bob).status_code == 200


def test_probes_are_exempt(client: httpx.Client) -> None:
    """`/`, `/health`, `/ready` and `/live` are never limited."""
    for _ in range(LIMITS["DEFAULT"] * 3):
        for path in ("/", "/health", "/ready", "/live"):
            assert client.get(path).status_code == 200


def test_login_limit_per_address_and_email(backend: Backend, client: httpx.Client) -> None:
    """Failed logins use up one email's quota; then even the right password is 429, no token."""
    email = seed_email(3)
    for _ in range(LIMITS["LOGIN"]):
        bad = client.post("/api/v1/login", json={"email": email, "password": "Wrong@Pass123"})
        assert bad.status_code == 401
    before = table_counts(backend.db_path)["refresh_tokens"]
    good = client.post("/api/v1/login", json={"email": email, "password": "LoadTest@2026"})
    assert_rate_limited(good, WINDOWS["LOGIN"])
    assert table_counts(backend.db_path)["refresh_tokens"] == before
    assert login(client, seed_email(4))["access_token"]


def test_signup_limit_per_address(backend: Backend, client: httpx.Client) -> None:
    """Signups beyond the limit are 429 and create no user."""
    body = {"password": "Str0ng&Secret!", "first_name": "A", "last_name": "B"}
    for _ in range(LIMITS["SIGNUP"]):
        assert (
            client.post("/api/v1/signup", json={**body, "email": unique_email()}).status_code == 201
        )
    before = table_counts(backend.db_path)
    refused = client.post("/api/v1/signup", json={**body, "email": unique_email()})
    assert_rate_limited(refused, WINDOWS["SIGNUP"])
    assert table_counts(backend.db_path) == before


def test_refresh_limit_keeps_the_token_alive(backend: Backend, client: httpx.Client) -> None:
    """Refreshes beyond the limit are 429, and the presented refresh token is not consumed."""
    token = login(client, seed_email(5))["refresh_token"]
    for _ in range(LIMITS["REFRESH"]):
        response = client.post("/api/v1/refresh", json={"refresh_token": token})
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    before = (table_counts(backend.db_path), scalar(backend.db_path, LIVE_TOKENS))
    refused = client.post("/api/v1/refresh", json={"refresh_token": token})
    assert_rate_limited(refused, WINDOWS["REFRESH"])
    assert (table_counts(backend.db_path), scalar(backend.db_path, LIVE_TOKENS)) == before


def test_upload_limit_refuses_before_reading_the_body(
    backend: Backend, client: httpx.Client
) -> None:
    """Over the upload limit, 429 comes back without the body being sent; nothing is stored."""
    token = login(client, seed_email(6))["access_token"]
    patient_id = client.get("/api/patients/", headers=bearer(token)).json()[0]["id"]
    for _ in range(LIMITS["UPLOAD"]):
        assert upload(client, token, patient_id, audio_bytes()).status_code == 200
    files, rows = files_in(backend.upload_dir), table_counts(backend.db_path)
    connection = RawHttp(backend.process.port)
    try:
        head = upload_head(token, patient_id, "multipart/form-data; boundary=x", length=10**6)
        connection.send(head)  # no body follows: the limiter must answer first
        status, headers, _ = connection.read_response()
    finally:
        connection.close()
    assert status == 429 and headers["retry-after"].isdigit()
    assert 1 <= int(headers["retry-after"]) <= WINDOWS["UPLOAD"]
    assert files_in(backend.upload_dir) == files and table_counts(backend.db_path) == rows


def test_extract_limit_leaves_notes_untouched(client: httpx.Client) -> None:
    """Extractions beyond the limit are 429 and store no notes."""
    headers = bearer(login(client, seed_email(4))["access_token"])
    listing = client.get("/api/sessions/", params={"status": "transcribed"}, headers=headers)
    transcribed = [s["id"] for s in listing.json()]
    assert len(transcribed) > LIMITS["EXTRACT"]
    for session_id in transcribed[: LIMITS["EXTRACT"]]:
        response = client.post(f"/api/sessions/{session_id}/extract-notes", headers=headers)
        assert response.status_code == 200
    last = transcribed[LIMITS["EXTRACT"]]
    refused = client.post(f"/api/sessions/{last}/extract-notes", headers=headers)
    assert_rate_limited(refused, WINDOWS["EXTRACT"])
    assert client.get(f"/api/sessions/{last}/notes", headers=headers).status_code == 404
