"""contract.accounts: the refresh margin scales with the token's lifetime; a refused refresh keeps
a token that is still good and tries again later."""

from __future__ import annotations

import json

import pytest

from loadkit.contract import accounts, api, jwt
from tests.loadkit.test_accounts import TokenServer, manager
from tests.loadkit.test_accounts import accounts as account_list


def _jwt(claims: dict) -> str:
    head = jwt.b64(json.dumps({"alg": "HS256"}).encode())
    return f"{head}.{jwt.b64(json.dumps(claims).encode())}.c2ln"


def test_a_short_lived_token_refreshes_a_tenth_of_its_lifetime_before_expiry() -> None:
    """A 60 s token (expires_in) gets a 6 s margin: fresh, it does not need a refresh yet."""
    token = api.parse_token_response({"access_token": "a", "expires_in": 60}, now=1000.0)
    assert accounts.refresh_margin_s(token) == 6.0
    assert not token.needs_refresh(1050.0, accounts.refresh_margin_s(token))
    assert token.needs_refresh(1054.0, accounts.refresh_margin_s(token))


def test_a_long_lived_token_keeps_the_fixed_margin() -> None:
    """A 30 min token refreshes REFRESH_MARGIN_S (120 s) before it expires."""
    token = api.parse_token_response({"access_token": "a", "expires_in": 1800}, now=0.0)
    assert accounts.refresh_margin_s(token) == accounts.REFRESH_MARGIN_S


def test_a_cached_token_reads_its_lifetime_from_its_claims() -> None:
    """Without expires_in (read back from the cache file) a JWT's exp - iat gives the lifetime;
    a token that says nothing keeps the fixed margin."""
    jwt_token = api.Token(_jwt({"iat": 100, "exp": 130}), None, 130.0)
    assert accounts.refresh_margin_s(jwt_token) == 3.0
    opaque = api.Token("opaque", None, 130.0)
    assert accounts.refresh_margin_s(opaque) == accounts.REFRESH_MARGIN_S


def test_a_refused_refresh_keeps_a_valid_token_and_retries_later(
    token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh refused with 60 s left: the token is kept (no login) until the retry time; then
    the refresh is tried again and, answered, rotates the token (one login in all)."""
    token_server.expires_in = 60
    monkeypatch.setattr(accounts, "REFRESH_FRACTION", 1.0)  # inside the margin from the start
    tokens = manager(token_server)
    account = account_list(1)[0]
    first = tokens.token(account)
    token_server.refuse_refresh = True
    assert tokens.token(account).access_token == first.access_token  # refused: kept
    assert tokens.token(account).access_token == first.access_token  # no retry before its time
    assert token_server.refreshes == 0 and token_server.logins == {"t0@x.io": 1}
    token_server.refuse_refresh = False
    token_server.valid_refresh.add(first.refresh_token)  # refused as by a limit: not consumed
    tokens._retry_at[account.email] = 0.0  # the retry time has come
    assert tokens.token(account).access_token != first.access_token
    assert token_server.refreshes == 1 and token_server.logins == {"t0@x.io": 1}
