"""report.readiness and report.readiness_advice: the verdict, the knee and the recommendations
follow the figures (change a figure, the judgement changes). Inputs: capacity.json fields from
tests/runner/readiness_input.py (test input built from the schema) and scenario report fields."""

from __future__ import annotations

import copy
from typing import Any

from loadkit.report import readiness, readiness_advice
from tests.runner.readiness_input import capacity_fields

POOL = {"size": 5, "max_overflow": 10, "capacity": 15, "samples": 50}


def _capacity(**over: Any) -> dict[str, Any]:
    fields = capacity_fields(**over)
    return {
        "test_name": "capacity",
        "parameters": {"think_time_s": 2.0, "server_workers": 1},
        "db_pool": dict(POOL),
        **fields,
    }


def _with_step(capacity: dict, offered: float, **fields: Any) -> dict:
    capacity = copy.deepcopy(capacity)
    for step in capacity["steps"]:
        if step["offered_rps"] == offered:
            step.update(fields)
    return capacity


def _row(name: str, verdict: str = "passed", reason: str = "2 thresholds met") -> dict:
    return {"test_name": name, "verdict": verdict, "reason": reason, "limit_shaped": None}


LIMIT_REPORT = {
    "test_name": "rate_limit_enforcement[default_limit]",
    "parameters": {"requests": 150, "limit": 100, "window_s": 60.0},
    "defects": [],
}


def test_knee_is_last_pass_and_first_failure_above_it() -> None:
    """The knee's steps are the passing step at max_sustainable_rps and the next failing one,
    whatever order the steps were recorded in (grow then bisect)."""
    capacity = _capacity()
    capacity["steps"].reverse()
    knee = readiness.knee(capacity)
    assert knee.passed["offered_rps"] == 40 and knee.failed["offered_rps"] == 60
    assert knee.at is knee.failed
    assert readiness.knee(None) == readiness.Knee(None, None)


def test_verdict_ready_only_when_everything_met_its_targets() -> None:
    """All scenarios passed, no defect, a knee the server caused: ready, with no reason."""
    judged = readiness.verdict([_row("a"), _row("b")], [LIMIT_REPORT], _capacity())
    assert judged.verdict == readiness.READY and judged.reasons == []


def test_a_failed_scenario_or_a_defect_makes_it_not_ready() -> None:
    """A failed scenario is named with its reason; a defect record is named by id and route."""
    rows = [_row("a"), _row("b", "failed", "response_time_p95_ms: limit 500, actual 900")]
    judged = readiness.verdict(rows, [], _capacity())
    assert judged.verdict == readiness.NOT_READY
    assert "`b` failed: response_time_p95_ms: limit 500, actual 900" in judged.blocking
    defect = {"id": "limiter-500", "route": "GET /api/sessions/", "message": "500 past limit"}
    probe = {"test_name": "limiter_semantics_probe[default]", "defects": [defect]}
    judged = readiness.verdict([_row("a")], [probe], _capacity())
    assert judged.verdict == readiness.NOT_READY
    assert judged.blocking == [
        "defect `limiter-500` on GET /api/sessions/ (found by limiter_semantics_probe[default])"
    ]


def test_incomplete_evidence_gives_caveats() -> None:
    """A skipped scenario, a missing capacity search or a generator-limited knee: caveats."""
    rows = [_row("a"), _row("b", "skipped", "remote target")]
    judged = readiness.verdict(rows, [], _capacity())
    assert judged.verdict == readiness.CAVEATS and judged.caveats == ["`b` skipped: remote target"]
    judged = readiness.verdict([_row("a")], [], None)
    assert judged.verdict == readiness.CAVEATS and "capacity.json missing" in judged.caveats[0]
    generator = _capacity(limiting_factor={"name": "generator", "summary": "x"})
    judged = readiness.verdict([_row("a")], [], generator)
    assert judged.caveats == [readiness.WEAK_LIMITS["generator"]]


