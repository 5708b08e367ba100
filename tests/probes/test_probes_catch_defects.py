"""Each defect probe fails, naming the defect, against the reference backend with one setting that
plants it; the same backend without the setting passes every probe (the control).

The suite runs as a user runs it (`pytest pytest_load_test.py -k ...` in a subprocess) against a
backend started for the test (tests/conftest.py's backend_factory).
"""

from __future__ import annotations


def test_access_probe_names_a_data_route_without_auth(planted, run_probes):
    """AUTH_ON_DATA_ROUTES=false: a session read without a token fails the access probe, by route
    and id only."""
    run = run_probes("access_control_probe", *planted(AUTH_ON_DATA_ROUTES="false"))
    assert run.returncode == 1, run.output
    assert "access-control defect: GET /api/sessions/{id} with no token answered 200" in run.output
    report = run.reports["access_control_probe.json"]
    assert report["passed"] is False
    assert "transcript_text" not in str(report["problems"]) and "Therapist:" not in run.output


def test_access_probe_names_a_cross_tenant_read(planted, run_probes):
    """OWNERSHIP_CHECKS=false: another therapist's token reading a patient fails the access probe,
    naming the route."""
    run = run_probes("access_control_probe", *planted(OWNERSHIP_CHECKS="false"))
    assert run.returncode == 1, run.output
    assert (
        "GET /api/patients/{id} with another therapist's token answered 200 (leaked ids"
        in run.output
    ), run.output
    assert "Seed Patient" not in run.output  # the patient's name never appears


def test_limiter_probe_names_a_limiter_answering_500(planted, run_probes):
    """LIMIT_RESPONSE=500: the limiter probes of login and of uploads fail, naming the 500."""
    selection = "limiter_semantics_probe and (login or upload)"
    run = run_probes(selection, *planted(LIMIT_RESPONSE="500"))
    assert run.returncode == 1, run.output
    assert "2 failed" in run.output, run.output
    assert "limiter defect on POST /api/v1/login" in run.output, run.output
    assert "past the limit it answered 500" in run.output, run.output


def test_upload_probe_names_a_name_trusting_check(planted, run_probes):
    """UPLOAD_MAGIC_CHECK=false: non-audio bytes under an audio name are accepted; the upload
    probe fails, naming the case."""
    run = run_probes("upload_trust_probe", *planted(UPLOAD_MAGIC_CHECK="false"))
    assert run.returncode == 1, run.output
    assert "upload-trust defect: non-audio bytes named probe.wav (audio/wav) was accepted" in (
        run.output
    ), run.output
    assert "a refused upload left" not in run.output  # accepted, so counted: no false second claim


def test_upload_probe_names_a_refusal_that_leaves_a_row(planted, run_probes):
    """UPLOAD_ROW_BEFORE_CHECK=true: a refused upload leaves a session row; the probe says so."""
    run = run_probes("upload_trust_probe", *planted(UPLOAD_ROW_BEFORE_CHECK="true"))
    assert run.returncode == 1, run.output
    assert "a refused upload left" in run.output, run.output


def test_event_loop_probe_names_a_blocking_handler(planted, run_probes):
    """PASSWORD_HASH_ON_LOOP=true (bcrypt cost 12 on the event loop) flags the /live canary and
    fails the event-loop probe."""
    run = run_probes("event_loop_probe", *planted(PASSWORD_HASH_ON_LOOP="true", BCRYPT_ROUNDS="12"))
    assert run.returncode == 1, run.output
    assert "event-loop defect: GET /live p99" in run.output, run.output
    canary = run.reports["event_loop_probe.json"]["canary"]
    assert canary["flagged"] is True and canary["p99_ms"] > canary["threshold_ms"]


def test_every_probe_passes_on_the_reference_backend(planted, run_probes):
    """Control: with no setting planted every probe passes (so the failures come from defects)."""
    run = run_probes("probe", *planted())
    assert run.returncode == 0, run.output
    assert "9 passed" in run.output, run.output
    assert all(r["passed"] for r in run.reports.values())
    assert all(r["canary"]["flagged"] is False for r in run.reports.values())
