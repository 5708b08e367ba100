"""`--metrics-port` on a pytest load run: the process that runs the scenario serves /metrics, and
a scrape in the linger after the session sees the JSON report's request count and the gauges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO
from tests.prometheus import free_port

pytestmark = pytest.mark.slow
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SCENARIO = "pytest_load_test.py::test_concurrent_health_checks"


def _scrape(port: int) -> dict[str, float]:
    """{sample name with its labels: value} of one GET /metrics."""
    with OPENER.open(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    families = text_string_to_metric_families(text)
    return {f"{s.name}{sorted(s.labels.items())}": s.value for f in families for s in f.samples}


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.2)


def test_pytest_run_serves_the_reports_counts(tmp_path: Path) -> None:
    """After the scenario's JSON is written, /metrics has its request count, labelled with the
    run folder; server gauges and the threshold verdicts are there; the run exits 0."""
    port, run = free_port(), tmp_path / "run"
    env = {**os.environ, "LOADTEST_RUN_DIR": str(run)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--profile", "ci",
               SCENARIO, "--metrics-port", str(port)]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_for(run / "concurrent_health_checks.json", proc)
        time.sleep(0.5)  # the report is renamed into place; the session then tears down
        got = _scrape(port)
        report = json.loads((run / "concurrent_health_checks.json").read_text())
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    labels = [("endpoint", "GET /health"), ("testid", "run")]
    assert got[f"loadkit_requests_total{labels}"] == report["total_requests"] > 0
    assert got[f"loadkit_server_rss_bytes{[('testid', 'run')]}"] > 0
    verdicts = [v for k, v in got.items() if k.startswith("loadkit_threshold_passing")]
    assert verdicts and all(v == 1 for v in verdicts)
