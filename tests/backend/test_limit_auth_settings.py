"""Each limiter and auth behaviour of the deployed service is a setting of its own.

Every test starts the contract backend with one setting changed and checks that setting's
behaviour, and that the rest stays as the contract says.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.backend.helpers import (
    DEPLOYED_ENV,
    RawHttp,
    assert_envelope,
    assert_limit_500,
    assert_rate_limited,
    bearer,
    login,
    raw_request,
    running_backend,
    seed_email,
)
from tests.backend.helpers import Backend as Started

WRONG = "Wrong@Pass1234"


@contextmanager
def backend_with(tmp: Path, **env: str) -> Iterator[tuple[Started, httpx.Client]]:
    """A contract backend with ``env`` set, and a client for it."""
    with running_backend(tmp, env) as started, started.client() as client:
        yield started, client


def _bad_login(client: httpx.Client, number: int) -> httpx.Response:
    return client.post("/api/v1/login", json={"email": seed_email(number), "password": WRONG})


def test_limit_key_address_shares_login_and_default_budgets(tmp_path: Path) -> None:
    """LIMIT_KEY=address: logins of different emails and reads of different users share one key."""
    env = {"LIMIT_KEY": "address", "RATE_LIMIT_LOGIN": "3 per 10 seconds"}
    with backend_with(tmp_path, **env, RATE_LIMIT_DEFAULT="4/minute") as (_, client):
        alice, bob = login(client, seed_email(1)), login(client, seed_email(2))
        assert _bad_login(client, 3).status_code == 401
        assert_rate_limited(_bad_login(client, 4), 10)  # a fourth email, the same address
        for tokens in (alice, alice, bob, bob):
            assert client.get("/api/patients/", headers=bearer(tokens["access_token"])).is_success
        assert_rate_limited(client.get("/api/patients/", headers=bearer(bob["access_token"])), 60)


def test_contract_login_key_is_address_and_email(tmp_path: Path) -> None:
    """Control: by default another email still logs in after one email used its budget."""
    with backend_with(tmp_path, RATE_LIMIT_LOGIN="2 per 10 seconds") as (_, client):
        assert [_bad_login(client, 1).status_code for _ in range(2)] == [401, 401]
        assert_rate_limited(_bad_login(client, 1), 10)
        assert _bad_login(client, 2).status_code == 401


def test_limit_response_500_closes_the_connection(tmp_path: Path) -> None:
    """LIMIT_RESPONSE=500: over a limit, a 500 envelope without Retry-After, connection closed."""
    with backend_with(tmp_path, LIMIT_RESPONSE="500", RATE_LIMIT_LOGIN="2 per 10 seconds") as (
        started,
        client,
    ):
        assert [_bad_login(client, 1).status_code for _ in range(2)] == [401, 401]
        assert_limit_500(_bad_login(client, 1))
        body = json.dumps({"email": seed_email(1), "password": WRONG}).encode()
        request = raw_request("POST", "/api/v1/login", body, Content_Type="application/json")
        connection = RawHttp(started.process.port)
        try:
            connection.send(request)
            assert connection.read_response()[0] == 500
            with pytest.raises(OSError):
                connection.send(request)
                connection.read_response()
        finally:
            connection.close()


def test_rate_limit_default_none(tmp_path: Path) -> None:
    """RATE_LIMIT_DEFAULT=none: no default limit (130 reads by one user pass), others apply."""
    env = {"RATE_LIMIT_DEFAULT": "none", "RATE_LIMIT_LOGIN": "2 per 10 seconds"}
    with backend_with(tmp_path, **env) as (_, client):
        headers = bearer(login(client, seed_email(1))["access_token"])
        statuses = {client.get("/api/sessions/?limit=1", headers=headers).status_code
                    for _ in range(130)}  # fmt: skip
        assert statuses == {200}
        assert _bad_login(client, 1).status_code == 401
        assert_rate_limited(_bad_login(client, 1), 10)


def test_auth_on_data_routes_false(tmp_path: Path) -> None:
    """AUTH_ON_DATA_ROUTES=false: data routes answer without a token; /me still needs one."""
    with backend_with(tmp_path, AUTH_ON_DATA_ROUTES="false") as (_, client):
        listed = client.get("/api/sessions/", params={"limit": 3})
        assert listed.status_code == 200 and listed.json()
        assert client.get(f"/api/sessions/{listed.json()[0]['id']}").status_code == 200
        assert client.get("/api/patients/").status_code == 200
        assert_envelope(client.get("/api/v1/me"), 401)
        mine = bearer(login(client, seed_email(1))["access_token"])
        me = client.get("/api/v1/me", headers=mine).json()["id"]
        scoped = client.get("/api/patients/", headers=mine).json()  # ownership still applies
        assert scoped and {p["therapist_id"] for p in scoped} == {me}


def test_missing_auth_status_403(tmp_path: Path) -> None:
    """MISSING_AUTH_STATUS=403: no Authorization header is 403; a bad token stays 401."""
    with backend_with(tmp_path, MISSING_AUTH_STATUS="403") as (_, client):
        assert_envelope(client.get("/api/patients/"), 403)
        assert_envelope(client.get("/api/v1/me"), 403)
        assert_envelope(client.get("/api/patients/", headers=bearer("x.y.z")), 401)


def test_ownership_checks_false(tmp_path: Path) -> None:
    """OWNERSHIP_CHECKS=false: any token reads anyone's rows; lists hold everyone's."""
    with backend_with(tmp_path, OWNERSHIP_CHECKS="false") as (_, client):
        alice = bearer(login(client, seed_email(1))["access_token"])
        bob = bearer(login(client, seed_email(2))["access_token"])
        bob_id = client.get("/api/v1/me", headers=bob).json()["id"]
        newest = client.post("/api/patients/", json={"name": "Bob's"}, headers=bob).json()
        listed = client.get("/api/patients/", headers=alice).json()
        assert listed[0]["id"] == newest["id"] and len({p["therapist_id"] for p in listed}) > 1
        assert client.get(f"/api/patients/{newest['id']}", headers=alice).status_code == 200
        sessions = client.get("/api/sessions/", headers=alice, params={"limit": 1000}).json()
        assert bob_id in {s["therapist_id"] for s in sessions}
        assert_envelope(client.get("/api/patients/"), 401)  # auth is still required


def test_ownership_is_the_default(tmp_path: Path) -> None:
    """Control: by default another therapist's patient is 404 and lists hold one's own rows."""
    with backend_with(tmp_path) as (_, client):
        alice = bearer(login(client, seed_email(1))["access_token"])
        bob = bearer(login(client, seed_email(2))["access_token"])
        theirs = client.post("/api/patients/", json={"name": "Bob's"}, headers=bob).json()
        assert_envelope(client.get(f"/api/patients/{theirs['id']}", headers=alice), 404)
        listed = client.get("/api/patients/", headers=alice).json()
        assert theirs["id"] not in {p["id"] for p in listed}


def test_per_worker_limits_allowed_with_workers(tmp_path: Path) -> None:
    """ALLOW_PER_WORKER_LIMITS=true: --workers 2 starts with the in-memory limiter."""
    env = {"ALLOW_PER_WORKER_LIMITS": "true", "RATE_LIMIT_STORAGE": "memory://"}
    with running_backend(tmp_path, env, workers=2) as started, started.client() as client:
        assert client.get("/health").status_code == 200


def test_deployed_workers_each_grant_their_own_quota(tmp_path: Path) -> None:
    """Deployed, --workers 2: limits live per worker, so one address gets up to twice its quota."""
    env = {**DEPLOYED_ENV, "RATE_LIMIT_LOGIN": "2/minute"}
    with running_backend(tmp_path, env, workers=2) as started:
        body = {"email": seed_email(1), "password": WRONG}
        statuses = []
        for _ in range(30):  # a new connection each time, so both workers take some
            statuses.append(httpx.post(f"{started.url}/api/v1/login", json=body).status_code)
    assert set(statuses) == {401, 500}
    assert 2 < statuses.count(401) <= 4, statuses
