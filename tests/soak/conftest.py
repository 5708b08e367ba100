"""Fixtures of the soak tests: the loopback token server of tests/loadkit/test_accounts.py."""

from tests.loadkit.test_accounts import token_server  # noqa: F401  (a fixture, used by name)
