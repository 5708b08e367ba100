"""The seven headless load scenarios of TherapyBridge, with the targets profile's assertions.

Run: ``pytest pytest_load_test.py [--host URL] [--profile ci] [-n 4]``. Without ``--host`` the
reference backend starts on a free port (conftest.py). Each test runs one scenario of
``loadkit.suite.harness``, writes ``<test_name>.json`` into the run folder whatever happens, and
fails with a message naming each metric that missed its limit (limit and actual) or each contract
defect it saw.
"""

import pytest

from loadkit.suite import limiter_probe, load_scenarios, probe_scenarios


def test_concurrent_health_checks(drive):
    """100 concurrent GET /health (by default) stay within the read latency and error targets."""
    drive(load_scenarios.concurrent_health_checks)


def test_concurrent_sessions(drive, accounts):
    """50 concurrent authenticated reads of one's own sessions stay within the read targets."""
    drive(load_scenarios.concurrent_sessions, plan=accounts)


def test_concurrent_uploads(drive, accounts):
    """10 concurrent uploads of real WAV audio meet the upload target and all reach 'processed'."""
    drive(load_scenarios.concurrent_uploads, plan=accounts)


@pytest.mark.parametrize("which", ["default_limit", "upload_limit"])
def test_rate_limit_enforcement(drive, accounts, which):
    """Past a limit, at most the limit passes in any window and every refusal is a proper 429."""
    drive(load_scenarios.rate_limit_enforcement, which, plan=accounts)


def test_database_pool_stress(drive, accounts):
    """100 concurrent filtered session lists cause no pool time-out and no 5xx."""
    drive(load_scenarios.database_pool_stress, plan=accounts)


def test_sustained_load(drive, accounts):
    """A steady arrival rate meets the read targets; late latency is not much worse than early."""
    drive(load_scenarios.sustained_load, plan=accounts)


def test_memory_leak_detection(drive, accounts):
    """The server's RSS grows less than the memory target over 200 requests after a warm-up."""
    drive(load_scenarios.memory_leak_detection, plan=accounts)


# Defect probes of the contract's known weak spots (loadkit/probes/probe_requests.py)
# -----------------------------


def test_access_control_probe(drive, accounts):
    """Under a read load, no, tampered, expired, unsigned and another's token are all refused."""
    drive(probe_scenarios.access_control_probe, plan=accounts)


@pytest.mark.parametrize("route", ["default", "login", "signup", "refresh", "upload", "extract"])
def test_limiter_semantics_probe(drive, accounts, route):
    """Past each limit of the contract: it holds, refusals are 429 + Retry-After, no state moved."""
    drive(limiter_probe.limiter_semantics_probe, route, plan=accounts)


def test_upload_trust_probe(drive, accounts):
    """Non-audio, wrong-type, empty and oversized uploads are refused and leave no session."""
    drive(probe_scenarios.upload_trust_probe, plan=accounts)


def test_event_loop_probe(drive, accounts):
    """During uploads and logins the /live canary's p99 stays near its idle value."""
    drive(probe_scenarios.event_loop_probe, plan=accounts)
