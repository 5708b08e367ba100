"""Access and refresh tokens: expiry, tampering, wrong kind, rotation, reuse and logout."""

import time
import uuid

import httpx
import jwt
import pytest

from tests.backend.helpers import (
    JWT_SECRET,
    assert_envelope,
    bearer,
    login,
    seed_email,
)

BACKEND_ENV: dict[str, str] = {}  # the conftest's backend, with the known JWT_SECRET


@pytest.fixture(scope="module")
def user_id(client: httpx.Client) -> str:
    """Seed therapist 1's id."""
    token = login(client, seed_email(1))["access_token"]
    return client.get("/api/v1/me", headers=bearer(token)).json()["id"]


def forge(claims: dict, secret: str = JWT_SECRET) -> str:
    """A token signed with ``secret``."""
    return jwt.encode(claims, secret, algorithm="HS256")


def test_valid_forged_token_is_accepted(client: httpx.Client, user_id: str) -> None:
    """Control: a token built like the server's, with its secret, is accepted."""
    now = int(time.time())
    token = forge({"sub": user_id, "type": "access", "role": "therapist", "exp": now + 60})
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_expired_token_is_401(client: httpx.Client, user_id: str) -> None:
    """An access token past its expiry is refused."""
    token = forge({"sub": user_id, "type": "access", "exp": int(time.time()) - 5})
    assert_envelope(client.get("/api/v1/me", headers=bearer(token)), 401)


def test_tampered_token_is_401(client: httpx.Client, user_id: str) -> None:
    """A token with another secret, an edited payload or no expiry is refused."""
    exp = int(time.time()) + 60
    wrong_secret = forge({"sub": user_id, "type": "access", "exp": exp}, secret="other" * 10)
    header, payload, signature = login(client, seed_email(2))["access_token"].split(".")
    other = forge({"sub": user_id, "type": "access", "exp": exp}).split(".")[1]
    spliced = ".".join([header, other, signature])
    no_exp = forge({"sub": user_id, "type": "access"})
    unsigned = jwt.encode({"sub": user_id, "type": "access", "exp": exp}, None, algorithm="none")
    for token in (wrong_secret, spliced, no_exp, unsigned, f"{header}.{payload}.AAAA"):
        assert_envelope(client.get("/api/v1/me", headers=bearer(token)), 401)


def test_wrong_kind_or_subject_is_401(client: httpx.Client) -> None:
    """A refresh-type JWT, a garbage subject or a vanished user cannot act as an access token."""
    exp = int(time.time()) + 60
    for claims in ({"sub": str(uuid.uuid4()), "type": "refresh", "exp": exp},
                   {"sub": "not-a-uuid", "type": "access", "exp": exp},
                   {"sub": str(uuid.uuid4()), "type": "access", "exp": exp}):  # fmt: skip
        assert_envelope(client.get("/api/v1/me", headers=bearer(forge(claims))), 401)


def test_malformed_authorization_headers_are_401(client: httpx.Client) -> None:
    """Basic auth, an empty bearer and a bare token are refused with WWW-Authenticate."""
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer x y", "token-without-scheme"):
        response = client.get("/api/patients/", headers={"Authorization": value})
        assert_envelope(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def test_refresh_rotates_and_reuse_is_401(client: httpx.Client) -> None:
    """Refreshing returns new tokens; the old refresh token is then refused, the new one works."""
    first = login(client, seed_email(3))
    second = client.post("/api/v1/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    tokens = second.json()
    assert tokens["refresh_token"] != first["refresh_token"] and tokens["expires_in"] == 1800
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).status_code == 200
    reuse = client.post("/api/v1/refresh", json={"refresh_token": first["refresh_token"]})
    assert_envelope(reuse, 401)
    third = client.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert third.status_code == 200


def test_refresh_refusals(client: httpx.Client) -> None:
    """Unknown, empty and access tokens are not refresh tokens."""
    access = login(client, seed_email(4))["access_token"]
    for token in ("unknown-token", access):
        assert_envelope(client.post("/api/v1/refresh", json={"refresh_token": token}), 401)
    assert_envelope(client.post("/api/v1/refresh", json={"refresh_token": ""}), 422)
    assert_envelope(client.post("/api/v1/refresh", json={}), 422)


def test_logout_revokes_only_own_token(client: httpx.Client) -> None:
    """Logout revokes the caller's refresh token; another user's token cannot be revoked."""
    mine, theirs = login(client, seed_email(1)), login(client, seed_email(2))
    headers = bearer(mine["access_token"])
    foreign = client.post("/api/v1/logout", json={"refresh_token": theirs["refresh_token"]},
                          headers=headers)  # fmt: skip
    assert_envelope(foreign, 401)
    out = client.post(
        "/api/v1/logout", json={"refresh_token": mine["refresh_token"]}, headers=headers
    )
    assert out.status_code == 200
    again = client.post(
        "/api/v1/logout", json={"refresh_token": mine["refresh_token"]}, headers=headers
    )
    assert_envelope(again, 401)
    assert_envelope(
        client.post("/api/v1/refresh", json={"refresh_token": mine["refresh_token"]}), 401
    )
    refreshed = client.post("/api/v1/refresh", json={"refresh_token": theirs["refresh_token"]})
    assert refreshed.status_code == 200


def test_logout_ends_the_access_token_that_called_it(client: httpx.Client) -> None:
    """After logout the access token that called it is 401; another login's token still works."""
    mine, other = login(client, seed_email(3)), login(client, seed_email(3))
    headers = bearer(mine["access_token"])
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    out = client.post("/api/v1/logout", json={"refresh_token": mine["refresh_token"]},
                      headers=headers)  # fmt: skip
    assert out.status_code == 200
    assert_envelope(client.get("/api/v1/me", headers=headers), 401)
    assert client.get("/api/v1/me", headers=bearer(other["access_token"])).status_code == 200
