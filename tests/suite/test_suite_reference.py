"""The whole headless suite against the reference backend under xdist: passes, one report per test.

The suite with no options (the default profile) is run_tests.sh's load stage, where every
scenario must pass; this test adds what only xdist can break: one backend and one run folder for
both workers.
"""

import pytest

EXPECTED_REPORTS = {
    "concurrent_health_checks.json",
    "concurrent_sessions.json",
    "concurrent_uploads.json",
    "large_uploads.json",
    "rate_limit_enforcement[default_limit].json",
    "rate_limit_enforcement[upload_limit].json",
    "database_pool_stress.json",
    "sustained_load.json",
    "memory_leak_detection.json",
    "sequential_health.json",
    "endpoint_latency.json",
    "connection_stability.json",
    "access_control_probe.json",
    "upload_trust_probe.json",
    "event_loop_probe.json",
    *(
        f"limiter_semantics_probe[{route}].json"
        for route in ("default", "login", "signup", "refresh", "upload", "extract")
    ),
}


# The event-loop probe compares the /live canary under its own load with the canary idle; under
# xdist the other worker's scenarios load the same server during both, so neither is what it
# claims to be. The load stage (one process) runs it.
ALONE_ONLY = {"event_loop_probe.json"}


def _check_run(run) -> None:
    expected = EXPECTED_REPORTS - ALONE_ONLY
    assert run.returncode == 0, run.output[-4000:]
    assert f"{len(expected)} passed" in run.output, run.output[-4000:]
    assert set(run.reports) == expected
    assert len({r["_dir"] for r in run.reports.values()}) == 1, "reports spread over run folders"
    for name, report in run.reports.items():
        assert report["passed"] is True, name
        assert report["interrupted"] is False, name
        assert report["total_requests"] > 0, name
        assert report["resources"]["server_pid"] is not None, name
    pool = run.reports["database_pool_stress.json"]["db_pool"]
    assert pool["samples"] > 0 and pool["checked_out_max"] is not None


@pytest.mark.slow
def test_the_suite_passes_under_xdist(run_suite):
    """With -n 2 the workers share one backend and one run folder, and every test still passes
    (but the event-loop probe, which needs the server to itself)."""
    run = run_suite("pytest_load_test.py", "baseline_test.py", "--profile", "ci", "-n", "2",
                    "--deselect", "pytest_load_test.py::test_event_loop_probe")  # fmt: skip
    _check_run(run)
    folder = run.results_root / next(iter(run.reports.values()))["_dir"]
    log = (folder / "backend.log").read_text()
    assert log.count("Started server process") == 1, log
    assert log.count("Finished server process") == 1, log
