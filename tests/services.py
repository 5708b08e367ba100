"""Optional services (PostgreSQL, Redis) for tests: skip loudly, or fail if REQUIRE_SERVICES=1."""

import os

import pytest


def services_required() -> bool:
    """Whether a missing service must fail the test rather than skip it (set by .ci/run)."""
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def require_service(name: str, env_var: str) -> str:
    """Return the service URL from ``env_var``; skip the test when absent, or fail when required."""
    url = os.environ.get(env_var, "").strip()
    if url:
        return url
    reason = f"{name} not available: {env_var} is not set (run ./run_tests.sh to start it)"
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)
