"""Upload checks: accepted media, every refusal, streaming refusal and stalls, leaving no trace."""

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.backend.helpers import (
    Backend,
    RawHttp,
    assert_envelope,
    audio_bytes,
    bearer,
    chunk,
    files_in,
    login,
    multipart,
    seed_email,
    table_counts,
    upload,
    upload_head,
)

MAX_BYTES = 64 * 1024
STALL_SECONDS = 1.0


# A 64 KiB upload limit and a 1 s stall time-out.
BACKEND_ENV = {
    "MAX_UPLOAD_BYTES": str(MAX_BYTES),
    "UPLOAD_BODY_TIMEOUT_SECONDS": str(STALL_SECONDS),
}


@pytest.fixture(scope="module")
def token(client: httpx.Client) -> str:
    """Seed therapist 1's access token."""
    return login(client, seed_email(1))["access_token"]


@pytest.fixture(scope="module")
def patient_id(client: httpx.Client, token: str) -> str:
    """One of seed therapist 1's patients."""
    return client.get("/api/patients/", headers=bearer(token)).json()[0]["id"]


@pytest.fixture
def leaves_no_trace(backend: Backend) -> Iterator[None]:
    """Assert the test adds no file to UPLOAD_DIR and no session row."""
    assert backend.db_path is not None
    files, rows = files_in(backend.upload_dir), table_counts(backend.db_path)["sessions"]
    yield
    assert files_in(backend.upload_dir) == files
    assert table_counts(backend.db_path)["sessions"] == rows


@pytest.mark.parametrize(
    ("kind", "filename", "content_type"),
    [
        ("mp3", "talk.mp3", "audio/mpeg"),
        ("wav", "talk.wav", "audio/wav"),
        ("m4a", "talk.m4a", "audio/mp4"),
        ("webm", "talk.webm", "video/webm"),
        ("mp3", "TALK.MPGA", "audio/mpeg3"),
    ],  # fmt: skip
)
def test_accepted_media_is_stored(
    backend: Backend, client: httpx.Client, token: str, patient_id: str,
    kind: str, filename: str, content_type: str,
) -> None:  # fmt: skip
    """Each allowed format is stored whole on disk and gets a session row."""
    content = audio_bytes(kind, 20_000)
    before = files_in(backend.upload_dir)
    response = upload(
        client, token, patient_id, content, filename=filename, content_type=content_type
    )
    assert response.status_code == 200, response.text
    session = response.json()
    new_files = files_in(backend.upload_dir) - before
    assert new_files == {f"{session['id']}.{filename.rsplit('.', 1)[1].lower()}"}
    assert (backend.upload_dir / new_files.pop()).read_bytes() == content


REFUSALS = [
    ("notes.txt", "audio/mpeg", audio_bytes(), 400),
    ("no_extension", "audio/mpeg", audio_bytes(), 400),
    ("talk.mp3", "text/plain", audio_bytes(), 400),
    ("talk.mp3", "application/octet-stream", audio_bytes(), 400),
    ("talk.mp3", "audio/ogg", audio_bytes(), 415),
    ("talk.mp4", "video/quicktime", audio_bytes(), 415),
    ("talk.mp3", "audio/mpeg", b"%PDF-1.7\n" + b"x" * 4000, 400),
    ("talk.wav", "audio/wav", b"MZ\x90\x00" + b"\x00" * 4000, 400),
    ("talk.mp3", "audio/mpeg", b"<html>" + b" " * 4000, 400),
    ("talk.mp3", "audio/mpeg", audio_bytes("mp3", 1000), 400),
    ("talk.mp3", "audio/mpeg", audio_bytes("mp3", 100 * 1024), 413),
]


@pytest.mark.parametrize(("filename", "content_type", "content", "status"), REFUSALS)
@pytest.mark.usefixtures("leaves_no_trace")
def test_refused_upload_leaves_nothing(
    client: httpx.Client, token: str, patient_id: str,
    filename: str, content_type: str, content: bytes, status: int,
) -> None:  # fmt: skip
    """Bad extension, type, magic number or size is refused with its status and leaves nothing."""
    response = upload(
        client, token, patient_id, content, filename=filename, content_type=content_type
    )
    assert_envelope(response, status)


