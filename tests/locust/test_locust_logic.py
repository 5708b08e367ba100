"""The Locust face's pure logic (no Locust import): probe verdicts, accounts, thresholds."""

from __future__ import annotations

import pytest

from loadkit.contract.account_pool import AccountPool, UploadBudget
from loadkit.contract.api import Account
from loadkit.measure.recording import RunRecorder
from loadkit.measure.upload_figures import UploadFigures
from loadkit.verdicts.locust_verdict import thresholds
from loadkit.verdicts.rate_limit import MAX_RETRY_AFTER_S, ProbeJudge
from loadkit.verdicts.slo import Profile


def _accounts(n: int) -> list[Account]:
    return [Account(f"user-{i}@example.com", "pw") for i in range(n)]


def test_probe_accepts_429_with_retry_after_and_honours_it() -> None:
    """2xx pass up to the limit; a 429 with an integer Retry-After passes and sets the wait."""
    judge = ProbeJudge(limit=3, window_s=60)
    assert all(judge.judge(t, 200, None).failure is None for t in (0, 1, 2))
    verdict = judge.judge(3, 429, "57")
    assert verdict.failure is None and verdict.wait_s == 57
    assert judge.judge(4, 429, "9999").wait_s == MAX_RETRY_AFTER_S


def test_probe_flags_what_breaks_the_contract() -> None:
    """A 200 past the limit, a 429 without Retry-After, a 500 and no response are failures."""
    judge = ProbeJudge(limit=2, window_s=60)
    judge.judge(0, 200, None)
    judge.judge(1, 200, None)
    assert "beyond the limit" in judge.judge(2, 200, None).failure
    assert "Retry-After" in judge.judge(3, 429, None).failure
    assert "HTTP 500" in judge.judge(4, 500, None).failure
    assert "no response" in judge.judge(5, None, None).failure


def test_probe_window_moves_and_restarts_after_retry_after() -> None:
    """Requests older than the window do not count; after an honoured 429 counting starts afresh."""
    judge = ProbeJudge(limit=1, window_s=10)
    assert judge.judge(0, 200, None).failure is None
    assert judge.judge(10, 200, None).failure is None  # the first left the window
    judge.judge(11, 429, "5")
    assert judge.judge(16, 200, None).failure is None


def test_accounts_spread_one_user_each_before_doubling_and_prober_kept_apart() -> None:
    """General accounts go round robin; the reserved ones only to the prober; overload is named."""
    pool = AccountPool(_accounts(5))
    first = [pool.take("general").email for _ in range(3)]
    assert len(set(first)) == 3 and pool.overloaded is None
    prober = pool.take("reserved")
    assert prober.email not in first
    for _ in range(4):
        pool.take("general")
    assert pool.overloaded and "rate limit" in pool.overloaded


def test_workers_get_disjoint_accounts() -> None:
    """Two worker processes never hand out the same general account."""
    one, two = AccountPool(_accounts(9)), AccountPool(_accounts(9))
    a = {one.take("general", 0, 2).email for _ in range(10)}
    b = {two.take("general", 1, 2).email for _ in range(10)}
    assert a and b and not a & b


def test_upload_budget_stops_below_the_hourly_limit() -> None:
    """An account gets at most per_hour uploads in any hour, then again once the hour has moved."""
    now = [0.0]
    budget = UploadBudget(per_hour=2, clock=lambda: now[0])
    account = _accounts(1)[0]
    assert budget.try_take(account) and budget.try_take(account)
    assert not budget.try_take(account)
    now[0] = 3601
    assert budget.try_take(account)


def test_thresholds_use_worst_read_endpoint_and_count_failed_logins() -> None:
    """p95 is the slowest read endpoint's (logins excluded); a failed login fails the run; a limit
    with nothing to measure (no upload) is skipped and said so."""
    profile = Profile(
        "t", {"locust": {"response_time_p95_ms": 50, "upload_response_time_p95_ms": 9}}, {}, {}
    )
    rec = RunRecorder()
    rec.start(0)
    for _ in range(20):
        rec.record("GET /api/sessions/", 0.010, status=200, at=1)
        rec.record("GET /api/patients/", 0.040, status=200, at=1)
        rec.record("POST /api/v1/login", 0.900, status=200, at=1)
    rec.record("POST /api/v1/login", 0.001, status=401, error_kind="http_4xx", at=1)
    rows, skipped = thresholds(profile, rec, 5.0)
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["response_time_p95_ms"]["endpoint"] == "GET /api/patients/"
    assert by_metric["response_time_p95_ms"]["passed"]
    assert by_metric["failed_logins"] == {
        "metric": "failed_logins",
        "limit": 0,
        "actual": 1,
        "passed": False,
        "measured": "failures of POST /api/v1/login",
    }
    assert skipped and "upload_response_time_p95_ms" in skipped[0]


def test_upload_figures_add_up_across_workers_and_split_a_mix_by_size() -> None:
    """Each process's uploads (bytes, request seconds) merge into one block: MB/s is decimal
    bytes over the summed seconds; a mix of sizes is split by size; failed ones counted apart."""
    one, two = UploadFigures(), UploadFigures()
    one.record(5_000_000, 5_000_300, 2.0, ok=True)
    two.record(25_000_000, 25_000_300, 8.0, ok=True)
    two.record(25_000_000, 0, 0.1, ok=False)
    one.merge(UploadFigures.from_dict(two.to_dict()))
    block = one.block()
    assert block["uploads"] == 2 and block["failed"] == 1
    assert block["sent_bytes"] == 30_000_600 and block["seconds"] == 10.0
    assert block["mb_per_s"] == 3.0
    assert block["by_size"]["25000000"]["mb_per_s"] == 3.13
    assert UploadFigures().block() is None


def test_live_thresholds_agree_with_those_judged_on_the_written_summary() -> None:
    """The web UI's rows (judged on the recorder as it is) equal the report's (judged on the
    summary it writes): same read endpoint, p95, error rate and failed logins."""
    profile = Profile(
        "t", {"locust": {"response_time_p95_ms": 50, "error_rate_percent": 1}}, {}, {}
    )
    rec = RunRecorder()
    rec.start(0)
    for i in range(40):
        rec.record("GET /api/sessions/", 0.001 * (i + 1), status=200, at=i / 10)
        rec.record("probe GET /api/sessions/", 0.9, status=200, at=i / 10)
    rec.record("GET /api/patients/", None, error_kind="timeout", at=2)
    rec.record("POST /api/v1/login", 0.2, status=500, error_kind="http_5xx", at=3)
    live, _ = thresholds(profile, rec, 12.0)
    written, _ = thresholds(profile, rec.summary(duration_s=5), 12.0)
    assert live == written
    by_metric = {r["metric"]: r for r in written}
    assert by_metric["response_time_p95_ms"]["endpoint"] == "GET /api/sessions/"
    assert by_metric["response_time_p95_ms"]["actual"] == pytest.approx(38.0, abs=0.05)
    assert by_metric["error_rate_percent"]["actual"] == round(100 * 2 / 82, 4)
    assert by_metric["failed_logins"]["actual"] == 1
