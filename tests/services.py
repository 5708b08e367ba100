"""Optional services (PostgreSQL, Redis) for tests: skip loudly, or fail if REQUIRE_SERVICES=1."""

import os

import pytest


def services_required() -> bool:
    """Whether a missing service must fail the test rather than skip it (set by .ci/run)."""
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


PACKAGES = {"PostgreSQL": "postgresql", "Redis": "redis-server"}


def require_service(name: str, env_var: str) -> str:
    """Return the service URL from ``env_var``; skip the test when absent, or fail when required."""
    url = os.environ.get(env_var, "").strip()
    if url:
        return url
    reason = f"{name} not available: {env_var} is not set ({_hint(name)})"
    if services_required():
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _hint(name: str) -> str:
    """What to do: under run_tests.sh the binary is missing; elsewhere run_tests.sh starts it."""
    if os.environ.get("LOADTEST_UNDER_RUN_TESTS"):
        return f"run_tests.sh found no {name} server: apt-get install {PACKAGES.get(name, name)}"
    return "./run_tests.sh starts it when its server is installed"
