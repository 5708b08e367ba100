"""The access-control probe names the deployed service's authentication defects (a missing header
answered 403, a token alive after logout, an upload credited to another therapist, a trusted
X-Forwarded-For) with their evidence, and names none of them on the contract's backend.

Each test runs the probe as a user does (`pytest pytest_load_test.py -k access_control_probe` in a
subprocess) against a reference backend started for it, with a 5-per-4-s login window given to
``--login-rate`` too, so spending the login limit costs seconds.
"""

from __future__ import annotations

from pathlib import Path

from tests.backends import CONTRACT_LIMITS, DEPLOYED_ENV, write_accounts
from tests.conftest import SUITE_ACCOUNTS

AUTH_DEFECTS = {
    "missing-auth-403",
    "token-valid-after-logout",
    "upload-credited-to-another",
    "forwarded-for-trusted",
}
SHORT_LOGIN = {"RATE_LIMIT_LOGIN": "5 per 4 seconds", "SEED_ACCOUNTS": str(SUITE_ACCOUNTS)}


def _run(backend_factory, run_probes, tmp_path: Path, base: dict):
    backend = backend_factory(base={**base, **CONTRACT_LIMITS, **SHORT_LOGIN})
    accounts = write_accounts(tmp_path / "accounts.json", SUITE_ACCOUNTS)
    args = ["--host", backend.url, "--accounts", str(accounts), "--server-pid", str(backend.pid)]
    run = run_probes("access_control_probe", *args, "--login-rate", "5/4s", timeout_s=180)
    return run, run.reports["access_control_probe.json"]


def test_the_deployed_auth_defects_are_named_with_evidence(backend_factory, run_probes, tmp_path):
    """REFERENCE_BEHAVIOUR=deployed: all four authentication defects are in the report's defects,
    each with its evidence (statuses and ids, never a token), and the probe fails."""
    run, report = _run(backend_factory, run_probes, tmp_path, DEPLOYED_ENV)
    assert run.returncode == 1, run.output
    named = {d["id"]: d for d in report["defects"]}
    assert set(named) >= AUTH_DEFECTS, (sorted(named), report["auth_probe"])
    assert named["missing-auth-403"]["evidence"]["status"] == 403
    assert named["token-valid-after-logout"]["evidence"]["status"] == 200
    credit = named["upload-credited-to-another"]["evidence"]
    assert credit["owner"] not in credit["credited"] and credit["accepted"] >= 1, credit
    assert credit["sessions_checked"] >= 1 and credit["sessions"], credit
    forwarded = named["forwarded-for-trusted"]["evidence"]
    assert forwarded["status"] == 401 and forwarded["logins_to_limit"] == 6, forwarded
    assert "with the login limit spent, a login claiming X-Forwarded-For" in run.output
    text = str(report)
    assert "access_token" not in text and "eyJ" not in text and "LoadTest@" not in text


def test_the_contract_backend_names_none_of_them(backend_factory, run_probes, tmp_path):
    """The contract's backend: no authentication defect; the X-Forwarded-For login is refused
    like the ones before it, the logged-out token is 401, the missing header 401."""
    run, report = _run(backend_factory, run_probes, tmp_path, {})
    assert run.returncode == 0, run.output
    assert not {d["id"] for d in report["defects"]} & AUTH_DEFECTS, report["defects"]
    probe = report["auth_probe"]
    assert probe["missing_auth"] == {"status": 401}
    assert probe["after_logout"] == {"status": 401}
    assert probe["forwarded_for"] == {"status": 429, "logins_to_limit": 6}, probe
    credit = probe["upload_credit"]  # another's upload is refused: the owner's own one is judged
    assert credit["accepted"] == 1 and credit["sessions_checked"] >= 1, credit
