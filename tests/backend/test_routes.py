"""Every route's success and refusal paths, ownership and processing, on SQLite and PostgreSQL.

Limits are raised out of the way here; test_limits.py covers them.
"""

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.backend.helpers import (
    Backend,
    assert_envelope,
    audio_bytes,
    bearer,
    login,
    running_backend,
    seed_email,
    unique_email,
    upload,
)

STRONG_PASSWORD = "Str0ng&Secret!"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)]
)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """One backend per database kind, on a fresh database."""
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    tmp = tmp_path_factory.mktemp(f"routes_{request.param}")
    with running_backend(tmp, database_url=database_url) as started:
        yield started


@pytest.fixture(scope="module")
def alice(client: httpx.Client) -> dict[str, str]:
    """Headers for seed therapist 1."""
    return bearer(login(client, seed_email(1))["access_token"])


@pytest.fixture(scope="module")
def bob(client: httpx.Client) -> dict[str, str]:
    """Headers for seed therapist 2."""
    return bearer(login(client, seed_email(2))["access_token"])


def first_patient(client: httpx.Client, headers: dict[str, str]) -> dict:
    """The newest patient of the caller."""
    response = client.get("/api/patients/", headers=headers)
    assert response.status_code == 200
    return response.json()[0]


def sessions_of(client: httpx.Client, headers: dict[str, str], **params: str) -> list[dict]:
    """The caller's sessions (up to 1000)."""
    response = client.get("/api/sessions/", headers=headers, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_probes_answer(client: httpx.Client) -> None:
    """`/`, `/live`, `/ready` and `/health` answer 200 with the contract's shapes."""
    assert set(client.get("/").json()) == {"service", "version", "status"}
    live = client.get("/live").json()
    assert live["status"] == "alive" and isinstance(live["timestamp"], int)
    assert client.get("/ready").json() == {"status": "ready"}
    health = client.get("/health").json()
    assert health["status"] == "healthy" and isinstance(health["timestamp"], int)
    database = health["checks"]["database"]
    assert database["status"] == "healthy" and database["response_time_ms"] >= 0
    pool = database["pool"]
    assert {"size", "checked_in", "checked_out", "overflow", "max_overflow", "timeouts"} <= set(
        pool
    )
    assert pool["size"] == 5 and pool["max_overflow"] == 10 and pool["timeouts"] == 0
    assert pool["overflow"] == pool["checked_in"] + pool["checked_out"] - pool["size"]
    assert health["checks"]["openai"] == {"status": "degraded", "message": "API key not configured"}


def test_seed_accounts_have_patients_and_sessions(client: httpx.Client, alice: dict) -> None:
    """Each seed therapist has 5 patients and 60 sessions, mostly processed with notes."""
    assert len(client.get("/api/patients/", headers=alice).json()) == 5
    sessions = sessions_of(client, alice)
    assert len(sessions) == 60
    processed = [s for s in sessions if s["status"] == "processed"]
    assert len(processed) >= 45
    assert all(s["transcript_text"] and s["extracted_notes"] for s in processed)
    assert len(client.get("/api/sessions/", headers=alice).json()) == 50


def test_signup_creates_account_and_tokens(client: httpx.Client) -> None:
    """Signup answers 201 with tokens that work on /me."""
    email = unique_email()
    body = {"email": email, "password": STRONG_PASSWORD, "first_name": "Ada",
            "last_name": "Lovelace", "role": "therapist"}  # fmt: skip
    response = client.post("/api/v1/signup", json=body)
    assert response.status_code == 201, response.text
    tokens = response.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 1800
    me = client.get("/api/v1/me", headers=bearer(tokens["access_token"])).json()
    assert me["email"] == email and me["full_name"] == "Ada Lovelace" and me["is_active"]
    assert set(me) == {"id", "email", "first_name", "last_name", "full_name", "role",
                       "is_active", "created_at"}  # fmt: skip


def test_signup_refusals(client: httpx.Client) -> None:
    """Duplicate email is 409; weak password, bad email and bad role are 422 with details."""
    base = {"password": STRONG_PASSWORD, "first_name": "A", "last_name": "B", "role": "therapist"}
    duplicate = client.post("/api/v1/signup", json={**base, "email": seed_email(1)})
    assert assert_envelope(duplicate, 409)["retriable"] is False
    for change in ({"password": "short1!A"}, {"password": "alllowercase123!"},
                   {"email": "not-an-email"}, {"role": "wizard"}):  # fmt: skip
        response = client.post("/api/v1/signup", json={**base, "email": unique_email(), **change})
        error = assert_envelope(response, 422)
        assert error["details"]["validation_errors"][0]["field"]


def test_login_refusals(client: httpx.Client) -> None:
    """Wrong password and unknown email are both 401 with the envelope."""
    wrong = client.post("/api/v1/login", json={"email": seed_email(3), "password": "Wrong@Pass123"})
    assert_envelope(wrong, 401)
    unknown = client.post("/api/v1/login", json={"email": unique_email(), "password": "x"})
    assert_envelope(unknown, 401)


def test_data_routes_need_a_token(client: httpx.Client) -> None:
    """Every data route refuses a request without a valid token with 401."""
    some_id = uuid.uuid4()
    routes = [("GET", "/api/v1/me"), ("GET", "/api/patients/"), ("POST", "/api/patients/"),
              ("GET", f"/api/patients/{some_id}"), ("GET", "/api/sessions/"),
              ("GET", f"/api/sessions/{some_id}"), ("GET", f"/api/sessions/{some_id}/notes"),
              ("POST", f"/api/sessions/{some_id}/extract-notes"),
              ("POST", f"/api/sessions/upload?patient_id={some_id}"),
              ("POST", "/api/v1/logout")]  # fmt: skip
    for method, path in routes:
        assert_envelope(client.request(method, path), 401)
        assert_envelope(client.request(method, path, headers=bearer("not.a.jwt")), 401)


def test_patient_create_list_get(client: httpx.Client, alice: dict) -> None:
    """A created patient is returned, listed first and readable by id."""
    body = {"name": "New Patient", "email": "patient@example.com", "phone": "+1 555 0100"}
    created = client.post("/api/patients/", json=body, headers=alice)
    assert created.status_code == 200, created.text
    patient = created.json()
    assert patient["name"] == "New Patient" and patient["email"] == "patient@example.com"
    assert client.get("/api/patients/", headers=alice).json()[0]["id"] == patient["id"]
    assert client.get(f"/api/patients/{patient['id']}", headers=alice).json() == patient
    limited = client.get("/api/patients/", headers=alice, params={"limit": 2})
    assert len(limited.json()) == 2


def test_patient_refusals(client: httpx.Client, alice: dict, bob: dict) -> None:
    """Empty name and bad limits are 422; unknown, foreign and non-UUID ids are 404/422."""
    assert_envelope(client.post("/api/patients/", json={"name": ""}, headers=alice), 422)
    assert_envelope(client.get("/api/patients/", params={"limit": 0}, headers=alice), 422)
    assert_envelope(client.get("/api/patients/", params={"limit": 1001}, headers=alice), 422)
    assert_envelope(client.get(f"/api/patients/{uuid.uuid4()}", headers=alice), 404)
    assert_envelope(client.get("/api/patients/not-a-uuid", headers=alice), 422)
    bobs = first_patient(client, bob)
    assert_envelope(client.get(f"/api/patients/{bobs['id']}", headers=alice), 404)
    foreign = {"name": "Sneaky", "therapist_id": bobs["therapist_id"]}
    assert_envelope(client.post("/api/patients/", json=foreign, headers=alice), 404)
    listing = client.get(
        "/api/patients/", params={"therapist_id": bobs["therapist_id"]}, headers=alice
    )
    assert_envelope(listing, 404)


def test_session_list_filters_and_read(client: httpx.Client, alice: dict) -> None:
    """Sessions filter by patient and status, and each is readable by id."""
    patient_id = sessions_of(client, alice)[0]["patient_id"]
    by_patient = sessions_of(client, alice, patient_id=patient_id)
    assert len(by_patient) == 12 and all(s["patient_id"] == patient_id for s in by_patient)
    failed = sessions_of(client, alice, status="failed")
    assert failed and all(s["status"] == "failed" and s["error_message"] for s in failed)
    one = client.get(f"/api/sessions/{by_patient[0]['id']}", headers=alice)
    assert one.status_code == 200 and one.json()["id"] == by_patient[0]["id"]
    assert_envelope(client.get("/api/sessions/", params={"status": "bogus"}, headers=alice), 422)


def test_sessions_are_private(client: httpx.Client, alice: dict, bob: dict) -> None:
    """Another therapist's session, notes, extraction and patient filter are all 404."""
    bobs = sessions_of(client, bob, status="processed")[0]
    for method, suffix in (("GET", ""), ("GET", "/notes"), ("POST", "/extract-notes")):
        assert_envelope(
            client.request(method, f"/api/sessions/{bobs['id']}{suffix}", headers=alice), 404
        )
    params = {"patient_id": bobs["patient_id"]}
    assert_envelope(client.get("/api/sessions/", params=params, headers=alice), 404)
    assert all(s["therapist_id"] != bobs["therapist_id"] for s in sessions_of(client, alice))


def test_notes_and_extraction(client: httpx.Client, alice: dict) -> None:
    """Notes exist for processed sessions; extraction works once transcribed and is 400 before."""
    processed = sessions_of(client, alice, status="processed")[0]
    notes = client.get(f"/api/sessions/{processed['id']}/notes", headers=alice)
    assert notes.status_code == 200 and notes.json() == processed["extracted_notes"]
    transcribed = sessions_of(client, alice, status="transcribed")[0]
    assert_envelope(client.get(f"/api/sessions/{transcribed['id']}/notes", headers=alice), 404)
    extracted = client.post(f"/api/sessions/{transcribed['id']}/extract-notes", headers=alice)
    assert extracted.status_code == 200, extracted.text
    result = extracted.json()
    assert result["extracted_notes"]["key_topics"] and result["processing_time"] >= 0
    after = client.get(f"/api/sessions/{transcribed['id']}/notes", headers=alice).json()
    assert after == result["extracted_notes"]
    failed = sessions_of(client, alice, status="failed")[0]
    error = assert_envelope(
        client.post(f"/api/sessions/{failed['id']}/extract-notes", headers=alice), 400
    )
    assert error["code"] == "not_transcribed"


def test_upload_is_processed_in_background(client: httpx.Client, alice: dict) -> None:
    """An upload answers `uploading`, then reaches `processed` with a transcript and notes."""
    token = alice["Authorization"].split()[1]
    patient = first_patient(client, alice)
    response = upload(client, token, patient["id"], audio_bytes("mp3", 8192))
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["status"] == "uploading" and session["patient_id"] == patient["id"]
    assert session["audio_filename"] == "session.mp3"
    seen = {session["status"]}
    deadline = time.monotonic() + 20
    while session["status"] not in ("processed", "failed") and time.monotonic() < deadline:
        time.sleep(0.02)
        session = client.get(f"/api/sessions/{session['id']}", headers=alice).json()
        seen.add(session["status"])
    assert session["status"] == "processed", session
    assert session["transcript_text"] and session["extracted_notes"] and session["processed_at"]
    assert seen <= {"uploading", "transcribing", "transcribed", "extracting_notes", "processed"}
    assert len(seen) >= 3


def test_logout_and_refresh(client: httpx.Client) -> None:
    """Refresh rotates tokens; logout revokes a refresh token so it can no longer refresh."""
    tokens = login(client, seed_email(4))
    rotated = client.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"]
    new = rotated.json()
    out = client.post("/api/v1/logout", json={"refresh_token": new["refresh_token"]},
                      headers=bearer(new["access_token"]))  # fmt: skip
    assert out.status_code == 200
    assert_envelope(
        client.post("/api/v1/refresh", json={"refresh_token": new["refresh_token"]}), 401
    )
