"""`--metrics-port` on a real headless Locust run, scraped by a real Prometheus every second.

During the run ``GET /metrics`` shows a latency histogram whose count grows; after it, Prometheus's
HTTP API gives the report's request count, a ``histogram_quantile`` p95 in the bucket of the
report's exact p95, and data for every query of the Grafana dashboard. Marked ``services``: it
needs the `prometheus` binary (Debian `prometheus`, installed by .ci/run); without it the test
skips loudly, and fails under REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from loadkit.measure.live_metrics import bucket_of
from tests.locust.conftest import REPO, RUN_TIMEOUT_S, locust_command, locust_env, read_json
from tests.prometheus import dashboard_queries, free_port, prometheus_binary, running_prometheus
from tests.services import services_required

pytestmark = [pytest.mark.services, pytest.mark.slow]
DASHBOARD = REPO / "dashboards" / "therapybridge-load.json"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def need_prometheus() -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when the prometheus binary is missing."""
    if prometheus_binary() is None:
        reason = "prometheus not installed (Debian: apt-get install prometheus)"
        if services_required():
            pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def _histogram_count(port: int) -> float:
    """Sum of every loadkit_request_duration_seconds_count in one scrape (0 before any)."""
    with OPENER.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    prefix = "loadkit_request_duration_seconds_count{"
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def _counts_while_running(proc: subprocess.Popen, port: int) -> list[float]:
    """The histogram count, scraped every second while Locust runs (bounded)."""
    counts: list[float] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline and len(counts) < 60:
        with contextlib.suppress(OSError):  # not serving yet
            counts.append(_histogram_count(port))
        time.sleep(1)
    return counts


def test_prometheus_scrapes_a_locust_run(backend, tmp_path: Path, need_prometheus) -> None:
    """Count grows during the run; Prometheus agrees with the JSON report; every panel has data."""
    port, testid = free_port(), tmp_path.name
    with running_prometheus(tmp_path, [f"127.0.0.1:{port}"]) as prom:
        args = ("--headless", "-u", "5", "-r", "5", "-t", "8s", "--metrics-port", str(port))
        proc = subprocess.Popen(
            locust_command(backend.url, *args), cwd=REPO, env=locust_env(tmp_path),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        counts = _counts_while_running(proc, port)
        _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        assert proc.returncode == 0, stderr[-3000:]
        grown = [c for c in counts if c > 0]
        assert len(grown) >= 2 and grown[-1] > grown[0], counts
        report = read_json(tmp_path / "locust_all.json")
        sel = f'{{testid="{testid}"}}'
        total = prom.query(f"sum(last_over_time(loadkit_requests_total{sel}[5m]))")
        assert float(total[0]["value"][1]) == report["total_requests"] > 0
        buckets = f"last_over_time(loadkit_request_duration_seconds_bucket{sel}[5m])"
        p95 = prom.query(f"histogram_quantile(0.95, sum by (le) ({buckets}))")
        lower, upper = bucket_of(report["response_time_p95_ms"] / 1000)
        assert lower <= float(p95[0]["value"][1]) <= upper, (p95, report["response_time_p95_ms"])
        scraped = f"max_over_time(timestamp(loadkit_requests_total{sel})[5m:1s])"
        at = float(prom.query(f"max({scraped})")[0]["value"][1])  # the last scrape of the run
        for expr in dashboard_queries(json.loads(DASHBOARD.read_text()), testid, "30s"):
            assert prom.query(expr, at=at), f"no data for the dashboard query {expr}"