def test_no_passing_capacity_step_is_not_ready() -> None:
    """max_sustainable_rps null (no step passed): not ready, naming the lowest offered rate."""
    judged = readiness.verdict([_row("a")], [], _capacity(max_sustainable_rps=None))
    assert judged.verdict == readiness.NOT_READY
    assert judged.blocking == [
        "no capacity step met the capacity targets (lowest offered: 10 req/s)"
    ]


def test_pool_recommendation_follows_connections_in_use_at_the_knee() -> None:
    """In use 5 at the knee: raise the size to 8 (x1.5); 3: keep 5; 15 of 15: the pool was full."""
    advice = readiness_advice.pool_size([], _capacity())
    assert advice.value == 8 and "Raise DB_POOL_SIZE from 5 to 8" in advice.text
    assert "pool_checked_out_max 5 at the step at 60 req/s offered" in advice.rests_on
    low = _with_step(
        _with_step(_capacity(), 60, pool_checked_out_max=3), 40, pool_checked_out_max=2
    )
    advice = readiness_advice.pool_size([], low)
    assert advice.value == 5 and advice.text.startswith("Keep DB_POOL_SIZE at 5")
    full = _with_step(_capacity(), 60, pool_checked_out_max=15)
    advice = readiness_advice.pool_size([], full)
    assert advice.value == 30 and advice.text.startswith("The pool was full at the knee (15 of 15")


def test_pool_recommendation_without_figures_says_not_enough_data() -> None:
    """No pool figure in the steps, or no pool capacity anywhere: not enough data."""
    capacity = _capacity()
    for step in capacity["steps"]:
        step["pool_checked_out_max"] = None
    assert readiness_advice.pool_size([], capacity).text.startswith("not enough data")
    no_pool = _capacity() | {"db_pool": {"size": None, "samples": 0}}
    advice = readiness_advice.pool_size([{"db_pool": {"samples": 0}}], no_pool)
    assert advice.text == "not enough data: the pool's capacity not measured."
    assert not advice.enough_data and advice.value is None


def test_workers_recommendation_follows_cpu_at_the_knee() -> None:
    """99% of a core at the knee: CPU-bound, 2 workers; 40%: more workers will not help."""
    advice = readiness_advice.workers([], _capacity())
    assert advice.value == 2 and "CPU-bound at the knee (99% of a core per worker)" in advice.text
    assert "a request cost 21.2 ms of server CPU" in advice.text  # 84% / 39.6 req/s
    idle = _with_step(_capacity(), 60, server_cpu_percent=40.0)
    advice = readiness_advice.workers([], idle)
    assert advice.value == 1 and advice.text.startswith("Adding workers will not raise capacity")
    assert "address server_cpu first" in advice.text
    two = _with_step(_capacity(), 60, server_cpu_percent=190.0) | {
        "parameters": {"server_workers": 2}
    }
    assert readiness_advice.workers([], two).value == 3  # 190% at 70% a worker
    assert readiness_advice.workers([], None).text.startswith("not enough data")


def test_per_user_limit_follows_one_therapists_pace() -> None:
    """40 req/s over 80 therapists = 30/minute each: 100/minute is enough; over 20 therapists
    (120/minute each) the limit must rise to 240/minute; no limit scenario: not enough data."""
    advice = readiness_advice.per_user_limits([LIMIT_REPORT], _capacity())
    assert advice.text.startswith("Keep the per-user default limit (100/minute)")
    assert "= 30.0 requests/minute each" in advice.rests_on and advice.value == 100
    busy = readiness_advice.per_user_limits([LIMIT_REPORT], _capacity(concurrent_therapists=20))
    assert busy.value == 240 and busy.text.startswith(
        "Raise the per-user default limit to at least 240"
    )
    defect = {"id": "limiter-500", "route": "GET /api/sessions/", "message": "m"}
    broken = [LIMIT_REPORT | {"defects": [defect]}]
    text = readiness_advice.per_user_limits(broken, _capacity()).text
    assert text.endswith("Fix the limiter too: limiter-500.")
    missing_limit = [LIMIT_REPORT | {"defects": [defect | {"id": "default-limit-missing"}]}]
    advice = readiness_advice.per_user_limits(missing_limit, _capacity())
    assert advice.value == 60 and advice.text.startswith(
        "Enforce a per-user default limit of at least 60/minute: the configured 100/minute was "
        "never applied"
    )
    missing = readiness_advice.per_user_limits([], _capacity())
    assert missing.text == "not enough data: no default-limit scenario ran."


