"""The per-endpoint CPU cost estimate (`loadkit.verdicts.cost`): a regression recovers known costs,
one endpoint falls back to the per-request share, a fit never goes negative, an estimate is capped
at
the request's own time, and the time-share estimate splits by requests x average latency."""

from __future__ import annotations

import pytest

from loadkit.measure.trace import Sample
from loadkit.verdicts import cost

LOGIN = "POST /api/v1/login"
READ = "GET /api/sessions/{id}"


def _cpu_rows(t0: float, cpu_percent: list[float]) -> list[dict]:
    """One server sample a second; the first only opens the first interval."""
    rows = [{"t": t0, "server_rss_mb": 100.0, "server_cpu_percent": None}]
    rows += [
        {"t": t0 + i + 1, "server_rss_mb": 100.0, "server_cpu_percent": pct}
        for i, pct in enumerate(cpu_percent)
    ]
    return rows


def _samples(t0: float, counts: list[dict[str, int]], latency_s: float = 0.5) -> list[Sample]:
    """``counts[i][endpoint]`` requests started inside second i."""
    out = []
    for second, mix in enumerate(counts):
        for endpoint, n in mix.items():
            out += [
                Sample(endpoint, t0 + second + (k + 1) / (n + 2), latency_s, 200, None)
                for k in range(n)
            ]
    return out


def test_regression_recovers_the_cost_of_each_endpoint() -> None:
    """CPU made of 20 ms per login and 2 ms per read, over a varying mix, is fitted back."""
    t0 = 1_000.0
    mix = [{LOGIN: a, READ: b} for a, b in [(1, 10), (4, 5), (2, 30), (6, 0), (0, 20), (3, 15)]]
    cpu = [100 * (0.020 * m[LOGIN] + 0.002 * m[READ]) for m in mix]
    block = cost.estimate(_samples(t0, mix), _cpu_rows(t0, cpu))
    assert block["method"] == "regression" and block["intervals"] == len(mix)
    assert block["endpoints"][LOGIN]["cpu_ms_per_request"] == pytest.approx(20.0, abs=0.01)
    assert block["endpoints"][READ]["cpu_ms_per_request"] == pytest.approx(2.0, abs=0.01)
    assert block["endpoints"][LOGIN]["requests"] == sum(m[LOGIN] for m in mix)
    shares = [e["cpu_share_percent"] for e in block["endpoints"].values()]
    assert sum(shares) == pytest.approx(100.0, abs=0.2)


def test_one_endpoint_gets_the_run_cpu_per_request() -> None:
    """With one endpoint there is nothing to fit: the run's CPU seconds over its requests."""
    t0 = 50.0
    mix = [{READ: 10}, {READ: 10}, {READ: 20}]
    block = cost.estimate(_samples(t0, mix), _cpu_rows(t0, [10.0, 10.0, 20.0]))
    assert block["method"] == "requests_share"
    assert block["server_cpu_s"] == pytest.approx(0.4)
    assert block["endpoints"][READ]["cpu_ms_per_request"] == pytest.approx(10.0)


def test_a_mix_that_never_varies_is_not_fitted() -> None:
    """Two endpoints always in the same ratio cannot be told apart: per-request share instead."""
    t0 = 0.0
    mix = [{LOGIN: 1, READ: 2}] * 6
    block = cost.estimate(_samples(t0, mix), _cpu_rows(t0, [30.0] * 6))
    assert block["method"] == "requests_share"


def test_the_fit_pins_a_negative_cost_to_zero() -> None:
    """An endpoint whose count runs against the CPU would fit negative: it is pinned to 0."""
    t0 = 0.0
    mix = [{LOGIN: a, READ: b} for a, b in [(1, 9), (2, 1), (3, 8), (4, 0), (5, 7), (6, 2)]]
    cpu = [100 * (0.02 * m[LOGIN] - 0.001 * m[READ]) + 1 for m in mix]
    block = cost.estimate(_samples(t0, mix), _cpu_rows(t0, cpu))
    assert block["method"] == "regression"
    assert block["endpoints"][READ]["cpu_ms_per_request"] == 0.0
    assert block["endpoints"][LOGIN]["cpu_ms_per_request"] > 0


def test_cpu_per_request_is_capped_at_the_request_time() -> None:
    """One request cannot use more CPU than its own duration: a larger estimate is capped."""
    t0 = 0.0
    mix = [{READ: 2}] * 3
    block = cost.estimate(_samples(t0, mix, latency_s=0.010), _cpu_rows(t0, [50.0] * 3))
    row = block["endpoints"][READ]
    assert row["capped"] is True and row["estimate_ms"] == pytest.approx(250.0)
    assert row["cpu_ms_per_request"] == pytest.approx(10.0)


def test_intervals_skip_samples_without_a_server_figure() -> None:
    """A sample with no RSS (server unreadable) opens no interval; CPU % x seconds is CPU s."""
    rows = [
        {"t": 0.0, "server_rss_mb": 10.0, "server_cpu_percent": None},
        {"t": 2.0, "server_rss_mb": 10.0, "server_cpu_percent": 50.0},
        {"t": 3.0, "server_rss_mb": None, "server_cpu_percent": 99.0},
        {"t": 4.0, "server_rss_mb": 10.0, "server_cpu_percent": 25.0},
    ]
    assert cost.cpu_intervals(rows) == [(0.0, 2.0, 1.0), (2.0, 4.0, 0.5)]


def test_no_intervals_or_no_requests_give_no_estimate() -> None:
    """Without CPU intervals or without traced requests there is no cost block."""
    assert cost.estimate(_samples(0.0, [{READ: 3}]), []) is None
    assert cost.estimate([], _cpu_rows(0.0, [10.0, 10.0])) is None


def test_time_share_splits_by_requests_times_latency() -> None:
    """Locust's estimate: an endpoint with 3x the server time gets 3x the CPU."""
    endpoints = {
        LOGIN: {"requests": 10, "response_time_avg_ms": 300.0},
        READ: {"requests": 100, "response_time_avg_ms": 10.0},
        "GET /unused": {"requests": 0, "response_time_avg_ms": None},
    }
    block = cost.time_share(endpoints, cpu_seconds=4.0)
    assert block["method"] == "time_share" and block["intervals"] is None
    assert set(block["endpoints"]) == {LOGIN, READ}
    assert block["endpoints"][LOGIN]["cpu_share_percent"] == pytest.approx(75.0)
    assert block["endpoints"][READ]["cpu_share_percent"] == pytest.approx(25.0)
    assert cost.time_share(endpoints, cpu_seconds=None) is None
