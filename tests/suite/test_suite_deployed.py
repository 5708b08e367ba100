"""The whole load suite runs to the end against a backend that behaves like the deployed service.

`REFERENCE_BEHAVIOUR=deployed` (limits keyed by client address that answer 500, no default limit,
data routes without auth, no ownership, therapist_id required, no magic-number check, processing
without a model key), seeded with 12 accounts the suite is not told about, and the login window
shortened to 5 per 10 s with the same figure given to ``--login-rate``. The runner's ``all`` (one
pytest process per scenario, the way a user runs everything) must end with no traceback and no error
in setup; every test passes, fails naming a deployed defect (its report's ``defects``), the
server's own error or a threshold it measured (on a busy 2-core machine a latency limit can be
missed), or skips with a reason; the defects the deployed service has are named.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.backends import CONTRACT_LIMITS, DEPLOYED_ENV

RUNNER = Path(__file__).resolve().parents[2] / "run_load_tests.sh"
SHORT_WINDOWS = {"RATE_LIMIT_LOGIN": "5 per 10 seconds", "SEED_ACCOUNTS": "12"}
RATE = "5/10s"
EXPECTED_DEFECTS = {
    "limiter-500",
    "default-limit-missing",
    "data-without-token",
    "foreign-patient-readable",
    "foreign-session-readable",
    "non-audio-accepted",
    "route-always-500",
    "processing-failed",
    "missing-auth-403",
    "token-valid-after-logout",
    "upload-credited-to-another",
    "forwarded-for-trusted",
}


def _deployed(backend_factory):
    return backend_factory(base={**DEPLOYED_ENV, **CONTRACT_LIMITS, **SHORT_WINDOWS})


def _check_reports(reports: dict[str, dict]) -> set[str]:
    """Each report passed, names a defect or the server's error, or skipped with a reason."""
    named: set[str] = set()
    for name, report in reports.items():
        assert report["interrupted"] is False, name
        ids = {d["id"] for d in report.get("defects", [])}
        named |= ids
        problems = " ".join(report.get("problems", []))
        missed = [t for t in report.get("thresholds", []) if t.get("passed") is False]
        if not report["passed"]:  # a defect, the server's own error, or a measured limit missed
            assert ids or "the server said" in problems or missed, (name, report.get("reason"))
        assert "Traceback" not in problems and "raised" not in problems, (name, problems[:400])
    return named


@pytest.mark.slow
def test_the_runners_all_runs_to_the_end_against_the_deployed_service(
    backend_factory, tmp_path: Path
):
    """./run_load_tests.sh all: every scenario ends passed, failed naming a defect or skipped; the
    deployed defects are named and the limits said to be keyed by address."""
    backend = _deployed(backend_factory)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADTEST_")}
    env.update(LOADTEST_RESULTS_ROOT=str(tmp_path / "results"), NO_COLOR="1",
               LOADTEST_TOKEN_CACHE=str(tmp_path / "cache" / "tokens.json"))  # fmt: skip
    done = subprocess.run(
        ["bash", str(RUNNER), "all", "--host", backend.url, "--profile", "ci",
         "--login-rate", RATE],  # fmt: skip
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output[-3000:]
    assert "Traceback" not in output and "Exit:" not in output, output[-3000:]
    assert "of 21 scenarios" in output, output[-3000:]
    folder = next(p for p in (tmp_path / "results").iterdir() if not p.name.startswith("."))
    reports = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}
    reports.pop("run.json", None)
    assert len(reports) == 21, sorted(reports)
    named = _check_reports(reports)
    assert named >= EXPECTED_DEFECTS, named
    assert any(r.get("limit_shaped") for r in reports.values())
    assert "keyed by address" in output, output[-3000:]
