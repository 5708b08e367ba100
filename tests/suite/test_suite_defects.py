"""The load suites catch the defects they exist for, against small fake servers (real sockets).

Each test runs ``pytest pytest_load_test.py ...`` as a subprocess against a fake server with one
defect and checks that it fails, naming the defect, and still writes its JSON reports; a defect-free
fake passes the same tests, so the failures come from the defects and not from the fakes.
"""

import pytest

RATE_LIMIT = "test_rate_limit_enforcement"
MEMORY = "test_memory_leak_detection"


def _suite_args(server, accounts_file, selection: str) -> list[str]:
    return ["pytest_load_test.py", "-k", selection, "--host", server.url,
            "--accounts", str(accounts_file), "--server-pid", str(server.pid)]  # fmt: skip


@pytest.mark.parametrize("fake_server", ["limiter500"], indirect=True)
def test_rate_limit_test_fails_on_a_limiter_answering_500(fake_server, accounts_file, run_suite):
    """A limiter that answers 500 instead of 429 fails both rate-limit tests, naming the 500."""
    run = run_suite(*_suite_args(fake_server, accounts_file, RATE_LIMIT))
    assert run.returncode == 1, run.output
    assert "2 failed" in run.output, run.output
    assert "responses other than 2xx or 429 came back: 500" in run.output, run.output
    assert "unexpected_responses_max: limit 0" in run.output, run.output
    for name in ("rate_limit_enforcement[default_limit]", "rate_limit_enforcement[upload_limit]"):
        report = run.reports[f"{name}.json"]
        assert report["passed"] is False
        assert report["status_codes"].get("500", 0) >= 1


@pytest.mark.parametrize("fake_server", ["no_retry_after"], indirect=True)
def test_rate_limit_test_fails_on_a_429_without_retry_after(fake_server, accounts_file, run_suite):
    """429 responses without a Retry-After header fail the rate-limit test, naming the header."""
    run = run_suite(*_suite_args(fake_server, accounts_file, f"{RATE_LIMIT} and default"))
    assert run.returncode == 1, run.output
    assert "lack an integer Retry-After header (e.g. missing)" in run.output, run.output
    assert "refusals_without_retry_after_max: limit 0" in run.output, run.output
    assert run.reports["rate_limit_enforcement[default_limit].json"]["passed"] is False


@pytest.mark.parametrize("fake_server", ["leak"], indirect=True)
def test_memory_test_fails_on_a_server_that_leaks(fake_server, accounts_file, run_suite):
    """A server whose RSS grows ~1 MB per request fails the memory test, naming memory growth."""
    run = run_suite(*_suite_args(fake_server, accounts_file, MEMORY))
    assert run.returncode == 1, run.output
    assert "memory_growth_mb: limit 50" in run.output, run.output
    report = run.reports["memory_leak_detection.json"]
    assert report["resources"]["server_pid"] == fake_server.pid
    assert report["resources"]["memory_growth_mb"] > 100


@pytest.mark.parametrize("fake_server", ["none"], indirect=True)
def test_a_sound_fake_passes_the_same_tests(fake_server, accounts_file, run_suite):
    """Without a defect the rate-limit and memory tests pass against the fake (control case)."""
    run = run_suite(*_suite_args(fake_server, accounts_file, f"{RATE_LIMIT} or {MEMORY}"))
    assert run.returncode == 0, run.output
    assert "3 passed" in run.output, run.output
    assert all(r["passed"] for r in run.reports.values())


@pytest.mark.parametrize("fake_server", ["none"], indirect=True)
def test_a_refused_login_exits_2_naming_the_account(fake_server, tmp_path, run_suite):
    """An account that cannot log in stops the run: exit 2, one line naming it and the status."""
    accounts = tmp_path / "bad.json"
    accounts.write_text(
        '[{"email": "nobody@example.com", "password": "Wrong@Password1"},'
        ' {"email": "b@example.com", "password": "x"}, {"email": "c@example.com", "password": "x"}]'
    )
    run = run_suite(*_suite_args(fake_server, accounts, RATE_LIMIT))
    assert run.returncode == 2, run.output
    assert "login failed for nobody@example.com: HTTP 401" in run.output, run.output
    assert "Wrong@Password1" not in run.output


def test_a_remote_host_needs_yes(run_suite):
    """A target outside loopback without --yes exits 2 with one line, before any request."""
    run = run_suite("pytest_load_test.py", "--host", "http://192.0.2.10:8000")
    assert run.returncode == 2, run.output
    assert "is not on this machine" in run.output and "--yes" in run.output
    assert "Traceback" not in run.output


def test_an_unreachable_host_exits_2(run_suite, unused_tcp_port):
    """A loopback target with nothing listening exits 2 with one line naming the host."""
    host = f"http://127.0.0.1:{unused_tcp_port}"
    run = run_suite("baseline_test.py", "--host", host)
    assert run.returncode == 2, run.output
    assert f"cannot reach {host}" in run.output, run.output
    assert "Traceback" not in run.output
