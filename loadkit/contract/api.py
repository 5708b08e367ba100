"""The TherapyBridge API contract in code: routes, payloads, test accounts and tokens.

Client-agnostic and synchronous: HTTP is done by the caller (Locust's client, aiohttp, httpx),
which hands this module callables. Passwords and tokens never appear in a repr or an error message.
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import sys
import time
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Routes (templates use {id}; endpoints are keyed "METHOD template", never by concrete ids).
ROOT = "/"
HEALTH = "/health"
READY = "/ready"
LIVE = "/live"
SIGNUP = "/api/v1/signup"
LOGIN = "/api/v1/login"
REFRESH = "/api/v1/refresh"
LOGOUT = "/api/v1/logout"
ME = "/api/v1/me"
PATIENTS = "/api/patients/"
PATIENT = "/api/patients/{id}"
SESSIONS = "/api/sessions/"
SESSION = "/api/sessions/{id}"
SESSION_UPLOAD = "/api/sessions/upload"
SESSION_NOTES = "/api/sessions/{id}/notes"
SESSION_EXTRACT_NOTES = "/api/sessions/{id}/extract-notes"
NO_AUTH_ROUTES = (ROOT, HEALTH, READY, LIVE)

UPLOAD_FIELD = "file"
UPLOAD_CONTENT_TYPE = "audio/wav"
REFUSED_WITHOUT_TOKEN = (401, 403)
SESSION_STATUSES = (
    "pending",
    "uploading",
    "transcribing",
    "transcribed",
    "extracting_notes",
    "processed",
    "failed",
)

SEED_EMAIL_FORMAT = "loadtest-{:03d}@example.com"
DEFAULT_SEED_ACCOUNTS = 100
DEFAULT_SEED_PASSWORD = "LoadTest@2026"


def endpoint(method: str, template: str) -> str:
    """The report's key of an endpoint: "GET /api/sessions/{id}"."""
    return f"{method.upper()} {template}"


def path(template: str, **ids: object) -> str:
    """A concrete path from a template: path(SESSION, id=sid) -> "/api/sessions/<sid>"."""
    return template.format(**ids)


def upload_path(patient_id: object) -> str:
    """The upload URL path; patient_id is a query parameter, not a form field."""
    return f"{SESSION_UPLOAD}?patient_id={patient_id}"


def auth_headers(access_token: str) -> dict[str, str]:
    """The Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {access_token}"}


# Payload factories -------------------------------------------------------------------------------

WAV_RATE = 16_000
_WAV_HEADER = 44


@lru_cache(maxsize=8)
def _one_second_of_audio(seed: int) -> bytes:
    """One second of 16-bit mono PCM: a tone (set by the seed) plus noise; tiles without a seam."""
    rng = random.Random(seed)
    freq = 220 + 20 * (seed % 20)  # whole cycles per second: the block repeats seamlessly
    samples = array(
        "h",
        (
            int(8000 * math.sin(2 * math.pi * freq * i / WAV_RATE) + rng.gauss(0, 1200))
            for i in range(WAV_RATE)
        ),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def wav_bytes(size_bytes: int = 64 * 1024, *, seed: int = 0) -> bytes:
    """A real RIFF/WAVE file (16 kHz, 16-bit mono PCM) of exactly ``size_bytes`` (at least 1 KB).

    Deterministic for a seed. An odd size ends with one padding byte after the (even) data chunk.
    """
    if size_bytes < 1024:
        raise ValueError(f"wav_bytes needs at least 1024 bytes, got {size_bytes}")
    data_len = (size_bytes - _WAV_HEADER) & ~1
    block = _one_second_of_audio(seed)
    data = (block * (data_len // len(block) + 1))[:data_len]
    header = b"RIFF" + struct.pack("<I", size_bytes - 8) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, WAV_RATE, WAV_RATE * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_len)
    return header + data + b"\0" * (size_bytes - _WAV_HEADER - data_len)


def patient_payload(rng: random.Random) -> dict:
    """A new patient's body: name, email and phone drawn from ``rng``."""
    n = rng.randrange(10**8)
    return {
        "name": f"Load Test Patient {n:08d}",
        "email": f"patient-{n:08d}@example.com",
        "phone": f"+1555{rng.randrange(10**7):07d}",
    }


