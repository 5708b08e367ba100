"""The error envelope and X-Request-ID on every kind of error, and no 500 on bad input."""

import httpx
import pytest

from tests.backend.helpers import (
    assert_envelope,
    bearer,
    login,
    seed_email,
)

BACKEND_ENV: dict[str, str] = {}  # the conftest's backend on a fresh SQLite file


@pytest.fixture(scope="module")
def headers(client: httpx.Client) -> dict[str, str]:
    """Authorization for seed therapist 1."""
    return bearer(login(client, seed_email(1))["access_token"])


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    """A client's X-Request-ID comes back; without one, each response gets a fresh id."""
    assert (
        client.get("/live", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    first, second = client.get("/live"), client.get("/live")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    error = assert_envelope(client.get("/nowhere", headers={"X-Request-ID": "req-9"}), 404)
    assert error["request_id"] == "req-9"


def test_unknown_path_and_wrong_method(client: httpx.Client) -> None:
    """404 for an unknown path and 405 for a wrong method, both in the envelope."""
    assert assert_envelope(client.get("/api/nothing-here"), 404)["code"] == "not_found"
    assert assert_envelope(client.delete("/api/v1/login"), 405)["code"] == "method_not_allowed"
    assert_envelope(client.put("/health"), 405)


def test_validation_errors_have_details(client: httpx.Client, headers: dict) -> None:
    """Missing fields and wrong types are 422 with field, message and type per error."""
    error = assert_envelope(client.post("/api/v1/login", json={"email": 5}), 422)
    problems = error["details"]["validation_errors"]
    assert {p["field"] for p in problems} == {"email", "password"}
    assert all(p["message"] and p["type"] for p in problems)
    bad_query = client.get("/api/sessions/", params={"limit": "many"}, headers=headers)
    assert (
        assert_envelope(bad_query, 422)["details"]["validation_errors"][0]["field"] == "query.limit"
    )


MALFORMED_BODIES = [b"{not json", b"", b"[1, 2]", b"null", b'{"email": "a@b.co", "password": ',
                    b'"just a string"']  # fmt: skip


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_malformed_json_is_422_not_500(client: httpx.Client, headers: dict, body: bytes) -> None:
    """Broken or wrongly shaped JSON bodies on every JSON route are 422, never 500."""
    for path in ("/api/v1/login", "/api/v1/signup", "/api/v1/refresh", "/api/patients/"):
        json_headers = {**headers, "Content-Type": "application/json"}
        assert_envelope(client.post(path, content=body, headers=json_headers), 422)


def test_undecodable_body_is_400(client: httpx.Client) -> None:
    """A body that is not UTF-8 at all is a 400 envelope (the body cannot be parsed)."""
    json_headers = {"Content-Type": "application/json"}
    response = client.post("/api/v1/login", content=b"\xff\xfe\x00", headers=json_headers)
    assert_envelope(response, 400)


def test_trailing_slash_redirects(client: httpx.Client, headers: dict) -> None:
    """Collection routes without the slash answer 307 to the slashed path."""
    response = client.get("/api/sessions", headers=headers)
    assert response.status_code == 307 and response.headers["location"].endswith("/api/sessions/")


def test_odd_inputs_never_500(client: httpx.Client, headers: dict) -> None:
    """Huge numbers, odd unicode and absurd query values are refused cleanly or served."""
    probes = [
        client.get("/api/sessions/", params={"limit": "9" * 40}, headers=headers),
        client.get("/api/sessions/", params={"patient_id": "💥"}, headers=headers),
        client.get("/api/patients/%00", headers=headers),
        client.post("/api/patients/", json={"name": "x" * 256}, headers=headers),
        client.post("/api/patients/", json={"name": "ok", "email": "\u0000@x"}, headers=headers),
        client.post("/api/v1/login", json={"email": "a@b.co", "password": "p" * 1025}),
        client.post("/api/v1/login", json={"email": seed_email(1), "password": "é" * 100}),
    ]
    for response in probes:
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert_envelope(response, response.status_code)
