"""The load suites' pytest options, registered by the root conftest.py's ``pytest_addoption``.

``--host`` is Locust's pytest plugin's when it is loaded (reused here), else added; the rest are
grouped under "TherapyBridge load tests" in ``pytest --help``. ``--request-timeout`` is named so
because pytest-timeout owns ``--timeout``.
"""

from __future__ import annotations

import argparse
import contextlib

import pytest


def add_options(parser: pytest.Parser) -> None:
    """The load suites' options (``--host`` comes from Locust's plugin, else it is added)."""
    with contextlib.suppress(ValueError):  # Locust's pytest plugin registered it already
        parser.addoption(
            "--host", "-H", default=None, help="target URL (default: reference backend)"
        )
    group = parser.getgroup("loadtest", "TherapyBridge load tests")
    group.addoption(
        "--profile", default=None, help="targets.toml profile (default: LOADTEST_PROFILE)"
    )
    group.addoption("--accounts", default=None, help="JSON file of [{email, password}] accounts")
    group.addoption(
        "--tokens", default=None, help="JSON file of pre-issued [{email, access_token}] (SSO)"
    )
    group.addoption(
        "--login-rate",
        default=None,
        help="login budget N/PERIOD after a refusal (else LOADTEST_LOGIN_RATE, 5/minute)",
    )
    group.addoption(
        "--no-token-cache", action="store_true", help="keep tokens in memory only (no cache file)"
    )
    group.addoption(
        "--server-pid", type=int, default=None, help="server process for resource figures"
    )
    group.addoption(
        "--request-timeout", type=float, default=30.0, help="per-request time-out, seconds"
    )
    group.addoption("--insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--ca-bundle", default=None, help="CA bundle file for TLS verification")
    group.addoption("--yes", action="store_true", help="confirm load on a host outside loopback")
    group.addoption(
        "--metrics-port",
        type=int,
        default=0,
        help="serve live Prometheus metrics on 127.0.0.1:PORT/metrics (xdist worker gwN: PORT+N)",
    )
    group.addoption(
        "--server-profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="py-spy profile of a local server into the run folder (default: off, see README)",
    )