@pytest.mark.usefixtures("leaves_no_trace")
def test_malformed_requests_are_refused(client: httpx.Client, token: str, patient_id: str) -> None:
    """Wrong field name is 422, a non-multipart body 400, no patient_id 422, foreign patient 404."""
    body, content_type = multipart(audio_bytes(), field="audio")
    headers = {**bearer(token), "Content-Type": content_type}
    params = {"patient_id": patient_id}
    wrong_field = client.post("/api/sessions/upload", params=params, content=body, headers=headers)
    assert_envelope(wrong_field, 422)
    json_body = client.post(
        "/api/sessions/upload", params=params, json={"file": "x"}, headers=bearer(token)
    )
    assert_envelope(json_body, 400)
    no_patient = client.post("/api/sessions/upload", content=body, headers=headers)
    assert_envelope(no_patient, 422)
    bobs = login(client, seed_email(2))["access_token"]
    foreign = upload(client, bobs, patient_id, audio_bytes())
    assert_envelope(foreign, 404)
    good_body, good_type = multipart(audio_bytes("mp3", 8000))
    headers["Content-Type"] = good_type
    truncated = good_body[: len(good_body) // 2]
    cut = client.post("/api/sessions/upload", params=params, content=truncated, headers=headers)
    assert_envelope(cut, 400)


@pytest.mark.usefixtures("leaves_no_trace")
def test_declared_oversize_is_refused_before_the_body(
    backend: Backend, token: str, patient_id: str
) -> None:
    """A Content-Length over the limit gets 413 at once, without sending any body."""
    connection = RawHttp(backend.process.port)
    try:
        connection.send(
            upload_head(token, patient_id, "multipart/form-data; boundary=b", length=10**9)
        )
        status, headers, body = connection.read_response()
    finally:
        connection.close()
    assert status == 413 and b'"payload_too_large"' in body and headers["x-request-id"]


@pytest.mark.usefixtures("leaves_no_trace")
def test_oversize_stream_is_refused_while_streaming(
    backend: Backend, token: str, patient_id: str
) -> None:
    """A chunked body that passes the limit gets 413 although it never ends."""
    body, content_type = multipart(audio_bytes("mp3", 200 * 1024))
    connection = RawHttp(backend.process.port)
    try:
        connection.send(upload_head(token, patient_id, content_type))
        for start in range(0, MAX_BYTES + 16 * 1024, 8 * 1024):
            connection.send(chunk(body[start : start + 8 * 1024]))
        status, _, response = connection.read_response()  # the terminating chunk is never sent
    finally:
        connection.close()
    assert status == 413 and b'"payload_too_large"' in response


@pytest.mark.usefixtures("leaves_no_trace")
def test_stalled_body_times_out(backend: Backend, token: str, patient_id: str) -> None:
    """A body that stops arriving is answered 408 after the stall time-out, leaving nothing."""
    body, content_type = multipart(audio_bytes("mp3", 20_000))
    connection = RawHttp(backend.process.port)
    try:
        connection.send(upload_head(token, patient_id, content_type, length=len(body)))
        connection.send(body[:8000])
        started = time.monotonic()
        status, headers, response = connection.read_response()
        waited = time.monotonic() - started
    finally:
        connection.close()
    assert status == 408 and b'"request_timeout"' in response and headers["x-request-id"]
    assert STALL_SECONDS * 0.8 <= waited < STALL_SECONDS + 10


@pytest.mark.usefixtures("leaves_no_trace")
def test_client_disconnect_leaves_nothing(backend: Backend, token: str, patient_id: str) -> None:
    """A client that hangs up mid-body leaves no partial file and no row."""
    body, content_type = multipart(audio_bytes("mp3", 40_000))
    connection = RawHttp(backend.process.port)
    connection.send(upload_head(token, patient_id, content_type, length=len(body)))
    connection.send(body[:20_000])
    time.sleep(0.3)
    connection.close()
    time.sleep(0.5)
