"""A target that answers 500s, drops connections and stalls: each fault is counted under its own
kind (http_5xx, connection, timeout), the first examples are in ``errors``, and the run goes on.

The chaos server (tests/faults/chaos_server.py) logs what it did to every request, so each test
compares the report's counts with the server's own, exactly for the sequential pytest run and at
least one of each for Locust.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import locust_command, run_tool, suite_command

pytestmark = pytest.mark.faults

KINDS = {"500": "http_5xx", "close": "connection", "cut": "connection", "stall": "timeout"}
TIMEOUT_S = 1.0


def _check_kinds(report: dict, faults: dict[str, int], *, exact: bool) -> None:
    """Each fault the server dealt shows under its kind; examples of each kind are in errors."""
    by_kind = report["errors_by_kind"]
    dealt: dict[str, int] = {}
    for fault, n in faults.items():
        dealt[KINDS[fault]] = dealt.get(KINDS[fault], 0) + n
    for kind in ("http_5xx", "connection", "timeout"):
        if exact:
            assert by_kind[kind] == dealt.get(kind, 0) >= 1, (kind, by_kind, faults)
        else:
            assert 1 <= by_kind[kind] <= dealt.get(kind, 0), (kind, by_kind, faults)
    assert by_kind["check"] == 0 and by_kind["http_4xx"] == 0, by_kind
    examples = {e["kind"] for e in report["errors"]}
    assert set(KINDS.values()) <= examples, report["errors"]
    assert all(e["status"] == 500 for e in report["errors"] if e["kind"] == "http_5xx")
    assert all(e["status"] is None for e in report["errors"] if e["kind"] != "http_5xx")


def _check_no_fault_latency(report: dict) -> None:
    """Only answered requests carry latency: status codes + dropped + timed out = total, and no
    latency reaches the client time-out (a stall is not a slow response)."""
    answered = sum(report["status_codes"].values())
    by_kind = report["errors_by_kind"]
    assert answered + by_kind["connection"] + by_kind["timeout"] == report["total_requests"]
    assert report["response_time_max_ms"] < TIMEOUT_S * 1000


def test_pytest_suite_counts_each_fault_under_its_kind(chaos, tmp_path: Path) -> None:
    """baseline_test.py's endpoint latency against 500s, drops and stalls (every 3rd request):
    exact counts per kind, examples, no latency for the failures, every planned request sent,
    passed false and exit 1, within its time-outs."""
    server = chaos(faults="500,close,cut,stall", every=3, stall_s=30)
    done = run_tool(
        suite_command("baseline_test.py", "-k", "endpoint_latency", "--host", server.url,
                       "--profile", "faults", "--request-timeout", str(TIMEOUT_S)),
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.output[-3000:]
    report = done.reports["endpoint_latency.json"]
    assert report["passed"] is False and report["interrupted"] is False
    assert report["total_requests"] == 40  # 10 x 4 routes: the run went on past every fault
    faults = server.faults()
    assert sum(faults.values()) == 10, faults
    _check_kinds(report, faults, exact=True)
    _check_no_fault_latency(report)
    assert done.seconds < 60, done.seconds  # three 1 s time-outs, not three 30 s stalls
    assert "error_rate_percent: limit 1.0" in done.output


def test_locust_counts_each_fault_under_its_kind(chaos, tmp_path: Path) -> None:
    """A headless Locust run against 500s, bodies cut short and stalls, on an unauthenticated
    route (/health) and on authenticated ones (the db-pool persona's lists): each kind counted,
    with examples, requests after the first fault, passed false, a non-zero exit, bounded time.

    (A connection dropped before any response byte is not dealt here: geventhttpclient, under
    Locust's FastHttpUser, resends an idempotent GET on a fresh connection by itself.)"""
    paths = "/health,/api/sessions/,/api/patients/"
    server = chaos(faults="500,cut,stall", every=3, stall_s=30, paths=paths)
    done = run_tool(
        locust_command("--host", server.url, "-u", "6", "-r", "6", "-t", "7s", "--tags", "health",
                       "db_pool", "--profile", "faults", "--request-timeout", str(TIMEOUT_S)),
        tmp_path,
    )  # fmt: skip
    assert done.returncode != 0, done.output[-3000:]
    report = done.reports["locust_db_pool_health.json"]
    assert report["passed"] is False and report["interrupted"] is False
    faults = server.faults()
    _check_kinds(report, faults, exact=False)
    _check_no_fault_latency(report)
    load = [e for e in server.entries() if e.get("path") in paths.split(",") and "req" in e]
    first_fault = next(i for i, e in enumerate(load) if e["fault"])
    assert len(load) - first_fault > 3, "the run stopped at the first fault"
    assert done.seconds < 60, done.seconds
    _check_grouped_failures(report, done.results)


def _check_grouped_failures(report: dict, root: Path) -> None:
    """Alike failures are one entry with a count (report) and one row (Locust's failures CSV):
    no message names a concrete URL, so neither grows with the ids the personas visit."""
    assert all(e["count"] >= 1 for e in report["errors"])
    keys = [(e["endpoint"], e["kind"], e["status"], e["message"]) for e in report["errors"]]
    assert len(keys) == len(set(keys)), keys
    assert sum(e["count"] for e in report["errors"]) > len(keys), report["errors"]
    rows = next(root.rglob("*_failures.csv")).read_text().splitlines()[1:]
    assert rows and not any("URL http" in row for row in rows), rows[:5]
    assert not any("URL http" in e["message"] for e in report["errors"]), report["errors"]
