"""What a large-upload scenario relies on: the server's own timestamps of an upload and its
processing, `failed` with an error message, a 413 while the body streams (the server answers
before the body ends and closes the connection), and disk reclaimed for a refused upload."""

import time
from datetime import datetime

import httpx
import pytest

from tests.backend.helpers import Backend, bearer, login, seed_email, wait_for_status
from tests.backend.streaming import disk_used, stream_upload

LIMIT = 4_000_000
DELAY = 0.25
STAGES = 4  # each waits DELAY: uploading -> transcribing -> transcribed -> extracting -> processed
CLOCK_SLACK = 0.01  # seconds: the server's and the test's reading of the same clock

BACKEND_ENV = {"MAX_UPLOAD_BYTES": str(LIMIT), "PROCESSING_DELAY_SECONDS": str(DELAY)}


@pytest.fixture(scope="module")
def token(client: httpx.Client) -> str:
    """Seed therapist 1's access token (also set on the module's client)."""
    access = login(client, seed_email(1))["access_token"]
    client.headers.update(bearer(access))
    return access


@pytest.fixture(scope="module")
def patient_id(client: httpx.Client, token: str) -> str:
    """One of seed therapist 1's patients."""
    return client.get("/api/patients/").json()[0]["id"]


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _grown_disk(backend: Backend, before: int, timeout: float = 3.0) -> int:
    """Disk used under the upload folder once the server flushed 1 MB more than ``before``
    (polled for ``timeout`` s; the last reading either way)."""
    deadline = time.monotonic() + timeout
    used = disk_used(backend.upload_dir)
    while used < before + 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.02)
        used = disk_used(backend.upload_dir)
    return used


def test_server_sets_created_and_processed_at(
    backend: Backend, client: httpx.Client, token: str, patient_id: str
) -> None:
    """created_at is set by the server between the upload's first byte and its answer;
    processed_at when the last stage ends, at least STAGES x DELAY later, before a poll saw it."""
    sent_at = time.time()
    done = stream_upload(backend.process.port, token, patient_id, 3_000_000)
    answered_at = time.time()
    assert done.status == 200, done.body
    session = httpx.Response(200, content=done.body).json()
    assert session["status"] == "uploading" and session["processed_at"] is None
    created = _stamp(session["created_at"])
    assert sent_at - CLOCK_SLACK <= created <= answered_at + CLOCK_SLACK
    body, _ = wait_for_status(client, session["id"], "processed")
    seen_at = time.time()
    processed = _stamp(body["processed_at"])
    assert created + STAGES * DELAY <= processed <= seen_at + CLOCK_SLACK
    assert _stamp(body["created_at"]) == created and body["error_message"] is None


def test_failed_processing_sets_error_message(
    backend: Backend, client: httpx.Client, token: str, patient_id: str
) -> None:
    """A job that fails (its audio file vanished) ends `failed` with an error_message naming the
    cause; processed_at stays null and updated_at is when it failed."""
    done = stream_upload(backend.process.port, token, patient_id, 100_000)
    session = httpx.Response(200, content=done.body).json()
    (backend.upload_dir / f"{session['id']}.wav").unlink()  # before the 2nd stage reads it
    body, _ = wait_for_status(client, session["id"], "failed")
    assert "missing" in body["error_message"] and session["id"] in body["error_message"]
    assert body["processed_at"] is None and body["transcript_text"] is None
    failed_after = _stamp(body["updated_at"]) - _stamp(body["created_at"])
    assert failed_after >= 2 * DELAY - CLOCK_SLACK


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_oversize_is_refused_while_streaming_and_closed(
    backend: Backend, token: str, patient_id: str, chunked: bool
) -> None:
    """A 32 MB body over a 4 MB limit gets 413 with `Connection: close` before the client has sent
    it all, and the server closes the connection (the client stops sending)."""
    done = stream_upload(
        backend.process.port, token, patient_id, 8 * LIMIT, chunked=chunked, check_closed=True
    )
    assert done.status == 413 and b'"payload_too_large"' in done.body
    assert done.headers["connection"] == "close" and done.closed is True
    assert done.sent < done.total / 2, f"sent {done.sent} of {done.total} before the answer"
    if chunked:
        assert done.sent > LIMIT  # refused on the bytes that passed the limit, not earlier


def test_refused_upload_gives_back_its_disk(backend: Backend, token: str, patient_id: str) -> None:
    """A chunked upload refused past the limit wrote megabytes to the upload folder while it
    streamed; once refused, the folder uses no more disk than before and holds no partial file."""
    before = disk_used(backend.upload_dir)
    during: list[int] = []

    def measure(sent: int) -> None:
        if not during and sent >= 3_000_000:
            during.append(_grown_disk(backend, before))

    done = stream_upload(
        backend.process.port, token, patient_id, 8 * LIMIT, chunked=True, on_sent=measure
    )
    assert done.status == 413
    assert during and during[0] >= before + 1_000_000, (before, during)
    assert disk_used(backend.upload_dir) == before
    assert not list(backend.upload_dir.glob("*.part"))


def test_disconnect_gives_back_its_disk(backend: Backend, token: str, patient_id: str) -> None:
    """A client that hangs up after 3 MB of a large upload (written to disk by then) leaves no
    disk used and no partial file (polled for 5 s)."""
    before = disk_used(backend.upload_dir)
    during: list[int] = []

    def hang_up(sent: int) -> None:
        if sent >= 3_000_000:
            during.append(_grown_disk(backend, before))
            raise ConnectionAbortedError("hang up")

    with pytest.raises(ConnectionAbortedError):
        stream_upload(backend.process.port, token, patient_id, LIMIT - 1000, on_sent=hang_up)
    deadline = time.monotonic() + 5
    while disk_used(backend.upload_dir) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert during[0] >= before + 1_000_000, (before, during)
    assert disk_used(backend.upload_dir) == before
    assert not list(backend.upload_dir.glob("*.part"))


def test_body_under_the_lowered_limit_is_stored(
    backend: Backend, token: str, patient_id: str
) -> None:
    """The lowered limit refuses only what is over it: a body just under it is stored whole."""
    done = stream_upload(backend.process.port, token, patient_id, LIMIT - 10_000, chunked=True)
    assert done.status == 200, done.body
    session_id = httpx.Response(200, content=done.body).json()["id"]
    assert (backend.upload_dir / f"{session_id}.wav").stat().st_size == LIMIT - 10_000
