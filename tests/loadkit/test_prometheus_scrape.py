"""A real Prometheus scrapes a run's /metrics every second; its HTTP API agrees with our figures.

Marked ``services``: it needs the `prometheus` binary (Debian `prometheus`, installed by .ci/run);
without it the test skips loudly, and fails under REQUIRE_SERVICES=1.
"""

import json
import random
from pathlib import Path

import pytest

from loadkit.measure.histogram import LatencyHistogram
from loadkit.measure.live_metrics import LiveMetrics, bucket_of
from tests.prometheus import dashboard_queries, prometheus_binary, running_prometheus
from tests.services import services_required

pytestmark = pytest.mark.services
DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "therapybridge-load.json"
TESTID = "prom-test"


@pytest.fixture
def need_prometheus() -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) when the prometheus binary is missing."""
    if prometheus_binary() is None:
        reason = "prometheus not installed (Debian: apt-get install prometheus)"
        if services_required():
            pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)


def _drive(metrics: LiveMetrics, hist: LatencyHistogram, n: int) -> None:
    """Observe n requests of spread latencies into the live metrics and our histogram alike."""
    rng = random.Random(18)
    for _ in range(n):
        latency = rng.lognormvariate(-3.5, 0.8)  # median ~30 ms, a long tail
        metrics.observe_request("GET /api/sessions/", latency, None)
        hist.record(int(latency * 1_000_000 + 0.5))
    metrics.observe_request("GET /api/sessions/", None, "timeout")
    metrics.set_server(120.0, 35.0)
    metrics.set_pool(2, 5, 15)
    metrics.set_canary_p99(4.0)
    metrics.set_users(5)
    metrics.set_generator_cpu(10.0)
    metrics.set_thresholds([{"metric": "p95", "passed": True}])


def test_prometheus_agrees_with_our_figures(tmp_path: Path, need_prometheus) -> None:
    """Scraped count equals ours, histogram_quantile p95 is in our p95 bucket, panels have data."""
    metrics, hist = LiveMetrics(TESTID), LatencyHistogram()
    port = metrics.serve(0)
    try:
        with running_prometheus(tmp_path, [f"127.0.0.1:{port}"]) as prom:
            _drive(metrics, hist, 2000)
            selector = f'loadkit_requests_total{{testid="{TESTID}"}}'
            got = prom.wait_scraped(selector, lambda r: r and float(r[0]["value"][1]) == 2001)
            assert float(got[0]["value"][1]) == 2001
            p95 = prom.query(
                "histogram_quantile(0.95, sum by (le) "
                f'(loadkit_request_duration_seconds_bucket{{testid="{TESTID}"}}))'
            )
            ours = hist.percentile(95) / 1_000_000
            lower, upper = bucket_of(ours)
            assert lower <= float(p95[0]["value"][1]) <= upper, (p95, ours)
            twice = f"count_over_time({selector}[1m]) >= 2"  # rate() needs two scrapes
            prom.wait_scraped(twice, bool)
            dashboard = json.loads(DASHBOARD.read_text())
            for expr in dashboard_queries(dashboard, TESTID, interval="1m"):
                assert prom.query(expr), f"no data for the dashboard query {expr}"
    finally:
        metrics.stop(0)
