"""The pure parts of the capacity finder: the search's next step, a step's verdict, the
limiting factor, the backlog count, the mix (milliseconds, no server)."""

from __future__ import annotations

from collections import Counter

import pytest

from loadkit.capacity import search
from loadkit.capacity.report import scaling_factor
from loadkit.capacity.requests import MixFactory, Therapist
from loadkit.capacity.steps import backlog
from loadkit.contract import mix
from loadkit.measure.trace import Sample
from loadkit.report import render_capacity
from loadkit.verdicts import capacity as verdict

SLO = dict(verdict.DEFAULT_SLO)


def step(rate: float, passed: bool, **fields) -> dict:
    """A judged step at ``rate``."""
    return {"offered_rps": rate, "passed": passed, **fields}


def good(rate: float, **fields) -> dict:
    """A step's figures that meet every criterion."""
    figures = {"offered_rps": rate, "achieved_rps": rate, "p95_ms": 20.0, "p99_ms": 40.0,
               "error_rate_percent": 0.0, "late_starts": 0, "requests": int(rate * 10),
               "backlog_start": 1, "backlog_end": 1}  # fmt: skip
    return {**figures, **fields}


def test_the_search_grows_then_bisects_then_ends_at_the_knee() -> None:
    """5 -> 10 -> 20 (fails) -> 15 -> 17.5 ...: growth until a failure, then the midpoint, and
    the end once the pass and the failure are within the precision."""
    plan = search.Plan(start_rps=5, growth=2, precision=0.1)
    assert search.next_step(plan, []) == search.Next(5, "grow")
    steps = [step(5, True), step(10, True)]
    assert search.next_step(plan, steps) == search.Next(20, "grow")
    steps.append(step(20, False))
    assert search.next_step(plan, steps) == search.Next(15, "bisect")
    steps += [step(15, True), step(17.5, True), step(18.75, False)]
    assert search.next_step(plan, steps).ended == search.ENDED_KNEE


def test_the_search_stops_at_max_rps_and_when_the_generator_saturates() -> None:
    """A pass at --max-rps ends it; growth is capped there; a saturated generator ends it."""
    plan = search.Plan(start_rps=5, max_rps=8)
    assert search.next_step(plan, [step(5, True)]) == search.Next(8, "grow")
    assert search.next_step(plan, [step(5, True), step(8, True)]).ended == search.ENDED_MAX_RPS
    saturated = [step(5, True, generator_saturated=True)]
    assert search.next_step(plan, saturated).ended == search.ENDED_GENERATOR


def test_a_failing_first_step_halves_down_to_the_floor() -> None:
    """No pass yet: the rate halves, and the search gives up at min_rps."""
    plan = search.Plan(start_rps=2, min_rps=0.5)
    assert search.next_step(plan, [step(2, False)]) == search.Next(1, "bisect")
    ended = search.next_step(plan, [step(2, False), step(1, False), step(0.5, False)])
    assert ended.ended == search.ENDED_NONE_PASSED


@pytest.mark.parametrize("change, reason", [
    ({"p95_ms": 600.0}, "p95 600.0 ms > 500 ms"),
    ({"p99_ms": None}, "p99 None ms"),
    ({"error_rate_percent": 3.0}, "errors 3.0% > 1%"),
    ({"achieved_rps": 90.0}, "achieved 90.0 of 100 rps (ratio 0.9 < 0.95)"),
    ({"late_starts": 30}, "late starts 3.0% of requests > 2%"),
    ({"backlog_end": 40}, "backlog grew from 1 to 40 requests"),
])  # fmt: skip
def test_each_criterion_fails_a_step_with_its_figure(change: dict, reason: str) -> None:
    """Every criterion of the capacity group fails a step on its own, naming figure and limit."""
    assert verdict.reasons(good(100), SLO) == []
    reasons = verdict.reasons(good(100, **change), SLO)
    assert len(reasons) == 1 and reasons[0].startswith(reason), reasons


