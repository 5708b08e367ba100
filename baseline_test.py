"""A quick latency baseline without authentication: /health, the root and probes, connection reuse.

Run: ``pytest baseline_test.py [--host URL]``. Each test writes its JSON report into the run folder.
"""

from loadkit.suite import baseline_scenarios


def test_sequential_health(drive):
    """20 sequential GET /health (by default) answer 200 within the read latency target."""
    drive(baseline_scenarios.sequential_health)


def test_endpoint_latency(drive):
    """/, /health, /ready and /live each answer 200 within the read latency target."""
    drive(baseline_scenarios.endpoint_latency)


def test_connection_stability(drive):
    """50 sequential requests succeed, all on one kept-alive connection."""
    drive(baseline_scenarios.connection_stability)
