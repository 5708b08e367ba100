"""The limit and upload probes against a backend that behaves like the deployed service
(REFERENCE_BEHAVIOUR=deployed, tests/backends.py DEPLOYED_ENV): a route's own 500 is not called
the limiter's, a spent upload limit is not read as validation results, and the deployed upload
defects are named with their evidence.

The suite runs as a user runs it (`pytest pytest_load_test.py -k ...` in a subprocess) against a
backend started for the test on loopback; each run takes a few seconds.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

SMALL_LIMIT = 2 * 1024 * 1024  # the oversized body declares one byte more: cheap to stream


def _ids(report: dict) -> set[str]:
    return {d["id"] for d in report.get("defects", [])}


def _small_uploads_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `small` profile (ci, with the probes' max_upload_bytes at SMALL_LIMIT) made current."""
    targets = tmp_path / "targets.toml"
    targets.write_text(
        (REPO / "targets.toml").read_text()
        + '\n[small]\ninherit = "ci"\n\n[small.scenarios.probes]\n'
        + f"max_upload_bytes = {SMALL_LIMIT}\n"
    )
    monkeypatch.setenv("LOADTEST_TARGETS", str(targets))


def _spend_uploads(url: str, n: int) -> None:
    """``n`` uploads for a made-up patient (404, which the deployed limit counts too)."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(n):
            reply = client.post(
                f"/api/sessions/upload?patient_id={uuid.uuid4()}",
                files={"file": ("x.wav", b"RIFF" + bytes(2000), "audio/wav")},
            )
            assert reply.status_code == 404, reply.text


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


def test_upload_probe_names_the_deployed_upload_defects(
    deployed, run_probes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A fresh deployed backend: non-audio accepted, a refused upload leaving a row, the 413 only
    after the whole oversized body, and processing failing with the server's error_message."""
    _small_uploads_profile(tmp_path, monkeypatch)
    args, _ = deployed(RATE_LIMIT_UPLOAD=None, MAX_UPLOAD_BYTES=str(SMALL_LIMIT))
    run = run_probes("upload_trust_probe", *args, "--profile", "small", timeout_s=120)
    assert run.returncode == 1, run.output[-3000:]
    report = run.reports["upload_trust_probe.json"]
    expected = {"non-audio-accepted", "refused-upload-leaves-session", "oversize-checked-late",
                "processing-failed"}  # fmt: skip
    assert _ids(report) == expected, report["defects"]
    late = next(d for d in report["defects"] if d["id"] == "oversize-checked-late")
    assert late["evidence"]["status"] == 413 and late["evidence"]["sent_bytes"] > SMALL_LIMIT - 1024
    failed = next(d for d in report["defects"] if d["id"] == "processing-failed")
    assert failed["evidence"]["error_messages"] == {"OPENAI_API_KEY not found in environment": 3}


def test_upload_probe_says_a_spent_upload_limit(
    deployed, run_probes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The address's upload limit spent before the run: the first upload gets the limiter's 500,
    the probe skips saying the limit is spent, and names no validation defect."""
    _small_uploads_profile(tmp_path, monkeypatch)
    args, backend = deployed(RATE_LIMIT_UPLOAD="2/hour", MAX_UPLOAD_BYTES=str(SMALL_LIMIT))
    _spend_uploads(backend.url, 2)
    run = run_probes("upload_trust_probe", *args, "--profile", "small", "-rs", timeout_s=120)
    assert run.returncode == 0, run.output[-3000:]
    assert "the upload limit is spent: 8 needed, and the first upload already got" in run.output
    report = run.reports["upload_trust_probe.json"]
    assert report["defects"] == [] and report["status_codes"].get("500") == 1, report
    assert "oversize" not in run.output and "upload-trust defect" not in run.output


def test_upload_probe_leaves_uploads_the_limit_refused_unjudged(
    deployed, run_probes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Upload limit of 3: the first three uploads are judged, the limiter's 500s are not (no
    'answered 500' defect, no oversize verdict), and the probe names what it could not judge."""
    _small_uploads_profile(tmp_path, monkeypatch)
    args, _ = deployed(RATE_LIMIT_UPLOAD="3/hour", MAX_UPLOAD_BYTES=str(SMALL_LIMIT))
    run = run_probes("upload_trust_probe", *args, "--profile", "small", "-rs", timeout_s=120)
    report = run.reports["upload_trust_probe.json"]
    assert report["status_codes"].get("500") == 4, report["status_codes"]
    said = report.get("skipped_assertions") or " ".join(report["problems"])
    assert "the upload limit is spent: 8 needed, 4 refused by the limiter" in said, said
    assert "5 were not judged" in said, said
    not_judged = report["upload_probe"]["not_judged"]
    assert len(not_judged) == 5 and "the oversized body" in not_judged, not_judged
    assert "answered 500" not in run.output, run.output[-3000:]
    assert not _ids(report) & {"oversize-not-refused", "oversize-checked-late"}, report["defects"]


def test_upload_limit_probe_names_the_limiter_after_an_earlier_run(
    deployed, run_probes, tmp_path: Path
):
    """Two uploads of the address's limit of 4 spent before the run: the upload limit probe's 500s
    after two successes look like the limiter's (no Retry-After, connection closed), so it names
    limiter-500 and no route error."""
    args, backend = deployed(RATE_LIMIT_UPLOAD="4/hour")
    _spend_uploads(backend.url, 2)
    run = run_probes("limiter_semantics_probe and upload", *args, timeout_s=120)
    assert run.returncode == 1, run.output[-3000:]
    report = run.reports["limiter_semantics_probe[upload].json"]
    assert _ids(report) == {"limiter-500"}, report["defects"]
    assert report["limit_probe"]["let_through"] == 2, report["limit_probe"]
    assert report["limit_probe"]["route_errors_within_limit"] == 0, report["limit_probe"]
