"""Fixtures for the probe tests: the probes run by the suite runner of tests/conftest.py."""

import pytest


@pytest.fixture
def run_probes(run_suite):
    """Run ``pytest pytest_load_test.py -q -k SELECTION --profile ci ARGS`` in a subprocess."""

    def run(selection: str, *args: str, timeout_s: float = 300.0):
        return run_suite(
            "-q", "pytest_load_test.py", "-k", selection, "--profile", "ci", *args,
            timeout_s=timeout_s,
        )  # fmt: skip

    return run