def test_monitoring_orders_figures_by_the_rate_at_which_they_crossed() -> None:
    """CPU crosses 80% first (at 40 req/s); make the pool fill at 20 req/s and it leads."""
    order = [s.figure for s in readiness_advice.monitoring([], _capacity())]
    assert order[0] == "server CPU %" and order[-1] == "pool in use"
    pool_first = _with_step(_capacity(), 20, pool_checked_out_max=15)
    signals = readiness_advice.monitoring([], pool_first)
    assert signals[0].figure == "pool in use" and signals[0].first_crossed_rps == 20
    p95 = next(s for s in signals if s.figure == "p95 ms")
    assert (p95.first_crossed_rps, p95.value_at_pass, p95.value_at_fail) == (60, 120, 900)
    late = next(s for s in signals if s.figure == "late starts %")  # 40 of 510 requests
    assert (late.limit, late.first_crossed_rps, late.value_at_fail) == ("> 2", 60, 7.84)
    assert readiness_advice.monitoring([], None) == []


def test_many_failures_are_named_in_one_reason() -> None:
    """Past three failed scenarios the verdict names them all in one reason."""
    rows = [_row(f"s{i}", "failed", "x") for i in range(5)] + [_row("ok")]
    judged = readiness.verdict(rows, [], _capacity())
    assert judged.blocking == [
        "5 of 6 scenarios failed: `s0`, `s1`, `s2`, `s3`, `s4` (why: Scenario results)"
    ]


def test_worker_count_comes_from_the_first_search() -> None:
    """capacity.json's server_workers is the list searched: its first entry is the top level's."""
    assert readiness.server_workers({"parameters": {"server_workers": [2, 4]}}) == 2
    assert readiness.server_workers({"parameters": {"server_workers": None}}) == 1
    assert readiness.server_workers({"parameters": {"server_workers": 3}}) == 3


def test_pool_capacity_of_the_knee_step_is_the_one_used() -> None:
    """A step's own pool_capacity (what the server reported then) wins over the report's block."""
    capacity = _with_step(_capacity(), 60, pool_checked_out_max=9, pool_capacity=9)
    advice = readiness_advice.pool_size([], capacity)
    assert advice.text.startswith("The pool was full at the knee (9 of 9") and advice.value == 18


def _cost(name: str, intervals: int, **endpoints: tuple[float, int]) -> dict:
    rows = {e: {"cpu_ms_per_request": ms, "requests": n} for e, (ms, n) in endpoints.items()}
    return {"test_name": name, "cost": {"method": "m", "intervals": intervals, "endpoints": rows}}


def test_endpoint_cost_comes_from_the_estimate_resting_on_most() -> None:
    """Per endpoint: enough CPU intervals first, then the most requests of it, then the most
    intervals; the costliest endpoint comes first."""
    rows = readiness.endpoint_costs(
        [
            _cost("few_intervals", 2, login=(230.0, 50)),
            _cost("most_logins", 11, login=(166.2, 16), health=(0.9, 100)),
            _cost("fewer_logins", 37, login=(64.0, 8), health=(1.1, 100)),
        ]
    )
    found = [(r["endpoint"], r["cpu_ms_per_request"], r["scenario"]) for r in rows]
    assert found == [("login", 166.2, "most_logins"), ("health", 1.1, "fewer_logins")]


def test_pool_figure_names_the_step_it_was_seen_at() -> None:
    """The failing step measured no pool: the peak is the last passing step's, named as such."""
    capacity = _with_step(_capacity(), 60, pool_checked_out_max=None)
    advice = readiness_advice.pool_size([], capacity)
    assert "pool_checked_out_max 4 at the step at 40 req/s offered" in advice.rests_on
    assert advice.value == 6  # 4 x 1.5
