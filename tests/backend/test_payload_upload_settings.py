"""Each payload, upload and processing behaviour of the deployed service is a setting of its own.

Every test starts the contract backend with one setting changed (the contract's own behaviour is
checked by test_routes.py and test_uploads.py, the controls of these).
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.backend.helpers import (
    Backend,
    RawHttp,
    assert_envelope,
    audio_bytes,
    bearer,
    login,
    multipart,
    running_backend,
    seed_email,
    upload,
    upload_head,
    wait_for_status,
)


@contextmanager
def therapist_of(tmp: Path, **env: str) -> Iterator[tuple[Backend, httpx.Client, str, str]]:
    """A backend with ``env``, a client, seed therapist 2's token and one of their patients."""
    with running_backend(tmp, env) as started, started.client() as client:
        token = login(client, seed_email(2))["access_token"]
        patient = client.get("/api/patients/", headers=bearer(token)).json()[0]["id"]
        client.headers.update(bearer(token))
        yield started, client, token, patient


def test_patient_therapist_id_required(tmp_path: Path) -> None:
    """PATIENT_THERAPIST_ID=required: no therapist_id is 422; the caller's own id is 200."""
    with therapist_of(tmp_path, PATIENT_THERAPIST_ID="required") as (_, client, _t, _p):
        error = assert_envelope(client.post("/api/patients/", json={"name": "P"}), 422)
        assert error["details"]["validation_errors"][0]["field"] == "therapist_id"
        me = client.get("/api/v1/me").json()["id"]
        made = client.post("/api/patients/", json={"name": "P", "therapist_id": me})
        assert made.status_code == 200


def test_phone_check_deployed(tmp_path: Path) -> None:
    """PHONE_CHECK=deployed: a phone must start with + or 1-9."""
    with therapist_of(tmp_path, PHONE_CHECK="deployed") as (_, client, _t, _p):
        for phone, status in (("+1 555 123 4567", 200), ("555-123-4567", 200),
                              ("(123) 456-7890", 422), ("0123", 422)):  # fmt: skip
            response = client.post("/api/patients/", json={"name": "P", "phone": phone})
            assert response.status_code == status, (phone, response.text)


def test_upload_magic_check_false(tmp_path: Path) -> None:
    """UPLOAD_MAGIC_CHECK=false: non-audio bytes under an audio name and type are accepted."""
    with therapist_of(tmp_path, UPLOAD_MAGIC_CHECK="false") as (_, client, token, patient):
        text = b"plain text, not audio " * 100
        accepted = upload(client, token, patient, text, filename="x.wav", content_type="audio/wav")
        assert accepted.status_code == 200, accepted.text
        tiny = upload(client, token, patient, b"tiny")  # the other checks still hold
        assert_envelope(tiny, 400)


def test_upload_row_before_check(tmp_path: Path) -> None:
    """UPLOAD_ROW_BEFORE_CHECK=true: a refused tiny or non-audio upload leaves a `failed` row."""
    with therapist_of(tmp_path, UPLOAD_ROW_BEFORE_CHECK="true") as (_, client, token, patient):
        failed = {"status": "failed", "limit": 1000}
        before = {s["id"] for s in client.get("/api/sessions/", params=failed).json()}
        tiny = audio_bytes(size=100)
        assert_envelope(upload(client, token, patient, tiny, filename="t.mp3"), 400)
        assert_envelope(upload(client, token, patient, b"x" * 4096, filename="n.mp3"), 400)
        assert_envelope(upload(client, token, patient, audio_bytes(), filename="a.txt"), 400)
        after = client.get("/api/sessions/", params=failed).json()
        new = {s["audio_filename"]: s["error_message"] for s in after if s["id"] not in before}
        assert set(new) == {"t.mp3", "n.mp3"}  # a refused name leaves no row: it is checked first
        assert "too small" in new["t.mp3"] and "magic" in new["n.mp3"]


def test_upload_size_check_after_body(tmp_path: Path) -> None:
    """UPLOAD_SIZE_CHECK=after-body: no 413 until the whole oversized body has arrived."""
    env = {"UPLOAD_SIZE_CHECK": "after-body", "MAX_UPLOAD_BYTES": str(32 * 1024)}
    with therapist_of(tmp_path, **env) as (started, _, token, patient):
        body, content_type = multipart(audio_bytes(size=100 * 1024))
        connection = RawHttp(started.process.port, timeout=0.5)
        try:
            connection.send(upload_head(token, patient, content_type, length=len(body)))
            with pytest.raises(TimeoutError):
                connection.read_response()  # streaming mode answers 413 on the declared length
            connection.sock.settimeout(10)
            connection.send(body)
            assert connection.read_response()[0] == 413
        finally:
            connection.close()


def test_upload_session_therapist_first(tmp_path: Path) -> None:
    """UPLOAD_SESSION_THERAPIST=first: the session belongs to loadtest-001, not the patient's."""
    env = {"UPLOAD_SESSION_THERAPIST": "first"}
    with therapist_of(tmp_path, **env) as (_, client, token, patient):
        first = login(client, seed_email(1))["access_token"]
        first_id = client.get("/api/v1/me", headers=bearer(first)).json()["id"]
        session = upload(client, token, patient, audio_bytes()).json()
        assert session["therapist_id"] == first_id
        assert client.get(f"/api/sessions/{session['id']}").status_code == 404  # not the caller's


def test_processing_model_missing_key(tmp_path: Path) -> None:
    """PROCESSING_MODEL=missing-key: uploads flip to `failed` at once; extract-notes is 500."""
    env = {"PROCESSING_MODEL": "missing-key"}
    with therapist_of(tmp_path, **env) as (_, client, token, patient):
        session = upload(client, token, patient, audio_bytes()).json()
        body, seconds = wait_for_status(client, session["id"], "failed")
        assert body["error_message"] == "OPENAI_API_KEY not found in environment"
        assert seconds < 1.0
        transcribed = client.get("/api/sessions/", params={"status": "transcribed"}).json()[0]
        assert_envelope(client.post(f"/api/sessions/{transcribed['id']}/extract-notes"), 500)
        missing = client.post(f"/api/sessions/{uuid.uuid4()}/extract-notes")
        assert_envelope(missing, 404)  # an unknown session is still 404
