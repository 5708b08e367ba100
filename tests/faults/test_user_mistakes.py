"""User mistakes get one clear line and a non-zero exit, never a traceback: for the pytest suite,
headless Locust and the runner.

Covered elsewhere (not repeated): an unknown preset, an unknown runner option and an unwritable
results root for the runner, an unreachable and an unhealthy host for the runner
(tests/runner/test_runner.py); an unreachable host and a refused login for pytest
(tests/suite/test_suite_defects.py); a refused login for Locust
(tests/locust/test_locust_headless.py::test_failed_login_stops_users_and_names_the_account).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.conftest import (
    assert_one_line_error,
    locust_command,
    run_tool,
    runner_command,
    suite_command,
)

pytestmark = pytest.mark.faults

BAD_TOML = "[faults\nthresholds = 1\n"


def command(tool: str, host: str, *extra: str) -> list[str]:
    """A short run of ``tool`` against ``host`` with ``extra`` options."""
    if tool == "pytest":
        return suite_command("baseline_test.py", "--host", host, *extra)
    if tool == "locust":
        return locust_command("--host", host, "-u", "1", "-r", "1", "-t", "3s", *extra)
    return runner_command("quick", "--host", host, "--run-time", "3s", *extra)


def requests_seen(server) -> int:
    return sum(1 for e in server.entries() if "req" in e)


@pytest.mark.parametrize("tool", ["pytest", "locust", "runner"])
@pytest.mark.parametrize("host", ["notaurl", "http://", "http://127.0.0.1:notaport"])
def test_malformed_host_is_one_line(tool: str, host: str, tmp_path: Path) -> None:
    """A --host that is not an http(s) URL with a host: one line naming it, non-zero exit."""
    done = run_tool(command(tool, host), tmp_path)
    assert_one_line_error(done, host if "notaport" in host else "http(s)")
    assert done.returncode == 2 and done.seconds < 30


def test_unreachable_host_for_locust_is_one_line(tmp_path: Path, unused_tcp_port: int) -> None:
    """Headless Locust against a port nobody listens on: refused up front in one line, exit 2,
    instead of a whole run of failed logins."""
    host = f"http://127.0.0.1:{unused_tcp_port}"
    done = run_tool(command("locust", host), tmp_path)
    assert_one_line_error(done, f"cannot reach {host}")
    assert done.returncode == 2 and not done.reports


def test_missing_host_for_headless_locust_is_one_line(tmp_path: Path) -> None:
    """Headless Locust with no --host at all: one line saying to pass one, exit 2, no report
    (Locust itself would raise StopTest with a traceback and write a failed report)."""
    done = run_tool(locust_command("-u", "1", "-r", "1", "-t", "3s"), tmp_path)
    assert_one_line_error(done, "no target: pass --host URL")
    assert done.returncode == 2 and not done.reports


@pytest.mark.parametrize("tool", ["pytest", "locust", "runner"])
def test_unknown_profile_is_one_line(tool: str, chaos, tmp_path: Path) -> None:
    """--profile naming no profile of the targets file: one line listing the known ones."""
    server = chaos()
    done = run_tool(command(tool, server.url, "--profile", "nosuch"), tmp_path)
    assert_one_line_error(done, "unknown profile 'nosuch'", "faults")
    assert done.returncode == 2


@pytest.mark.parametrize("tool", ["pytest", "locust"])
def test_unknown_option_is_refused(tool: str, chaos, tmp_path: Path) -> None:
    """An option that does not exist: the tool's usage error, non-zero, before any request."""
    server = chaos()
    done = run_tool(command(tool, server.url, "--turbo-mode"), tmp_path)
    assert_one_line_error(done, "unrecognized arguments: --turbo-mode")
    assert requests_seen(server) == 0


@pytest.mark.parametrize("tool", ["pytest", "locust", "runner"])
def test_malformed_targets_file_is_one_line(tool: str, chaos, tmp_path: Path) -> None:
    """LOADTEST_TARGETS pointing at bad TOML: one line naming the file, exit 2, no load."""
    server = chaos()
    bad = tmp_path / "targets.toml"
    bad.write_text(BAD_TOML)
    done = run_tool(command(tool, server.url), tmp_path, LOADTEST_TARGETS=str(bad))
    assert_one_line_error(done, str(bad), "malformed TOML")
    assert done.returncode == 2
    seen = [e["path"] for e in server.entries() if "req" in e]
    assert seen == (["/health"] if tool == "runner" else []), seen  # the runner's pre-flight


@pytest.mark.parametrize("tool", ["pytest", "locust"])
def test_unwritable_results_folder_is_refused_before_any_request(
    tool: str, chaos, tmp_path: Path
) -> None:
    """A results root that cannot be created: one line naming it, exit 2, and the target saw
    no request at all (not even the pre-flight)."""
    server = chaos()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    root = blocker / "results"
    done = run_tool(command(tool, server.url), tmp_path, LOADTEST_RESULTS_ROOT=str(root))
    assert_one_line_error(done, "results folder not writable", str(root))
    assert done.returncode == 2
    assert requests_seen(server) == 0


def test_wrong_credentials_through_the_runner_name_the_account(chaos, tmp_path: Path) -> None:
    """The runner with --accounts holding a wrong password: one line naming the account and the
    status, exit 2, and the password never printed (the pytest preset: the baseline needs no
    account and never logs in)."""
    server = chaos()
    accounts = tmp_path / "accounts.json"
    people = ["wrong@example.com", "b@example.com", "c@example.com"]
    passwords = ["Wrong@Password1", "Right@Pass1234", "Right@Pass1234"]
    pairs = zip(people, passwords, strict=True)
    accounts.write_text(json.dumps([{"email": e, "password": p} for e, p in pairs]))
    done = run_tool(
        runner_command("pytest", "--host", server.url, "--accounts", str(accounts)),
        tmp_path,
        LOADTEST_SUITE="pytest_load_test.py",
    )
    assert_one_line_error(done, "login failed for wrong@example.com: HTTP 401")
    assert done.returncode == 2
    assert "Wrong@Password1" not in done.output
