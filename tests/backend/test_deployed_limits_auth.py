"""REFERENCE_BEHAVIOUR=deployed: limits by address answering 500, open data routes, no ownership.

One backend in deployed mode with shortened windows; each test picks its own client address with
X-Forwarded-For (the deployed service trusts it from 127.0.0.1), so the tests share no budget.
"""

import json
import uuid

import httpx
import pytest

from tests.backend.helpers import (
    DEPLOYED_ENV,
    Backend,
    RawHttp,
    assert_envelope,
    assert_limit_500,
    audio_bytes,
    bearer,
    multipart,
    raw_request,
    seed_email,
    unique_email,
)

LOGIN_LIMIT, UPLOAD_LIMIT, SIGNUP_LIMIT = 3, 3, 2
WRONG = "Wrong@Pass1234"


# The deployed preset with short windows: login 3 per 10 s, upload 3/hour, signup 2/hour.
BACKEND_ENV = {
    **DEPLOYED_ENV,
    "RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT} per 10 seconds",
    "RATE_LIMIT_UPLOAD": f"{UPLOAD_LIMIT}/hour",
    "RATE_LIMIT_SIGNUP": f"{SIGNUP_LIMIT}/hour",
}


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _login(client: httpx.Client, address: str, email: str, password: str) -> httpx.Response:
    body = {"email": email, "password": password}
    return client.post("/api/v1/login", json=body, headers=_from(address))


def _token(client: httpx.Client, address: str, number: int) -> dict[str, str]:
    response = _login(client, address, seed_email(number), "LoadTest@2026")
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def test_failed_logins_of_any_email_share_one_address_budget(client: httpx.Client) -> None:
    """Login is keyed by address only: failed logins of other emails use it up; then a 500."""
    for number in range(1, LOGIN_LIMIT + 1):
        assert _login(client, "10.0.0.1", seed_email(number), WRONG).status_code == 401
    refused = _login(client, "10.0.0.1", seed_email(4), "LoadTest@2026")
    assert_limit_500(refused)
    assert _login(client, "10.0.0.2", seed_email(4), "LoadTest@2026").status_code == 200


def test_over_the_limit_the_connection_is_closed(backend: Backend) -> None:
    """The 500 says Connection: close and the server closes: the next request on it fails."""
    connection = RawHttp(backend.process.port)
    body = json.dumps({"email": seed_email(1), "password": WRONG}).encode()
    request = raw_request(
        "POST", "/api/v1/login", body, Content_Type="application/json", X_Forwarded_For="10.0.1.1"
    )
    try:
        statuses = []
        for _ in range(LOGIN_LIMIT + 1):
            connection.send(request)
            statuses.append(connection.read_response()[0])
        assert statuses == [401] * LOGIN_LIMIT + [500]
        with pytest.raises(OSError):
            connection.send(request)
            connection.read_response()
    finally:
        connection.close()


def test_no_default_limit(client: httpx.Client) -> None:
    """Every other route is unlimited: 130 reads from one address (past 100/minute) all pass."""
    statuses = {client.get("/api/patients/?limit=1", headers=_from("10.0.2.1")).status_code
                for _ in range(130)}  # fmt: skip
    assert statuses == {200}


def test_refused_uploads_count_but_a_422_does_not(client: httpx.Client) -> None:
    """404/400/415 uploads use up the upload budget; 422s (bad query) do not; then a 500."""
    address = _from("10.0.3.1")
    patient_id = client.get("/api/patients/", headers=address).json()[0]["id"]
    for _ in range(UPLOAD_LIMIT + 2):
        bad_query = client.post("/api/sessions/upload?patient_id=nope", headers=address)
        assert bad_query.status_code == 422
    refusals = [
        (str(uuid.uuid4()), {}),  # unknown patient: 404
        (patient_id, {"filename": "notes.txt"}),  # extension: 400
        (patient_id, {"content_type": "audio/flac"}),  # unlisted audio type: 415
    ]
    for target, part in refusals:
        body, content_type = multipart(audio_bytes(), **part)
        response = client.post(
            "/api/sessions/upload", params={"patient_id": target}, content=body,
            headers={**address, "Content-Type": content_type},
        )  # fmt: skip
        assert response.status_code in (400, 404, 415), response.text
    body, content_type = multipart(audio_bytes())
    over = client.post(
        "/api/sessions/upload", params={"patient_id": patient_id}, content=body,
        headers={**address, "Content-Type": content_type},
    )  # fmt: skip
    assert_limit_500(over)


