"""Each defect probe fails, naming the defect, against a fake API that has it; a sound one passes.

The fakes are real aiohttp servers on loopback (tests/probes/fake_api.py), driven by the pytest
suite in a subprocess exactly as a user runs it.
"""

from __future__ import annotations

import pytest


def _args(fake, accounts_file) -> list[str]:
    return ["--host", fake.url, "--accounts", str(accounts_file), "--server-pid", str(fake.pid)]


@pytest.mark.parametrize("fake_api", ["no_auth"], indirect=True)
def test_access_probe_names_a_data_route_without_auth(fake_api, accounts_file, run_probes):
    """A session read that answers without a token fails the access probe, by route and id only."""
    run = run_probes("access_control_probe", *_args(fake_api, accounts_file))
    assert run.returncode == 1, run.output
    assert "access-control defect: GET /api/sessions/{id} with no token answered 200" in run.output
    report = run.reports["access_control_probe.json"]
    assert report["passed"] is False
    assert '"transcript_text"' not in str(report) and "hello" not in run.output


@pytest.mark.parametrize("fake_api", ["cross_tenant"], indirect=True)
def test_access_probe_names_a_cross_tenant_read(fake_api, accounts_file, run_probes):
    """Another therapist's token reading a patient fails the access probe, naming the route."""
    run = run_probes("access_control_probe", *_args(fake_api, accounts_file))
    assert run.returncode == 1, run.output
    assert (
        "GET /api/patients/{id} with another therapist's token answered 200 (leaked ids"
        in run.output
    ), run.output
    assert "Pat" not in run.output  # the patient's name never appears


@pytest.mark.parametrize("fake_api", ["limiter500"], indirect=True)
def test_limiter_probe_names_a_limiter_answering_500(fake_api, accounts_file, run_probes):
    """A limiter answering 500 fails the limiter probe of login and of uploads, naming the 500."""
    run = run_probes(
        "limiter_semantics_probe and (login or upload)", *_args(fake_api, accounts_file)
    )
    assert run.returncode == 1, run.output
    assert "2 failed" in run.output, run.output
    assert "limiter defect on POST /api/v1/login" in run.output, run.output
    assert "past the limit it answered 500" in run.output, run.output


@pytest.mark.parametrize("fake_api", ["name_trusting"], indirect=True)
def test_upload_probe_names_a_name_trusting_check(fake_api, accounts_file, run_probes):
    """Non-audio bytes under an audio name accepted: the upload probe fails, naming the case."""
    run = run_probes("upload_trust_probe", *_args(fake_api, accounts_file))
    assert run.returncode == 1, run.output
    assert "upload-trust defect: non-audio bytes named probe.wav (audio/wav) was accepted" in (
        run.output
    ), run.output
    assert "a refused upload left" not in run.output  # accepted, so counted: no false second claim


@pytest.mark.parametrize("fake_api", ["blocking"], indirect=True)
def test_event_loop_probe_names_a_blocking_handler(fake_api, accounts_file, run_probes):
    """time.sleep in login and upload handlers flags the canary and fails the event-loop probe."""
    run = run_probes("event_loop_probe", *_args(fake_api, accounts_file))
    assert run.returncode == 1, run.output
    assert "event-loop defect: GET /live p99" in run.output, run.output
    canary = run.reports["event_loop_probe.json"]["canary"]
    assert canary["flagged"] is True and canary["p99_ms"] > canary["threshold_ms"]


@pytest.mark.parametrize("fake_api", ["none"], indirect=True)
def test_every_probe_passes_on_a_sound_fake(fake_api, accounts_file, run_probes):
    """Without a defect every probe passes against the fake (so failures come from defects)."""
    run = run_probes("probe", *_args(fake_api, accounts_file))
    assert run.returncode == 0, run.output
    assert "9 passed" in run.output, run.output
    assert all(r["canary"]["flagged"] is False for r in run.reports.values())


@pytest.mark.slow
def test_every_probe_passes_on_the_reference_backend(run_probes):
    """The reference backend (started by the suite) passes every probe, canary not flagged."""
    run = run_probes("probe")
    assert run.returncode == 0, run.output
    assert "9 passed" in run.output, run.output
    assert all(r["passed"] for r in run.reports.values())