def strong_password(rng: random.Random | None = None) -> str:
    """A password the contract accepts: 12+ chars with lower, upper, digit and a symbol."""
    token = (rng or random.SystemRandom()).getrandbits(64)
    return f"Lt@{token:016x}9Z"


def signup_payload(
    *, rng: random.Random | None = None, role: str = "therapist", domain: str = "example.com"
) -> dict:
    """A new user's signup body with a unique email and a valid password."""
    tag = uuid.UUID(int=rng.getrandbits(128)).hex if rng else uuid.uuid4().hex
    return {
        "email": f"loadtest-signup-{tag[:16]}@{domain}",
        "password": strong_password(rng),
        "first_name": "Load",
        "last_name": f"Test{tag[:6]}",
        "role": role,
    }


# Accounts ----------------------------------------------------------------------------------------


class AccountsError(ValueError):
    """The account list cannot be used (one line, never a password)."""


@dataclass(frozen=True)
class Account:
    """A test account; its repr hides the password."""

    email: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Account(email={self.email!r}, password='***')"

    def login_body(self) -> dict[str, str]:
        """The body of POST /api/v1/login."""
        return {"email": self.email, "password": self.password}


def seed_accounts(count: int | None = None, password: str | None = None) -> list[Account]:
    """The reference backend's seed accounts (SEED_ACCOUNTS, SEED_PASSWORD or their defaults)."""
    count = (
        count if count is not None else int(os.environ.get("SEED_ACCOUNTS", DEFAULT_SEED_ACCOUNTS))
    )
    password = password or os.environ.get("SEED_PASSWORD") or DEFAULT_SEED_PASSWORD
    return [Account(SEED_EMAIL_FORMAT.format(i), password) for i in range(1, count + 1)]


def _parse_accounts(source: str, data: object) -> list[Account]:
    if not isinstance(data, list) or not data:
        raise AccountsError(f"{source}: expected a non-empty JSON list of {{email, password}}")
    accounts = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("email", "password")
        ):
            raise AccountsError(f"{source}: entry {i} needs string fields 'email' and 'password'")
        accounts.append(Account(item["email"], item["password"]))
    return accounts


def _read_accounts_file(file: str) -> list[Account]:
    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccountsError(f"{file}: cannot read accounts file ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AccountsError(f"{file}: accounts file is not valid JSON ({exc})") from None
    return _parse_accounts(file, data)


def load_accounts(path: str | None = None) -> list[Account]:
    """Accounts, first found wins: ``path`` (--accounts), LOADTEST_ACCOUNTS, the seed accounts."""
    file = path or os.environ.get("LOADTEST_ACCOUNTS", "").strip()
    return _read_accounts_file(file) if file else seed_accounts()


def shard(accounts: Sequence[Account], index: int, count: int) -> list[Account]:
    """Worker ``index`` of ``count``'s disjoint share of the accounts (round robin)."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} outside 0..{count - 1}")
    share = list(accounts[index::count])
    if not share:
        raise AccountsError(f"worker {index} of {count} gets no account: only {len(accounts)}")
    return share


# Tokens ------------------------------------------------------------------------------------------


class LoginError(Exception):
    """Login refused or failed; the message names the account and status, never a secret."""

    def __init__(self, account_email: str, status: int | None, detail: str = "") -> None:
        self.account_email, self.status, self.detail = account_email, status, detail
        shown = "no response" if status is None else f"HTTP {status}"
        line = " ".join(str(detail).split())[:200]
        super().__init__(
            f"login failed for {account_email}: {shown}" + (f" ({line})" if line else "")
        )


@dataclass
class Token:
    """An access/refresh token pair; ``expires_at`` is wall-clock (time.time()): it outlives the
    process that got it (`loadkit.contract.token_store` keeps it in a file)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    lifetime_s: float | None = field(default=None, compare=False)  # expires_in, when answered

    def needs_refresh(self, now: float | None = None, margin_s: float = 60.0) -> bool:
        """Whether the access token expires within ``margin_s`` seconds."""
        return (time.time() if now is None else now) >= self.expires_at - margin_s


def parse_token_response(body: dict, now: float) -> Token:
    """A Token from a login/refresh/signup body; ``now`` is time.time() when it was sent."""
    access = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access, str) or not access:
        raise ValueError("token response lacks an access_token")
    expires_in = body.get("expires_in", 1800)
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        expires_in = 1800
    return Token(access, body.get("refresh_token"), now + float(expires_in), float(expires_in))