def test_signup_limit_by_address_answers_500(client: httpx.Client) -> None:
    """Signup keeps its own limit per address, over it a 500 like every deployed limit."""
    body = {"password": "Str0ng&Secret!", "first_name": "A", "last_name": "B"}
    for _ in range(SIGNUP_LIMIT):
        created = client.post(
            "/api/v1/signup", json={**body, "email": unique_email()}, headers=_from("10.0.4.1")
        )
        assert created.status_code == 201
    over = client.post(
        "/api/v1/signup", json={**body, "email": unique_email()}, headers=_from("10.0.4.1")
    )
    assert_limit_500(over)


def test_data_routes_answer_without_a_token(client: httpx.Client) -> None:
    """Patient and session routes need no token: list, read, create and a session read all 200."""
    patients = client.get("/api/patients/")
    assert patients.status_code == 200
    therapists = {p["therapist_id"] for p in patients.json()}
    assert len(therapists) > 1  # everyone's rows, not one caller's
    patient = patients.json()[0]
    assert client.get(f"/api/patients/{patient['id']}").status_code == 200
    sessions = client.get("/api/sessions/", params={"limit": 5})
    assert sessions.status_code == 200 and sessions.json()
    assert client.get(f"/api/sessions/{sessions.json()[0]['id']}").status_code == 200
    created = client.post(
        "/api/patients/", json={"name": "No Token", "therapist_id": patient["therapist_id"]}
    )
    assert created.status_code == 200, created.text


def test_lists_return_everyones_rows_newest_first(client: httpx.Client) -> None:
    """With a token, the lists still hold every therapist's rows, the newest first."""
    first = _token(client, "10.0.6.1", 1)
    other = client.get("/api/v1/me", headers=_token(client, "10.0.6.2", 2)).json()["id"]
    made = client.post("/api/patients/", json={"name": "Newest", "therapist_id": other})
    assert made.status_code == 200
    listed = client.get("/api/patients/", headers=first).json()
    assert listed[0]["id"] == made.json()["id"]  # another therapist's, first
    stamps = [p["created_at"] for p in listed]
    assert stamps == sorted(stamps, reverse=True)


def test_another_therapists_rows_are_readable_with_any_token(client: httpx.Client) -> None:
    """No ownership: therapist 3's token reads therapist 4's patient and session."""
    their_patient = client.get("/api/patients/", headers=_token(client, "10.0.7.1", 4))
    mine = _token(client, "10.0.7.2", 3)
    me = client.get("/api/v1/me", headers=mine).json()["id"]
    foreign = next(p for p in their_patient.json() if p["therapist_id"] != me)
    response = client.get(f"/api/patients/{foreign['id']}", headers=mine)
    assert response.status_code == 200 and response.json()["therapist_id"] != me


def test_missing_header_is_403_and_a_bad_token_401(client: httpx.Client) -> None:
    """/me checks the token: no Authorization header is 403, a tampered token is 401."""
    assert_envelope(client.get("/api/v1/me"), 403)
    assert_envelope(client.get("/api/v1/me", headers=bearer("not.a.token")), 401)


def test_the_access_token_outlives_logout(client: httpx.Client) -> None:
    """Logout revokes the refresh token only: the access token still reads /me."""
    tokens = _login(client, "10.0.5.1", seed_email(1), "LoadTest@2026").json()
    headers = bearer(tokens["access_token"])
    out = client.post(
        "/api/v1/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert out.status_code == 200
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    reused = client.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_envelope(reused, 401)


def test_health_reports_the_model_degraded_and_a_pool_of_20(client: httpx.Client) -> None:
    """/health is 200 with checks.openai degraded (no key) and the deployed pool size 20."""
    body = client.get("/health").json()
    assert body["checks"]["openai"]["status"] == "degraded"
    pool = body["checks"]["database"]["pool"]
    assert pool["size"] == 20 and pool["max_overflow"] == 10
