"""loadkit.verdicts.slo: the repository's profiles, inheritance, precedence, errors, the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.verdicts import slo


@pytest.fixture(autouse=True)
def _no_profile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOADTEST_PROFILE", raising=False)
    monkeypatch.delenv("LOADTEST_TARGETS", raising=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text)
    return path


def test_default_profile_holds_the_earlier_suites_targets() -> None:
    """The default profile: reads p95 500 ms, uploads 5 s, errors 1%, 50 MB per 200 requests."""
    p = slo.load_profile()
    assert p.name == "default"
    assert p.limits("read") == {"response_time_p95_ms": 500, "error_rate_percent": 1.0}
    assert p.limits("upload")["response_time_p95_ms"] == 5000
    assert p.limits("memory") == {"memory_growth_mb": 50}
    assert p.scenario("memory") == {"requests": 200}
    sizes = {name: p.scenarios[name] for name in ("health", "sessions", "uploads", "pool")}
    assert [s["concurrent"] for s in sizes.values()] == [100, 50, 10, 100]
    assert (p.scenario("rate_limit")["requests"], p.scenario("rate_limit")["limit"]) == (150, 100)
    assert (
        p.scenario("upload_rate_limit")["requests"],
        p.scenario("upload_rate_limit")["limit"],
    ) == (
        11,
        10,
    )
    assert (p.scenario("sustained")["requests"], p.scenario("sustained")["duration_s"]) == (500, 60)
    assert p.limits("locust")["generator_cpu_percent"] == 90
    assert p.compare["response_time_p95_ms"] == 0.20 and p.compare["requests_per_second"] == 0.20


def test_ci_profile_inherits_and_shortens_the_sustained_run() -> None:
    """ci inherits default's tables key by key, overriding only what it names."""
    ci, default = slo.load_profile("ci"), slo.load_profile("default")
    assert ci.scenario("sustained")["duration_s"] < default.scenario("sustained")["duration_s"]
    assert ci.scenario("health") == default.scenario("health")
    assert (
        ci.limits("read")["response_time_p95_ms"] >= default.limits("read")["response_time_p95_ms"]
    )
    assert ci.limits("read")["error_rate_percent"] == default.limits("read")["error_rate_percent"]
    assert ci.limits("memory") == default.limits("memory")
    assert set(ci.compare) == set(default.compare)


def test_profile_precedence_argument_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An argument beats LOADTEST_PROFILE, which beats "default"."""
    monkeypatch.setenv("LOADTEST_PROFILE", "ci")
    assert slo.load_profile().name == "ci"
    assert slo.load_profile("default").name == "default"


def test_targets_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOADTEST_TARGETS points at another file; a path argument beats it."""
    monkeypatch.setenv("LOADTEST_TARGETS", str(write(tmp_path, "[default.compare]\nx = 1\n")))
    assert slo.load_profile().compare == {"x": 1}
    assert slo.load_profile(path=slo.DEFAULT_TARGETS).compare != {"x": 1}


def test_inheritance_chain_merges_nested_tables(tmp_path: Path) -> None:
    """A grandchild sees its ancestors' keys unless it overrides them."""
    path = write(
        tmp_path,
        """
[base.thresholds.read]
response_time_p95_ms = 100
error_rate_percent = 1
[mid]
inherit = "base"
[mid.thresholds.read]
response_time_p95_ms = 200
[leaf]
inherit = "mid"
[leaf.scenarios.health]
concurrent = 3
""",
    )
    leaf = slo.load_profile("leaf", path)
    assert leaf.thresholds == {"read": {"response_time_p95_ms": 200, "error_rate_percent": 1}}
    assert leaf.scenarios == {"health": {"concurrent": 3}} and leaf.compare == {}


@pytest.mark.parametrize(
    ("text", "name", "problem"),
    [
        ("[default\nx = 1", "default", "malformed TOML"),
        ("[default.compare]\nx = 1\n", "nope", "unknown profile 'nope'"),
        (
            '[default.thresholds.read]\nresponse_time_p95_ms = "fast"\n',
            "default",
            "must be a number",
        ),
        ("[default.compare]\nx = true\n", "default", "must be a number"),
        ("[default]\nscenarios = 3\n", "default", "must be a table"),
        ('[a]\ninherit = "b"\n[b]\ninherit = "a"\n', "a", "inheritance cycle"),
        ("[a]\ninherit = 5\n", "a", "inherit must be a profile name"),
    ],
)
def test_bad_targets_raise_one_line_naming_file_and_problem(
    tmp_path: Path, text: str, name: str, problem: str
) -> None:
    """Malformed TOML, unknown profiles, wrong types and cycles give one line with the file."""
    path = write(tmp_path, text)
    with pytest.raises(slo.TargetsError) as info:
        slo.load_profile(name, path)
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_missing_file_is_a_targets_error(tmp_path: Path) -> None:
    """A targets path that does not exist is reported, not a traceback."""
    with pytest.raises(slo.TargetsError, match="not found"):
        slo.load_profile(path=tmp_path / "absent.toml")


def test_check_uses_max_semantics_and_min_prefix() -> None:
    """Plain limits are maxima (equal passes); "min:" limits are minima."""
    rows = slo.check(
        {"response_time_p95_ms": 500.0, "error_rate_percent": 1.5, "requests_per_second": 40.0},
        {"response_time_p95_ms": 500, "error_rate_percent": 1, "min:requests_per_second": 50},
    )
    assert rows == [
        {"metric": "response_time_p95_ms", "limit": 500, "actual": 500.0, "passed": True},
        {"metric": "error_rate_percent", "limit": 1, "actual": 1.5, "passed": False},
        {"metric": "min:requests_per_second", "limit": 50, "actual": 40.0, "passed": False},
    ]


def test_check_never_passes_an_unknown_figure() -> None:
    """A None or missing actual fails with actual None (a remote server's memory, say)."""
    rows = slo.check({"memory_growth_mb": None}, {"memory_growth_mb": 50, "cpu_avg_percent": 90})
    assert [(r["actual"], r["passed"]) for r in rows] == [(None, False), (None, False)]


def test_unknown_scenario_or_group_is_a_targets_error() -> None:
    """Asking a profile for a table it lacks names the profile and table."""
    with pytest.raises(slo.TargetsError, match="scenarios.nope"):
        slo.load_profile().scenario("nope")
    with pytest.raises(slo.TargetsError, match="thresholds.nope"):
        slo.load_profile().limits("nope")
