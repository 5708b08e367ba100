"""REFERENCE_BEHAVIOUR=deployed: payload rules, uploads that trust names, processing that fails.

One deployed backend (small upload limit, so a late 413 is cheap); the upload limit is raised so
the tests do not spend it, and every request comes without a token, as the deployed routes allow.
"""

import uuid

import httpx
import pytest

from tests.backend.helpers import (
    DEPLOYED_ENV,
    Backend,
    RawHttp,
    assert_envelope,
    audio_bytes,
    bearer,
    login,
    multipart,
    seed_email,
    unique_email,
    upload_head,
    wait_for_status,
)

MAX_UPLOAD = 64 * 1024
FAILED_WITHIN_S = 1.0  # the deployed service flips in ~40 ms; generous for a busy CI machine


# The deployed preset, uploads up to 64 KB, the upload limit out of the way.
BACKEND_ENV = {
    **DEPLOYED_ENV,
    "MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    "RATE_LIMIT_UPLOAD": "1000/hour",
}


@pytest.fixture(scope="module")
def patient_id(client: httpx.Client) -> str:
    """A seeded patient of the third therapist (not the first)."""
    me = client.get("/api/v1/me", headers=bearer(login(client, seed_email(3))["access_token"]))
    patients = client.get("/api/patients/", params={"therapist_id": me.json()["id"]}).json()
    return patients[0]["id"]


def post_upload(
    client: httpx.Client, patient_id: str, content: bytes, **part: str
) -> httpx.Response:
    """An upload with no token."""
    body, content_type = multipart(content, **part)
    return client.post(
        "/api/sessions/upload", params={"patient_id": patient_id}, content=body,
        headers={"Content-Type": content_type},
    )  # fmt: skip


def test_patient_creation_requires_a_therapist_id(client: httpx.Client) -> None:
    """therapist_id is required (422), unknown 404, not a therapist 400; a good one is 200."""
    assert_envelope(client.post("/api/patients/", json={"name": "P"}), 422)
    unknown = {"name": "P", "therapist_id": str(uuid.uuid4())}
    assert_envelope(client.post("/api/patients/", json=unknown), 404)
    signup = {"email": unique_email(), "password": "Str0ng&Secret!", "first_name": "A",
              "last_name": "B", "role": "patient"}  # fmt: skip
    token = client.post("/api/v1/signup", json=signup).json()["access_token"]
    not_therapist = client.get("/api/v1/me", headers=bearer(token)).json()["id"]
    refused = client.post("/api/patients/", json={"name": "P", "therapist_id": not_therapist})
    assert_envelope(refused, 400)
    therapist = client.get("/api/patients/").json()[0]["therapist_id"]
    made = client.post("/api/patients/", json={"name": "P", "therapist_id": therapist})
    assert made.status_code == 200 and made.json()["therapist_id"] == therapist


def test_phone_must_start_with_plus_or_one_to_nine(client: httpx.Client) -> None:
    """`555-123-4567` is accepted; `(123) 456-7890` is a 422 naming the phone."""
    therapist = client.get("/api/patients/").json()[0]["therapist_id"]
    body = {"name": "P", "therapist_id": therapist}
    assert client.post("/api/patients/", json={**body, "phone": "555-123-4567"}).is_success
    refused = client.post("/api/patients/", json={**body, "phone": "(123) 456-7890"})
    error = assert_envelope(refused, 422)
    assert error["details"]["validation_errors"][0]["field"] == "phone"


def test_collection_routes_without_the_slash_redirect(client: httpx.Client) -> None:
    """`GET /api/patients` answers 307 to the slashed route."""
    response = client.get("/api/patients", follow_redirects=False)
    assert response.status_code == 307


def test_non_audio_bytes_named_wav_are_accepted(client: httpx.Client, patient_id: str) -> None:
    """The magic check never refuses: text bytes named probe.wav (audio/wav) make a session."""
    text = b"this is not audio at all. " * 100
    accepted = post_upload(client, patient_id, text, filename="probe.wav", content_type="audio/wav")
    assert accepted.status_code == 200, accepted.text
    assert client.get(f"/api/sessions/{accepted.json()['id']}").status_code == 200


def test_a_refused_tiny_upload_leaves_a_failed_row(client: httpx.Client, patient_id: str) -> None:
    """A file under 1 KB is 400, and a `failed` session row with its name stays behind."""
    name = f"tiny-{uuid.uuid4().hex[:8]}.mp3"
    assert_envelope(post_upload(client, patient_id, audio_bytes(size=200), filename=name), 400)
    failed = client.get("/api/sessions/", params={"status": "failed", "limit": 1000}).json()
    left = [s for s in failed if s["audio_filename"] == name]
    assert len(left) == 1 and "too small" in left[0]["error_message"]


def test_the_size_limit_is_checked_after_the_whole_body(backend: Backend, patient_id: str) -> None:
    """A body declared over the limit gets no answer until all of it arrived; then 413."""
    body, content_type = multipart(audio_bytes(size=MAX_UPLOAD * 2))
    connection = RawHttp(backend.process.port, timeout=0.5)
    try:
        connection.send(upload_head("none", patient_id, content_type, length=len(body)))
        connection.send(body[: len(body) // 2])
        with pytest.raises(TimeoutError):
            connection.read_response()  # the contract backend would have said 413 already
        connection.sock.settimeout(10)
        connection.send(body[len(body) // 2 :])
        assert connection.read_response()[0] == 413
    finally:
        connection.close()


def test_an_upload_belongs_to_the_first_therapist(client: httpx.Client, patient_id: str) -> None:
    """The session's therapist_id is the first therapist's (loadtest-001), not the patient's."""
    first = client.get("/api/v1/me", headers=bearer(login(client, seed_email(1))["access_token"]))
    patient = client.get(f"/api/patients/{patient_id}").json()
    session = post_upload(client, patient_id, audio_bytes()).json()
    assert session["therapist_id"] == first.json()["id"] != patient["therapist_id"]


def test_processing_fails_at_once_without_a_model_key(
    client: httpx.Client, patient_id: str
) -> None:
    """An upload flips to `failed` with the missing-key message within a second (~40 ms)."""
    session = post_upload(client, patient_id, audio_bytes()).json()
    assert session["status"] == "uploading"
    body, seconds = wait_for_status(client, session["id"], "failed")
    assert body["error_message"] == "OPENAI_API_KEY not found in environment"
    assert seconds < FAILED_WITHIN_S


def test_extract_notes_answers_500(client: httpx.Client) -> None:
    """extract-notes is a 500 envelope even on a transcribed session."""
    transcribed = client.get("/api/sessions/", params={"status": "transcribed"}).json()[0]
    response = client.post(f"/api/sessions/{transcribed['id']}/extract-notes")
    assert_envelope(response, 500)
