"""LiveMetrics: the Prometheus text a real HTTP scrape of /metrics returns, labelled by testid."""

import math
import socket
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadkit.measure.live_metrics import BUCKETS_S, LiveMetrics, MetricsPortError, bucket_of

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(port: int) -> dict[tuple, float]:
    """GET /metrics and parse it: {(sample name, sorted labels): value}."""
    with OPENER.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def served():
    """A LiveMetrics serving on a free loopback port; stopped without linger afterwards."""
    metrics = LiveMetrics("run-1")
    port = metrics.serve(0)
    yield metrics, port
    metrics.stop(0)


def test_counters_and_histogram_by_endpoint_and_kind(served):
    """Requests count by endpoint, failures by endpoint and kind, latency buckets are cumulative."""
    metrics, port = served
    for latency in (0.003, 0.02, 0.02, 0.2):
        metrics.observe_request("GET /api/sessions/", latency, None)
    metrics.observe_request("GET /api/sessions/", 0.04, "http_5xx")
    metrics.observe_request("GET /api/sessions/", None, "timeout")
    got = scrape(port)
    ep = (("endpoint", "GET /api/sessions/"), ("testid", "run-1"))
    assert got[("loadkit_requests_total", ep)] == 6
    kind = tuple(sorted((*ep, ("kind", "timeout"))))
    assert got[("loadkit_failures_total", kind)] == 1
    unseen = tuple(sorted((*ep, ("kind", "check"))))
    assert got[("loadkit_failures_total", unseen)] == 0  # every kind exported from 0
    count = got[("loadkit_request_duration_seconds_count", ep)]
    assert count == 5  # the time-out got no response: no latency
    bucket = tuple(sorted((*ep, ("le", "0.025"))))
    assert got[("loadkit_request_duration_seconds_bucket", bucket)] == 3
    assert math.isclose(got[("loadkit_request_duration_seconds_sum", ep)], 0.283)


def test_count_grows_between_scrapes(served):
    """A second scrape after more requests sees a larger histogram count (the run is live)."""
    metrics, port = served
    metrics.observe_request("GET /health", 0.01, None)
    key = (
        "loadkit_request_duration_seconds_count",
        (("endpoint", "GET /health"), ("testid", "run-1")),
    )
    first = scrape(port)[key]
    metrics.observe_request("GET /health", 0.01, None)
    assert scrape(port)[key] == first + 1


def test_gauges_absent_until_set_then_labelled(served):
    """Unknown gauges are not exported; set ones carry testid (and state / metric labels)."""
    metrics, port = served
    assert not any(name.startswith("loadkit_pool") for name, _ in scrape(port))
    metrics.set_server(100.0, 42.5)
    metrics.set_pool(3, 5, None)
    metrics.set_canary_p99(12.0)
    metrics.set_users(7)
    metrics.set_generator_cpu(15.0)
    metrics.set_thresholds(
        [{"metric": "p95", "passed": True}, {"metric": "errors", "passed": False}]
    )
    got = scrape(port)
    tid = (("testid", "run-1"),)
    assert got[("loadkit_server_rss_bytes", tid)] == 100 * 1024 * 1024
    assert got[("loadkit_pool_connections", (("state", "open"), *tid))] == 5
    assert ("loadkit_pool_connections", (("state", "capacity"), *tid)) not in got
    assert got[("loadkit_canary_p99_seconds", tid)] == 0.012
    assert got[("loadkit_users", tid)] == 7
    assert got[("loadkit_threshold_passing", (("metric", "errors"), *tid))] == 0
    assert got[("loadkit_threshold_passing", (("metric", "p95"), *tid))] == 1


def test_refresh_sets_gauges_at_scrape_time_and_survives_errors(served):
    """on_scrape callbacks run before each scrape; a broken one does not break the scrape."""
    metrics, port = served
    calls = []

    def refresh(live: LiveMetrics) -> None:
        calls.append(1)
        live.set_users(len(calls))

    def broken(_live: LiveMetrics) -> None:
        raise RuntimeError("monitor gone")

    metrics.on_scrape(broken)
    metrics.on_scrape(refresh)
    scrape(port)
    assert scrape(port)[("loadkit_users", (("testid", "run-1"),))] == 2


def test_pool_and_server_samples_become_gauges(served):
    """A pool sample gives in use, open (size + overflow) and capacity (size + max_overflow)."""
    metrics, port = served
    metrics.set_pool_sample({"size": 5, "overflow": -2, "max_overflow": 10, "checked_out": 1})
    metrics.set_server_sample({"rss_mb": 2.0, "cpu_percent": None})
    got = scrape(port)
    pool = {
        dict(k)["state"]: v for (name, k), v in got.items() if name == "loadkit_pool_connections"
    }
    assert pool == {"in_use": 1, "open": 3, "capacity": 15}
    assert got[("loadkit_server_rss_bytes", (("testid", "run-1"),))] == 2 * 1024 * 1024
    assert ("loadkit_server_cpu_percent", (("testid", "run-1"),)) not in got
    metrics.set_pool_sample(None)
    assert not any(name == "loadkit_pool_connections" for name, _ in scrape(port))


def test_warmup_requests_counted_apart_and_reset(served):
    """Warm-up requests are not in the run's counters; reset() starts the counters from zero."""
    metrics, port = served
    metrics.observe_request("GET /health", 0.01, None, warmup=True)
    metrics.observe_request("GET /health", 0.01, None)
    got = scrape(port)
    ep = (("endpoint", "GET /health"), ("testid", "run-1"))
    assert got[("loadkit_requests_total", ep)] == 1
    assert got[("loadkit_warmup_requests_total", (("testid", "run-1"),))] == 1
    metrics.reset()
    assert ("loadkit_requests_total", ep) not in scrape(port)


def test_worker_delta_merges_into_the_served_figures(served):
    """A worker's take_delta, merged on the serving side, adds up; a second take is empty."""
    metrics, port = served
    worker = LiveMetrics("run-1")
    worker.observe_request("POST /api/v1/login", 0.3, None)
    worker.observe_request("POST /api/v1/login", None, "connection")
    metrics.merge_delta(worker.take_delta())
    assert worker.take_delta()["endpoints"] == {}
    got = scrape(port)
    ep = (("endpoint", "POST /api/v1/login"), ("testid", "run-1"))
    assert got[("loadkit_requests_total", ep)] == 2
    assert got[("loadkit_failures_total", tuple(sorted((*ep, ("kind", "connection")))))] == 1


def test_serves_loopback_only_and_lingers():
    """The endpoint binds 127.0.0.1, answers during the linger, and is closed after it."""
    metrics = LiveMetrics("run-3")
    port = metrics.serve(0)
    assert scrape(port)  # serving
    started = time.monotonic()
    metrics.stop(0.5)
    assert time.monotonic() - started >= 0.5
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_taken_port_is_one_clear_error():
    """A port already taken raises MetricsPortError naming the option and the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(MetricsPortError, match=f"--metrics-port {port}: cannot serve"):
            LiveMetrics("run-4").serve(port)


def test_bucket_of_brackets_a_value():
    """bucket_of gives the (lower, upper] bucket of a value; past the last bound, upper is inf."""
    assert bucket_of(0.005) == (0.0, 0.005)
    assert bucket_of(0.0051) == (0.005, 0.01)
    assert bucket_of(BUCKETS_S[-1] + 1) == (BUCKETS_S[-1], math.inf)
