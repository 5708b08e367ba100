"""The one way the project's tests start the reference backend, and the accounts it seeds.

`running_backend` starts `python -m reference_backend` (reference_backend.process.start_backend)
on a fresh SQLite file with cheap password hashing, and stops it afterwards; the `backend_factory`
fixture (tests/conftest.py) does the same for any number of backends in one test, each with its
own settings. FAST_ENV raises every limit out of the way; CONTRACT_LIMITS restores the contract's
limits (the probes judge them); DEPLOYED_ENV is the deployed preset.
"""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from reference_backend.process import BackendProcess, start_backend

LIMIT_NAMES = ("DEFAULT", "LOGIN", "SIGNUP", "REFRESH", "UPLOAD", "EXTRACT")
JWT_SECRET = "test-secret-" + "x" * 40
SEED_PASSWORD = "LoadTest@2026"
HIGH_LIMIT = "100000/minute"
FAST_ENV = {
    "BCRYPT_ROUNDS": "4",
    "SEED_ACCOUNTS": "4",
    "SEED_PASSWORD": SEED_PASSWORD,
    "JWT_SECRET": JWT_SECRET,
    "PROCESSING_DELAY_SECONDS": "0.05",
    "RATE_LIMIT_STORAGE": "memory://",
    "LOG_LEVEL": "warning",
    **{f"RATE_LIMIT_{n}": HIGH_LIMIT for n in LIMIT_NAMES},
}
CONTRACT_LIMITS: dict[str, str | None] = {f"RATE_LIMIT_{n}": None for n in LIMIT_NAMES}
DEPLOYED_ENV = {
    **FAST_ENV,
    "REFERENCE_BEHAVIOUR": "deployed",
    "RATE_LIMIT_DEFAULT": None,  # left to the preset: no default limit
    "DB_POOL_SIZE": None,
    "DB_MAX_OVERFLOW": None,
}


@dataclass
class Backend:
    """A started backend with the paths a test inspects."""

    process: BackendProcess
    url: str
    upload_dir: Path
    db_path: Path | None

    @property
    def pid(self) -> int:
        """The server's process id (its workers are its children)."""
        return self.process.pid

    def client(self) -> httpx.Client:
        """A new HTTP client bound to this backend."""
        return httpx.Client(base_url=self.url, timeout=30)


@contextmanager
def running_backend(
    tmp: Path,
    env: Mapping[str, str | None] | None = None,
    *,
    database_url: str | None = None,
    workers: int = 1,
) -> Iterator[Backend]:
    """Start a backend on a fresh SQLite file in ``tmp`` (or ``database_url``) and stop it after.

    ``env`` overrides FAST_ENV; a value of None leaves that variable unset.
    """
    db_path = None if database_url else tmp / "backend.db"
    upload_dir = tmp / "uploads"
    merged = {
        **FAST_ENV,
        "DATABASE_URL": database_url or f"sqlite:///{db_path}",
        "UPLOAD_DIR": str(upload_dir),
        **(env or {}),
    }
    full_env = {k: v for k, v in merged.items() if v is not None}
    process = start_backend(env=full_env, workers=workers, log_path=tmp / "backend.log")
    try:
        yield Backend(process, process.url, upload_dir, db_path)
    finally:
        process.stop()


def seed_email(number: int) -> str:
    """A seeded therapist's address."""
    return f"loadtest-{number:03d}@example.com"


def write_accounts(path: Path, count: int, password: str = SEED_PASSWORD) -> Path:
    """A JSON accounts file (`--accounts`) of the first ``count`` seed therapists."""
    rows = [{"email": seed_email(n), "password": password} for n in range(1, count + 1)]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path
