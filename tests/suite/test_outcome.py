"""A scenario's report is written however the scenario ends, and its verdict names what failed."""

import json

import pytest

from loadkit.suite.outcome import Outcome, failure_message, reporting, safe_test_name
from loadkit.watch import targeting


def _outcome() -> Outcome:
    return Outcome("rate_limit_enforcement[default_limit]", "http://127.0.0.1:1", "ci")


def test_report_survives_an_exception_mid_run(tmp_path):
    """An exception inside the scenario still leaves a report, marked failed, naming the error."""
    outcome = _outcome()
    with pytest.raises(RuntimeError), reporting(outcome, tmp_path):
        outcome.recorder.record("GET /health", 0.01, status=200)
        raise RuntimeError("server vanished")
    report = json.loads((tmp_path / "rate_limit_enforcement[default_limit].json").read_text())
    assert report["passed"] is False and report["total_requests"] == 1
    assert "server vanished" in report["problems"][0]


def test_an_interrupted_run_is_reported_as_interrupted(tmp_path):
    """Ctrl-C during a scenario writes the report with interrupted true."""
    outcome = _outcome()
    with pytest.raises(KeyboardInterrupt), reporting(outcome, tmp_path):
        raise KeyboardInterrupt
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert report["interrupted"] is True and report["passed"] is False


def test_failure_message_names_metric_limit_and_actual():
    """Only failed thresholds appear, each with its limit and actual value, then the problems."""
    thresholds = [
        {"metric": "response_time_p95_ms", "limit": 500, "actual": 812.5, "passed": False},
        {"metric": "error_rate_percent", "limit": 1.0, "actual": 0.0, "passed": True},
    ]
    message = failure_message(thresholds, ["500 x3"])
    assert message == "response_time_p95_ms: limit 500, actual 812.5; 500 x3"
    assert failure_message(thresholds[1:], []) is None


def test_report_names_are_filesystem_safe():
    """Parametrized test names keep their parameter but lose the test_ prefix and odd characters."""
    assert safe_test_name("test_rate_limit_enforcement[upload_limit]") == (
        "rate_limit_enforcement[upload_limit]"
    )
    assert safe_test_name("test_x[a/b c]") == "x[a_b_c]"


def test_a_remote_target_says_why_resources_are_unavailable():
    """A non-loopback host without --server-pid has no server pid and a stated reason."""
    options = targeting.Options("http://192.0.2.10:8000", None, 30.0, True)
    target = targeting.remote_or_local(options)
    assert target.server_pid is None
    assert "not on this machine" in target.resources_reason
    assert not targeting.is_loopback("http://192.0.2.10:8000")
    assert targeting.is_loopback("http://localhost:8000") and targeting.is_loopback("127.0.0.1:1")
