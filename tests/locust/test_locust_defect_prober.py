"""Locust's DefectProber names its findings as the pytest probes do: a short ``--tags probes`` run
against the deployed-behaving backend lists the defect ids it can reach in the report's
``defects`` (its failures that they explain are prober findings, not service errors), and the same
run against the contract backend names none. Both backends keep the real login limit (5/minute):
the login-limit and X-Forwarded-For probes are about it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_backend.process import BackendProcess
from tests.locust.conftest import _seeded_backend, read_json, run_locust

pytestmark = pytest.mark.slow  # each runs Locust for 8 s

RUN = ("--headless", "-u", "1", "-r", "1", "-t", "8s", "--tags", "probes", "--report-name", "p")
REACHABLE = {  # what the prober's first round reaches on the deployed service
    "data-without-token",
    "foreign-patient-readable",
    "foreign-session-readable",
    "non-audio-accepted",
    "limiter-500",
    "missing-auth-403",
    "token-valid-after-logout",
    "forwarded-for-trusted",
}


@pytest.fixture(scope="module")
def limited_deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """The deployed-behaving backend with its real login limit."""
    folder = tmp_path_factory.mktemp("limited-deployed")
    yield from _seeded_backend(folder, REFERENCE_BEHAVIOUR="deployed", RATE_LIMIT_LOGIN="5/minute")


@pytest.fixture(scope="module")
def limited_contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """The contract backend with its real login limit."""
    yield from _seeded_backend(tmp_path_factory.mktemp("limited"), RATE_LIMIT_LOGIN="5/minute")


def test_deployed_defects_are_named_with_the_pytest_ids(limited_deployed, tmp_path: Path) -> None:
    """One record per id and route, the ids the pytest probes give these findings, and the failed
    probe requests they explain counted as the prober's findings, not the service's errors."""
    done = run_locust(limited_deployed.url, tmp_path, *RUN)
    report = read_json(tmp_path / "p.json")
    ids = {d["id"] for d in report["defects"]}
    assert ids >= REACHABLE, (ids, done.stderr[-3000:])
    keys = [(d["id"], d["route"]) for d in report["defects"]]
    assert len(keys) == len(set(keys))
    forwarded = next(d for d in report["defects"] if d["id"] == "forwarded-for-trusted")
    assert forwarded["route"] == "POST /api/v1/login" and forwarded["evidence"]["status"] == 401
    split = report["error_sources"]
    assert split["prober_findings"] > 0 and split["service_errors"] == 0, report["errors"]
    assert done.returncode == 1 and "defects: " in done.stderr


def test_contract_backend_names_no_defect(limited_contract, tmp_path: Path) -> None:
    """The same run against the contract backend names no defect and fails no request."""
    done = run_locust(limited_contract.url, tmp_path, *RUN)
    report = read_json(tmp_path / "p.json")
    assert report["defects"] == [], report["defects"]
    probes = {k: v for k, v in report["endpoints"].items() if k.startswith("probe ")}
    assert sum(v["requests"] for v in probes.values()) >= 20, probes
    assert report["error_sources"]["failures"] == 0, report["errors"]
    assert done.returncode == 0, done.stderr[-3000:]
