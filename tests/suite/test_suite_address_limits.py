"""Against a correct limiter keyed by client address, the suite's earlier tests do not fail later
ones: the two rate-limit tests run in one session and both pass (the upload-limit test's setup meets
the 429s the default-limit test earned on the same address, waits them out and goes on)."""

from pathlib import Path

import pytest

from tests.backends import CONTRACT_LIMITS

REPO = Path(__file__).resolve().parents[2]
WINDOW_S = 20  # the default limit's window, shortened (the suite is told through its profile)


@pytest.mark.slow
def test_both_rate_limit_tests_pass_against_an_address_keyed_limiter(
    backend_factory, run_suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """LIMIT_KEY=address with 429s: default_limit then upload_limit, both pass, no setup error."""
    backend = backend_factory(
        base=CONTRACT_LIMITS,
        LIMIT_KEY="address",
        RATE_LIMIT_DEFAULT=f"100 per {WINDOW_S} seconds",
        RATE_LIMIT_LOGIN="5 per 10 seconds",
        SEED_ACCOUNTS="12",
    )
    targets = tmp_path / "targets.toml"
    targets.write_text(
        (REPO / "targets.toml").read_text()
        + f'\n[address]\ninherit = "ci"\n\n[address.scenarios.rate_limit]\nwindow_s = {WINDOW_S}\n'
    )
    monkeypatch.setenv("LOADTEST_TARGETS", str(targets))
    args = ["-k", "rate_limit_enforcement", "--profile", "address", "--login-rate", "5/10s"]
    run = run_suite("pytest_load_test.py", "--host", backend.url, *args, timeout_s=240)
    assert run.returncode == 0, run.output[-3000:]
    assert "2 passed" in run.output, run.output[-3000:]
    upload = run.reports["rate_limit_enforcement[upload_limit].json"]
    assert upload["passed"] and upload["status_codes"].get("429", 0) >= 1
