"""A compressed soak through ./run_load_tests.sh soak: tokens refresh across expiry, checkpoints
appear while it runs, the time series coarsens, and the generator's memory stays flat.

The bundled reference backend issues 45 s access tokens (ACCESS_TOKEN_EXPIRE_SECONDS); 4 users
run 75 s, so every account refreshes at least once (a 4.5 s margin: 10% of the lifetime) and the
refreshes stay under the backend's 10/minute refresh limit. Checkpoints every 20 s; at most 24
time-series points (LOADTEST_TIMESERIES_POINTS), so the interval doubles twice (4 s). Wall time
about 95 s on the shared 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from loadkit.measure.timeseries import TAIL_S
from tests.runner.test_runner import RUNNER, _env

RUN_S = 75
TOKEN_S = 45


def _watch_for_checkpoint(proc: subprocess.Popen, results: Path, deadline: float) -> dict | None:
    """The first checkpoint report seen while the runner is still going (polled every 0.5 s)."""
    while proc.poll() is None and time.monotonic() < deadline:
        for path in results.glob("*_soak/locust_all.json"):
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if report.get("checkpoint") is True:
                return report
        time.sleep(0.5)
    return None


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("soak")
    env = _env(tmp, ACCESS_TOKEN_EXPIRE_SECONDS=str(TOKEN_S), LOADTEST_TIMESERIES_POINTS="24")
    cmd = ["bash", str(RUNNER), "soak", "--run-time", f"{RUN_S}s", "--users", "4",
           "--spawn-rate", "4", "--checkpoint-interval", "20"]  # fmt: skip
    started, log = time.monotonic(), tmp / "runner.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        checkpoint = _watch_for_checkpoint(proc, tmp / "results", started + RUN_S + 60)
        proc.wait(timeout=RUN_S + 120)
    finally:
        if proc.poll() is None:
            proc.kill()  # the runner this fixture started
    out = log.read_text()
    [folder] = (tmp / "results").glob("*_soak")
    final = json.loads((folder / "locust_all.json").read_text())
    return {"code": proc.returncode, "out": out, "checkpoint": checkpoint, "final": final,
            "markdown": (folder / "report.md").read_text()}  # fmt: skip


@pytest.mark.slow
def test_tokens_refresh_across_expiry_without_a_401(soak: dict) -> None:
    """45 s tokens over 75 s: refreshes > 0, each refresh request answered with a token, no 401,
    and no login after the first one per account."""
    final = soak["final"]
    assert soak["code"] == 0, soak["out"][-2000:]
    tokens = final["tokens"]
    assert tokens["refreshes"] >= 4 and tokens["refreshes"] == tokens["refresh_requests"]
    assert "401" not in final["status_codes"]
    assert tokens["logins"] == tokens["login_requests"] == 4  # one per account: then refreshes


@pytest.mark.slow
def test_a_checkpoint_appears_before_the_end_and_the_final_report_replaces_it(soak: dict) -> None:
    """A report marked checkpoint is in the folder while the load runs; the final one is not."""
    checkpoint, final = soak["checkpoint"], soak["final"]
    assert checkpoint is not None, "no checkpoint seen while the runner ran"
    assert checkpoint["checkpoint_interval_s"] == 20 and checkpoint["duration_seconds"] < RUN_S
    assert final["checkpoint"] is False and final["duration_seconds"] >= RUN_S - 1
    assert "Checkpoint" not in soak["markdown"] and "#### Drift" in soak["markdown"]


@pytest.mark.slow
def test_the_series_coarsens_and_the_generator_memory_stays_flat(soak: dict) -> None:
    """24 points for 75 s (the newest 12 s stay per second until folded): a 4 s interval, at
    most 24 + 12/4 rows; generator RSS, measured in the generator, grows less than 32 MB and
    the leak verdict on it is not "leak"."""
    final = soak["final"]
    assert final["parameters"]["timeseries_interval_s"] == 4
    assert len(final["timeseries"]) <= 24 + TAIL_S // 4
    assert sum(r["requests"] for r in final["timeseries"]) >= final["total_requests"]
    generator = final["drift"]["generator_rss_mb"]
    assert generator["leak"]["verdict"] != "leak", generator
    assert generator["peak_mb"] - generator["first_mb"] < 32, generator
