"""Fixtures for the probe tests: the probes run by the suite runner of tests/conftest.py."""

import pytest

from tests.backends import DEPLOYED_ENV, write_accounts
from tests.conftest import SUITE_ACCOUNTS


@pytest.fixture
def run_probes(run_suite):
    """Run ``pytest pytest_load_test.py -q -k SELECTION --profile ci ARGS`` in a subprocess."""

    def run(selection: str, *args: str, timeout_s: float = 300.0):
        return run_suite(
            "-q", "pytest_load_test.py", "-k", selection, "--profile", "ci", *args,
            timeout_s=timeout_s,
        )  # fmt: skip

    return run


@pytest.fixture
def deployed(backend_factory, tmp_path):
    """Start the reference backend as the deployed service (DEPLOYED_ENV: logins unlimited, the
    other limits as given); the suite's arguments ``--host URL --accounts FILE --server-pid PID``
    and the backend."""

    def start(**setting: str | None):
        env = {"SEED_ACCOUNTS": str(SUITE_ACCOUNTS), **setting}
        backend = backend_factory(base=DEPLOYED_ENV, **env)
        accounts = write_accounts(tmp_path / "accounts.json", SUITE_ACCOUNTS)
        pid = str(backend.pid)
        return ["--host", backend.url, "--accounts", str(accounts), "--server-pid", pid], backend

    return start
