"""loadkit.locust_plugin.progress: a quiet headless Locust prints one progress line per interval.

A real Locust process (a tiny locustfile that installs the plugin) runs 5 s against the tiny
loopback server; its stdout is counted. Without the options Locust keeps its own stats table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.runner.tiny_server import serve

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = """
from locust import HttpUser, constant, events, task
from loadkit.locust_plugin import progress

events.init_command_line_parser.add_listener(progress.add_argument)

@events.init.add_listener
def _init(environment, **_kw):
    progress.install(environment.parsed_options.progress_every)

class Reader(HttpUser):
    wait_time = constant(0.2)

    @task
    def health(self):
        self.client.get("/health")
"""


def _locust(tmp_path: Path, host: str, *extra: str) -> str:
    file = tmp_path / "lf.py"
    file.write_text(LOCUSTFILE)
    command = [sys.executable, "-m", "locust", "-f", str(file), "--headless", "-u", "2", "-r", "2"]
    command += ["-t", "5s", "--host", host, "--loglevel", "WARNING", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_only_summary_with_progress_prints_one_line_per_interval(tmp_path: Path) -> None:
    """--only-summary --progress-every 2: 2-3 progress lines in 5 s, one stats table (the final)."""
    with serve() as (host, _script):
        out = _locust(tmp_path, host, "--only-summary", "--progress-every", "2")
    lines = [line for line in out.splitlines() if line.startswith("progress ")]
    assert 2 <= len(lines) <= 3, out
    assert re.match(
        r"progress 0:0\d  users \d+/2  requests \d+ \([\d.]+/s\)  failures 0  p95", lines[-1]
    )
    assert out.count("Aggregated") <= 2, out  # the final request and percentile tables only


def test_locust_alone_keeps_its_own_stats_table(tmp_path: Path) -> None:
    """Without the options no progress line is printed and Locust's periodic table stays."""
    with serve() as (host, _script):
        out = _locust(tmp_path, host)
    assert "progress " not in out
    assert out.count("Aggregated") >= 3, out