def test_the_factor_is_read_from_the_knee() -> None:
    """The lowest failing step above the last pass decides: 429s -> rate_limit; CPU near the
    server's cores -> server_cpu; a slow /live canary -> event_loop (before a full pool);
    a full pool -> pool; nothing else -> latency; no failure -> not_reached; a busy generator
    with an idle server -> generator."""
    passed = step(50, True)
    knee = step(100, False, reasons=["p95 900 ms > 500 ms"], p95_ms=900, server_cpu_percent=20)
    cases = [
        ({"status_codes": {"429": 12}}, "rate_limit"),
        ({"server_cpu_percent": 95.0}, "server_cpu"),
        ({"pool_checked_out_max": 15, "pool_capacity": 15}, "pool"),
        (
            {
                "canary_p99_ms": 900.0,
                "canary_threshold_ms": 110.0,
                "pool_checked_out_max": 15,
                "pool_capacity": 15,
            },
            "event_loop",
        ),  # fmt: skip
        ({}, "latency"),
        ({"generator_cpu_percent": 97.0}, "generator"),
    ]
    for fields, name in cases:
        above = step(200, False, status_codes={"429": 99})  # not the knee: the lowest failure is
        factor = verdict.factor([passed, {**knee, **fields}, above], server_cores=1)
        assert factor["name"] == name, (fields, factor)
        assert factor["evidence"]["offered_rps"] == 100 and "100" in factor["summary"]
    assert verdict.factor([passed], server_cores=1)["name"] == "not_reached"
    late = {"late_starts": 50, "sent": 1000, "server_cpu_percent": 70.0}
    assert verdict.factor([passed, {**knee, **late}], server_cores=1)["name"] == "generator"
    behind = {**knee, **late, "backlog_start": 400, "backlog_end": 2000, "requests": 1000}
    assert verdict.factor([passed, behind], server_cores=1)["name"] == "latency"
    cut = step(100, False, interrupted=True, reasons=["interrupted"])
    assert verdict.factor([passed, cut], server_cores=1)["name"] == "not_reached"


def test_the_backlog_counts_requests_due_and_unanswered() -> None:
    """At 10 rps from t0=0, by t=1.0 eleven requests were due; those answered by then leave."""
    answered = [Sample("GET /", i / 10, 0.05, 200, None) for i in range(8)]  # done by 0.75 s
    slow = [Sample("GET /", 0.8 + i / 10, 5.0, 200, None) for i in range(3)]
    assert backlog(answered + slow, 10, 0.0, 1.0) == 3


def test_the_mix_is_the_personas_without_the_budgeted_uploads() -> None:
    """The arrival-rate mix keeps the persona's weights, leaves uploads out, and draws by them."""
    assert mix.left_out("realistic") == ["upload_and_follow"]
    assert all(a.read for a in mix.arrival_mix("reads"))
    assert mix.weight("list_sessions") == 5 and mix.mean_think_s() == 2.0
    factory = MixFactory("realistic", [Therapist({"Authorization": "Bearer x"})], seed=1)
    drawn = Counter(factory(i).endpoint for i in range(4000))
    share = drawn["GET /health"] / 4000
    assert abs(share - 1 / 17) < 0.02, drawn
    with pytest.raises(ValueError):
        mix.arrival_mix("writes")


def test_the_scaling_factor_needs_both_knees() -> None:
    """2 workers at 300 rps over 1 at 200: 1.5; a search cut by --run-time gives no factor."""
    knee = search.ENDED_KNEE
    one = {"server_workers": 1, "max_sustainable_rps": 200.0, "search_ended": knee}
    two = {"server_workers": 2, "max_sustainable_rps": 300.0, "search_ended": knee}
    assert scaling_factor([one, two]) == 1.5
    assert scaling_factor([one, {**two, "search_ended": search.ENDED_RUN_TIME}]) is None


def test_the_capacity_section_states_rate_factor_limits_and_steps(tmp_path) -> None:
    """report.md's Capacity section: the rate, the factor's sentence, the limits note, a row per
    step with its reasons, and the charts that exist."""
    (tmp_path / "capacity_rate.png").write_bytes(b"png")
    failed = good(40, passed=False, phase="bisect", reasons=["p95 600 ms > 500 ms"])
    report = {"test_name": "capacity", "max_sustainable_rps": 35.0,
              "search_ended": search.ENDED_KNEE,
              "limiting_factor": {"name": "latency", "summary": "At 40 rps it queued."},
              "limits": "limits raised", "slo": SLO, "parameters": {"mix": "realistic"},
              "steps": [good(35, passed=True, phase="grow"), failed]}  # fmt: skip
    lines = render_capacity.section(report, tmp_path, tmp_path / "report.md")
    text = "\n".join(lines)
    assert "**Max sustainable rate: 35.00 requests/s**" in text
    assert "**latency**. At 40 rps it queued." in text and "- limits raised." in text
    assert "FAILED: p95 600 ms > 500 ms" in text
    assert "![capacity_rate.png](capacity_rate.png)" in text and "capacity_latency" not in text
