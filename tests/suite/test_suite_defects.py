"""The load suites catch the defects they exist for, against the reference backend with one
setting that plants each; the same backend without it passes the same tests (the control).

Each test runs ``pytest pytest_load_test.py ...`` as a subprocess (real sockets) and checks that
it fails, naming the defect, and still writes its JSON reports.
"""

import json

RATE_LIMIT = "test_rate_limit_enforcement"
MEMORY = "test_memory_leak_detection"
LEAK_BYTES = 1024 * 1024


def _suite_args(planted_args: list[str], selection: str) -> list[str]:
    return ["pytest_load_test.py", "-k", selection, *planted_args]


def test_rate_limit_test_fails_on_a_limiter_answering_500(planted, run_suite):
    """LIMIT_RESPONSE=500: both rate-limit tests fail, naming the 500."""
    run = run_suite(*_suite_args(planted(LIMIT_RESPONSE="500"), RATE_LIMIT))
    assert run.returncode == 1, run.output
    assert "2 failed" in run.output, run.output
    assert "responses other than 2xx or 429 came back: 500" in run.output, run.output
    assert "unexpected_responses_max: limit 0" in run.output, run.output
    for name in ("rate_limit_enforcement[default_limit]", "rate_limit_enforcement[upload_limit]"):
        report = run.reports[f"{name}.json"]
        assert report["passed"] is False
        assert report["status_codes"].get("500", 0) >= 1


def test_rate_limit_test_fails_on_a_429_without_retry_after(planted, run_suite):
    """LIMIT_RETRY_AFTER=false: 429s without a Retry-After header fail the test, naming it."""
    args = planted(LIMIT_RETRY_AFTER="false")
    run = run_suite(*_suite_args(args, f"{RATE_LIMIT} and default"))
    assert run.returncode == 1, run.output
    assert "lack an integer Retry-After header (e.g. missing)" in run.output, run.output
    assert "refusals_without_retry_after_max: limit 0" in run.output, run.output
    assert run.reports["rate_limit_enforcement[default_limit].json"]["passed"] is False


def test_memory_test_fails_on_a_server_that_leaks(planted, run_suite):
    """LEAK_BYTES_PER_REQUEST=1 MB: the memory test fails, naming memory growth."""
    args = planted(LEAK_BYTES_PER_REQUEST=str(LEAK_BYTES))
    run = run_suite(*_suite_args(args, MEMORY))
    assert run.returncode == 1, run.output
    assert "memory_growth_mb: limit 50" in run.output, run.output
    report = run.reports["memory_leak_detection.json"]
    assert report["resources"]["server_pid"] == int(args[args.index("--server-pid") + 1])
    assert report["resources"]["memory_growth_mb"] > 100


def test_the_sound_backend_passes_the_same_tests(planted, run_suite):
    """Control: without a planted defect the rate-limit and memory tests pass."""
    run = run_suite(*_suite_args(planted(), f"{RATE_LIMIT} or {MEMORY}"))
    assert run.returncode == 0, run.output
    assert "3 passed" in run.output, run.output
    assert all(r["passed"] for r in run.reports.values())


def test_a_refused_login_exits_2_naming_the_account(planted, tmp_path, run_suite):
    """An account that cannot log in stops the run: exit 2, one line naming it and the status."""
    args = planted()
    accounts = tmp_path / "bad.json"
    accounts.write_text(json.dumps([
        {"email": "nobody@example.com", "password": "Wrong@Password1"},
        {"email": "b@example.com", "password": "x"}, {"email": "c@example.com", "password": "x"},
    ]))  # fmt: skip
    args[args.index("--accounts") + 1] = str(accounts)
    run = run_suite(*_suite_args(args, RATE_LIMIT))
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
