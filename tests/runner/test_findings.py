"""Findings with their evidence: a CPU, cost, canary or pool finding is made only from at least
evidence.MIN_SAMPLES samples and carries them; CPU per request never exceeds the request's own
time; the canary's gap equal to its own interval is no finding; an all-failed probe is not
passed."""

from __future__ import annotations

import time
from pathlib import Path

from loadkit.measure import engine
from loadkit.measure.http import Request
from loadkit.measure.trace import Sample
from loadkit.report import render, writer
from loadkit.suite.outcome import Outcome, inconclusive, reporting
from loadkit.verdicts import bottlenecks, cost
from loadkit.verdicts.evidence import MIN_SAMPLES
from loadkit.watch import canary
from tests.runner.reports import constant_scenario
from tests.runner.tiny_server import serve


def _kinds(report_: dict) -> dict[str, bottlenecks.Finding]:
    return {f.kind: f for f in bottlenecks.analyse(report_)}


def test_cpu_bound_needs_enough_samples(tmp_path: Path) -> None:
    """95% CPU from 1 sample says "too few samples"; from MIN_SAMPLES it is the CPU-bound one."""
    few = {"memory_peak_mb": 90.0, "cpu_avg_percent": 95.0, "cpu_samples": 1}
    enough = few | {"cpu_samples": MIN_SAMPLES}
    one = constant_scenario(tmp_path, "one_sample", latency_ms=5.0, resources=few)
    many = constant_scenario(tmp_path, "many_samples", latency_ms=5.0, resources=enough)
    assert "server_cpu" not in _kinds(one)
    assert "too few samples" in _kinds(one)["server_cpu_too_few"].text
    finding = _kinds(many)["server_cpu"]
    assert finding.evidence["cpu_samples"] == MIN_SAMPLES
    assert f"over {MIN_SAMPLES} samples" in finding.text
    text = render.render(tmp_path)[0].read_text()
    assert "CPU-bound" in text and "too few samples to judge whether it is CPU-bound" in text


def _cpu_rows(t0: float, seconds: int, cpu_percent: float) -> list[dict]:
    return [
        {"t": t0 + i, "server_rss_mb": 90.0, "server_cpu_percent": cpu_percent}
        for i in range(seconds + 1)
    ]


def test_cpu_per_request_never_exceeds_the_request_time() -> None:
    """A busy CPU with few 40 ms logins would give ~500 ms each: capped at 40 ms, marked."""
    t0 = 1000.0
    samples = [Sample("POST /api/v1/login", t0 + i * 0.5 + 0.1, 0.040, 200, None) for i in range(8)]
    block = cost.estimate(samples, _cpu_rows(t0, 4, 100.0))
    login = block["endpoints"]["POST /api/v1/login"]
    assert login["estimate_ms"] > 400  # 4 CPU seconds over 8 requests...
    assert login["cpu_ms_per_request"] == 40.0 and login["capped"] is True
    assert block["intervals"] == 4


def test_hot_spot_from_too_few_intervals_says_so() -> None:
    """A hot spot estimated from fewer than MIN_SAMPLES CPU intervals is "too few samples"."""
    t0 = 1000.0
    for seconds, kind in ((2, "cost_too_few"), (MIN_SAMPLES + 3, "cost_hot_spot")):
        logins = [
            Sample("POST /api/v1/login", t0 + 0.1 + 0.5 * i, 0.3, 200, None)
            for i in range(2 * seconds)
        ]
        block = cost.estimate(logins, _cpu_rows(t0, seconds, 50.0))
        findings = _kinds({"cost": block})
        assert kind in findings, (seconds, findings)
        assert findings[kind].evidence["cpu_samples"] == block["intervals"] == seconds
    assert "costs about 250 ms of server CPU per request" in findings[kind].text


def test_canary_gap_equal_to_its_interval_is_no_finding() -> None:
    """A real canary at 10/s beside an idle server: the ~100 ms gap is its interval, no finding."""
    with serve() as (url, _):
        live = canary.Canary(url, canary.Settings(rate=10.0)).start()
        time.sleep(1.2)
        live.stop()
        block = live.summary(idle_p99_ms=live.p99_ms())
    assert block["requests"] >= MIN_SAMPLES and block["max_gap_ms"] >= 90
    assert not any(f.kind.startswith("canary") for f in bottlenecks.analyse({"canary": block}))
    stalled = block | {"max_gap_ms": 100 + bottlenecks.CANARY_GAP_EXCESS_MS + 250}
    gap = _kinds({"canary": stalled})["canary_gap"]
    assert "against a 100 ms sampling interval" in gap.text
    assert gap.evidence["requests"] == block["requests"]


def test_pool_saturation_from_two_samples_is_too_few(tmp_path: Path) -> None:
    """A full pool seen in 2 samples is not called saturated; the line says too few samples."""
    pool = {"size": 5, "max_overflow": 10, "checked_out_max": 15, "exhaustion_events": 2}
    built = constant_scenario(tmp_path, "short", latency_ms=5.0, db_pool=pool | {"samples": 2})
    findings = _kinds(built)
    assert "pool_saturation" not in findings
    assert "too few samples" in findings["pool_too_few"].text


def test_probe_whose_requests_all_failed_is_not_passed(tmp_path: Path) -> None:
    """A probe with no threshold on errors, every request refused (429): failed, inconclusive."""
    outcome = Outcome("event_loop_probe", "", "default")
    with serve() as (url, _), reporting(outcome, tmp_path):
        outcome.target = url
        engine.run(
            engine.run_closed(
                url,
                lambda i: Request("GET", "/limited", endpoint="POST /api/sessions/upload"),
                concurrency=2,
                recorder=outcome.recorder,
                requests=24,
            )
        )
        outcome.thresholds = [
            {"metric": "canary_p99_ms", "limit": 100, "actual": 3.0, "passed": True}
        ]
    written = writer.read_report(tmp_path / "event_loop_probe.json")
    assert written["total_requests"] == 24 and written["passed"] is False
    assert written["verdict"] == "failed"
    assert written["reason"].startswith("inconclusive: all 24 requests failed (http_4xx 24")


def test_some_failed_requests_make_a_load_probe_inconclusive() -> None:
    """With any_failed (the event-loop probe), 3 failed of 10 is inconclusive; without, fine."""
    outcome = Outcome("event_loop_probe", "http://127.0.0.1:9", "default")
    for i in range(10):
        failed = i < 3
        outcome.recorder.record(
            "POST /api/sessions/upload", 0.01, status=429 if failed else 201,
            error_kind="http_4xx" if failed else None, message="rate limited" if failed else "",
        )  # fmt: skip
    assert inconclusive(outcome.recorder) is None
    problem = inconclusive(outcome.recorder, any_failed=True)
    assert problem.startswith("inconclusive: 3 of 10 requests failed (http_4xx 3; first: ")
