"""The step and spike load shapes (`loadkit.locust_plugin.shapes`): each tick() answers the schedule
its docstring promises, sized by -u/-r/-t, and ends the run at -t. The shapes import Locust, so they
run
in a child process (tests/locust/shape_ticks.py); this process never imports Locust."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _ticks(shape: str, users: int, rate: float, run_time: float, *elapsed: float) -> list:
    args = [
        sys.executable,
        "-m",
        "tests.locust.shape_ticks",
        shape,
        str(users),
        str(rate),
        str(run_time),
    ]
    done = subprocess.run(
        [*args, *map(str, elapsed)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["gevent"] is True  # the child really ran Locust's (patched) world
    return [None if t is None else tuple(t) for t in out["ticks"]]


def test_step_climbs_in_four_equal_steps_and_ends_at_run_time() -> None:
    """-u 8 -r 2 -t 40: 2, 4, 6, 8 users, each held 10 s, at the spawn rate; None at 40 s."""
    got = _ticks("step", 8, 2.0, 40.0, 0, 9.9, 10.1, 20.1, 30.1, 39.9, 40.0)
    assert got == [(2, 2.0), (2, 2.0), (4, 2.0), (6, 2.0), (8, 2.0), (8, 2.0), None]


def test_spike_jumps_to_the_peak_for_the_middle_third() -> None:
    """-u 10 -t 30: a fifth of the peak, the peak from 10 s to 20 s (spawned at once), then back."""
    got = _ticks("spike", 10, 1.0, 30.0, 0, 9.9, 10.1, 19.9, 20.1, 29.9, 30.0)
    assert got == [(2, 10.0), (2, 10.0), (10, 10.0), (10, 10.0), (2, 10.0), (2, 10.0), None]


@pytest.mark.parametrize("shape", ["step", "spike"])
def test_a_tiny_peak_still_runs_one_user(shape: str) -> None:
    """-u 3: a step or baseline below one user is rounded up to one, never zero."""
    first = _ticks(shape, 3, 1.0, 30.0, 0)[0]
    assert first is not None and first[0] == 1


def test_without_options_the_defaults_size_the_run() -> None:
    """No -u/-t: a peak of 20 users over 120 s (step reaches 20 in its last quarter)."""
    got = _ticks("step", 0, 0.0, 0.0, 0, 95, 119.9, 120.0)
    assert got == [(5, 20.0), (20, 20.0), (20, 20.0), None]
