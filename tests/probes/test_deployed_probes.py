"""The limit and upload probes against a backend that behaves like the deployed service
(REFERENCE_BEHAVIOUR=deployed, tests/backends.py DEPLOYED_ENV): a route's own 500 is not called
the limiter's, a spent upload limit is not read as validation results, and the deployed upload
defects are named with their evidence.

The suite runs as a user runs it (`pytest pytest_load_test.py -k ...` in a subprocess) against a
backend started for the test on loopback; each run takes a few seconds.
"""

from __future__ import annotations


def _ids(report: dict) -> set[str]:
    return {d["id"] for d in report.get("defects", [])}


def test_extract_probe_names_the_routes_own_500_not_the_limiter(deployed, run_probes):
    """Deployed extract-notes answers 500 (no model key) from its first request: the probe names
    route-always-500 with the server's message, claims no limiter-500 and says the limit could
    not be judged."""
    args, _ = deployed(RATE_LIMIT_EXTRACT=None)
    run = run_probes("limiter_semantics_probe and extract", *args, timeout_s=120)
    assert run.returncode == 1, run.output[-3000:]
    report = run.reports["limiter_semantics_probe[extract].json"]
    assert _ids(report) == {"route-always-500"}, report["defects"]
    said = report["defects"][0]["evidence"]["error_messages"]
    assert said.get("OPENAI_API_KEY not found in environment") == 20, said
    assert "limiter-500" not in run.output and "past the limit it answered" not in run.output
    assert any("could not be judged" in p for p in report["problems"]), report["problems"]
