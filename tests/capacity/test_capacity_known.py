"""The capacity search against a server of known capacity, and against the rate limit.

Wall time: the FIFO search about 55 s (it starts at 20 rps, half the true capacity), the
rate-limit run about 45 s (the steady windows are 10 s each; the CI budget the issue grants).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadkit.verdicts.capacity import SERVER_FACTORS
from tests.backends import CONTRACT_LIMITS, write_accounts
from tests.capacity.conftest import REPO, FifoServer, run_capacity

SCHEMA_FIELDS = ("schema", "test_name", "tool", "started_at", "parameters", "environment",
                 "max_sustainable_rps", "slo", "steps", "limiting_factor", "concurrent_therapists",
                 "search_ended", "ended")  # fmt: skip
STEP_FIELDS = ("offered_rps", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "error_rate_percent",
               "late_starts", "server_cpu_percent", "pool_checked_out_max", "passed", "reasons",
               "window_s", "requests", "phase")  # fmt: skip


@pytest.mark.slow
def test_finds_the_capacity_of_a_fifo_server(
    fifo_server: FifoServer, accounts_file: Path, tmp_path: Path
) -> None:
    """One FIFO worker at 25 ms a request (40 rps): max_sustainable_rps lands within 25% below
    and 5% above 40, the server is named as the limit, and capacity.json has the agreed fields."""
    command = [sys.executable, "-m", "loadkit.capacity", "--host", fifo_server.url,
               "--accounts", str(accounts_file), "--start-rps", "20", "--precision", "0.15",
               "--warmup", "2", "--run-time", "100s"]  # fmt: skip
    run = run_capacity(tmp_path, command, timeout_s=160)
    assert run.code == 0, run.output[-3000:]
    report = run.report
    assert report is not None and all(key in report for key in SCHEMA_FIELDS)
    assert all(key in step for step in report["steps"] for key in STEP_FIELDS)
    found, true = report["max_sustainable_rps"], fifo_server.capacity_rps
    assert 0.75 * true <= found <= 1.05 * true, run.output[-3000:]
    assert report["limiting_factor"]["name"] in SERVER_FACTORS, report["limiting_factor"]
    assert report["search_ended"] == "first failing step after last pass"
    assert (Path(report_dir(tmp_path)) / "capacity_rate.png").stat().st_size > 1000


def report_dir(tmp_path: Path) -> Path:
    """The run folder the capacity run wrote."""
    return sorted((tmp_path / "results").glob("*/capacity.json"))[-1].parent


@pytest.mark.slow
def test_the_rate_limit_stops_the_search(backend_factory, tmp_path: Path) -> None:
    """The bundled backend with its contract limits (100/minute per user) and one general
    account, searched through the runner: 429s stop the search and the factor is rate_limit,
    with the refusals as evidence."""
    backend = backend_factory(base=CONTRACT_LIMITS, SEED_ACCOUNTS="3")
    accounts_file = write_accounts(tmp_path / "accounts.json", 3)  # 2 reserved, 1 general
    command = [str(REPO / "run_load_tests.sh"), "capacity", "--host", backend.url,
               "--accounts", str(accounts_file), "--run-time", "36s"]  # fmt: skip
    run = run_capacity(tmp_path, command, timeout_s=120)
    assert run.report is not None, run.output[-3000:]
    factor = run.report["limiting_factor"]
    assert factor["name"] == "rate_limit", factor
    assert factor["evidence"]["status_429"] > 0
    assert "429" in factor["summary"]
    assert (report_dir(tmp_path) / "report.md").read_text().count("## Capacity") == 1


@pytest.mark.parametrize("args, message", [
    (["--mix", "writes"], "--mix must be realistic or reads"),
    (["--server-workers", "1,x"], "--server-workers must list worker counts"),
    (["--host", "http://192.0.2.1:80"], "outside loopback"),
])  # fmt: skip
def test_bad_capacity_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    """Bad capacity options and an unconfirmed outside host: one line, exit 2, nothing sent."""
    run = run_capacity(tmp_path, [str(REPO / "run_load_tests.sh"), "capacity", *args], 60)
    assert run.code == 2
    assert message in run.output and "Traceback" not in run.output
    assert run.report is None
