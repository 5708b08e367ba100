"""Helpers for backend tests: requests, audio payloads, raw sockets, database counts.

Starting a backend is tests/backends.py's job (re-exported here for the backend tests).
"""

import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path

import httpx

from tests.backends import (  # noqa: F401 - re-exported for the backend tests
    DEPLOYED_ENV,
    FAST_ENV,
    JWT_SECRET,
    SEED_PASSWORD,
    Backend,
    running_backend,
    seed_email,
)

MAGIC = {
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00",
    "wav": b"RIFF\x24\x08\x00\x00WAVEfmt ",
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81",
}


def login(client: httpx.Client, email: str, password: str = SEED_PASSWORD) -> dict:
    """Tokens for an account (asserts success)."""
    response = client.post("/api/v1/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def unique_email() -> str:
    """An address no other test uses."""
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def audio_bytes(kind: str = "mp3", size: int = 4096) -> bytes:
    """A payload starting with a real audio magic number, padded to ``size``."""
    head = MAGIC[kind]
    return head + os.urandom(max(0, size - len(head)))


def multipart(
    content: bytes,
    *,
    filename: str = "session.mp3",
    content_type: str = "audio/mpeg",
    field: str = "file",
) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part, and its Content-Type header."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(
    client: httpx.Client, token: str, patient_id: str, content: bytes, **part: str
) -> httpx.Response:
    """POST one file to the upload route."""
    body, content_type = multipart(content, **part)
    headers = {**bearer(token), "Content-Type": content_type}
    return client.post(
        "/api/sessions/upload", params={"patient_id": patient_id}, content=body, headers=headers
    )


def assert_envelope(response: httpx.Response, status: int) -> dict:
    """The response has ``status``, the error envelope and an X-Request-ID; the error body."""
    assert response.status_code == status, response.text
    assert response.headers.get("x-request-id")
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["retriable"], bool)
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return error


def table_counts(db_path: Path) -> dict[str, int]:
    """Row counts of every table, read straight from the SQLite file."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = ("users", "patients", "sessions", "refresh_tokens")
        return {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        connection.close()


def files_in(directory: Path) -> set[str]:
    """Names of the files in a directory (empty when it does not exist)."""
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


class RawHttp:
    """One raw HTTP/1.1 connection, for bodies sent slowly, partially or chunked."""

    def __init__(self, port: int, timeout: float = 15.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, data: bytes) -> None:
        """Send bytes as they are."""
        self.sock.sendall(data)

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        """Read status, headers and the Content-Length body of one response."""
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before a response: {buffer!r}")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body[:length]

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def upload_head(
    token: str, patient_id: str, content_type: str, *, length: int | None = None
) -> bytes:
    """Request line and headers of an upload; chunked unless ``length`` is given."""
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /api/sessions/upload?patient_id={patient_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def scalar(db_path: Path, sql: str) -> int:
    """One number from the SQLite file (read-only)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return connection.execute(sql).fetchone()[0]
    finally:
        connection.close()


def assert_limit_500(response: httpx.Response) -> None:
    """The deployed limiter's refusal: a 500 envelope, no Retry-After, the connection closed."""
    error = assert_envelope(response, 500)
    assert error["code"] == "INTERNAL_SERVER_ERROR"
    assert "retry-after" not in response.headers
    assert response.headers.get("connection") == "close"


def raw_request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """One HTTP/1.1 request (keep-alive) as bytes; header names from keywords (X_Forwarded_For)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def assert_rate_limited(response: httpx.Response, window: int) -> int:
    """A 429 envelope, retriable, with an integer Retry-After within the window; its value."""
    error = assert_envelope(response, 429)
    assert error["retriable"] is True and error["code"] == "rate_limit_exceeded"
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= window
    return int(retry_after)


def wait_for_status(client: httpx.Client, session_id: str, status: str) -> tuple[dict, float]:
    """Poll a session (bounded: 5 s) until it has ``status``; the body and the seconds taken."""
    started = time.monotonic()
    while time.monotonic() - started < 5:
        body = client.get(f"/api/sessions/{session_id}").json()
        if body["status"] == status:
            return body, time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"session {session_id} still {body['status']}, not {status}")
