"""Locust against the reference backend behaving like the deployed service: the missing default
limit is named as a defect, not reported as the service's errors, and patient creates succeed
(the deployed service requires ``therapist_id``) without breaking the contract backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.verdicts import defects
from tests.locust.conftest import REPO, read_json, run_locust

pytestmark = pytest.mark.slow  # each runs Locust for 4-9 s

PATIENTS_ONLY = str(REPO / "tests" / "locust" / "patients_only.py")


def test_prober_names_default_limit_missing_and_splits_the_failures(
    deployed_backend, tmp_path: Path
) -> None:
    """No default limit: the prober's 200s beyond it are the defect default-limit-missing (the
    pytest probe's record), the error-rate threshold counts the service's own errors (none), the
    run fails on the defect, and the log lines say how many failures are the prober's."""
    done = run_locust(
        deployed_backend.url, tmp_path, "--headless", "-u", "1", "-r", "1", "-t", "9s",
        "--tags", "rate_limit",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    report = read_json(tmp_path / "locust_rate_limit.json")
    probe = report["endpoints"]["probe GET /api/sessions/"]
    assert probe["failures"] > 0 and probe["requests"] > 100
    expected: list[dict] = []
    total = report["defects"][0]["evidence"]["requests"]
    defects.from_limit(expected, "GET /api/sessions/", name="default", statuses={},
                       refused=0, bare=0, total=total)  # fmt: skip
    assert report["defects"] == expected and total >= probe["requests"]
    split = report["error_sources"]
    assert split["prober_findings"] == split["failures"] == probe["failures"]
    assert split["service_errors"] == 0
    rows = {r["metric"]: r for r in report["thresholds"]}
    assert rows["error_rate_percent"]["actual"] == 0 and rows["error_rate_percent"]["passed"]
    assert rows["defects"]["passed"] is False
    assert report["verdict"] == "failed" and "default-limit-missing" in report["reason"]
    assert "defects: default-limit-missing" in done.stderr
    assert f"{probe['failures']} of {probe['failures']} failures are the probers'" in done.stderr


@pytest.mark.parametrize("which", ["deployed_backend", "backend"])
def test_patient_create_sends_the_callers_therapist_id(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Deployed (therapist_id required) and contract backends both answer the persona's patient
    creates 200: it learns its id from GET /api/v1/me once per account and sends it."""
    server = request.getfixturevalue(which)
    done = run_locust(
        server.url, tmp_path, "-f", PATIENTS_ONLY, "PatientCreator", "--headless",
        "-u", "1", "-r", "1", "-t", "4s", "--tags", "patients_only", "--report-name", "patients",
    )  # fmt: skip
    report = read_json(tmp_path / "patients.json")
    created = report["endpoints"]["POST /api/patients/"]
    assert created["requests"] >= 3 and created["failures"] == 0, report["errors"]
    assert report["endpoints"]["GET /api/v1/me"]["requests"] == 1
    assert done.returncode == 0, done.stderr[-2000:]
