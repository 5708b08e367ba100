"""Start-up: bad configuration, or an in-memory limiter with many workers, exits 2 in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reference_backend.process import free_port
from tests.backend.helpers import FAST_ENV


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m reference_backend` to completion (it must exit on its own)."""
    full_env = {**os.environ, **FAST_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db", **env}
    command = [sys.executable, "-m", "reference_backend", "--port", str(free_port()), *args]
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=60)


def test_several_workers_refuse_memory_limiter(tmp_path: Path) -> None:
    """`--workers 2` with RATE_LIMIT_STORAGE=memory:// exits 2 with one line naming the fix."""
    result = run_cli(tmp_path, "--workers", "2", RATE_LIMIT_STORAGE="memory://")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RATE_LIMIT_STORAGE=redis://" in lines[0]
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATE_LIMIT_DEFAULT", "lots"),
        ("DB_POOL_SIZE", "0"),
        ("DATABASE_URL", "mysql://x/y"),
        ("RATE_LIMIT_STORAGE", "memcached://x"),
        ("BCRYPT_ROUNDS", "two"),
        ("REFERENCE_BEHAVIOUR", "staging"),
        ("LIMIT_KEY", "email"),
        ("LIMIT_RESPONSE", "418"),
        ("MISSING_AUTH_STATUS", "404"),
        ("AUTH_ON_DATA_ROUTES", "maybe"),
        ("UPLOAD_SIZE_CHECK", "never"),
        ("PROCESSING_MODEL", "gpt"),
        ("RATE_LIMIT_LOGIN", "5 per fortnight"),
    ],  # fmt: skip
)
def test_bad_configuration_exits_2(tmp_path: Path, variable: str, value: str) -> None:
    """An invalid setting stops start-up with exit 2 and one line naming the variable."""
    result = run_cli(tmp_path, **{variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and "Traceback" not in result.stderr


def test_unreachable_redis_exits_2(tmp_path: Path) -> None:
    """A Redis limiter that cannot be reached fails start-up with one line."""
    result = run_cli(tmp_path, RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "start-up failed" in result.stderr
