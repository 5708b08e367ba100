"""Locust's server profile: the master records the server from test start to stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.locust.conftest import run_locust

pytestmark = pytest.mark.slow  # runs Locust for 6 s


def test_server_profile_is_recorded_for_the_test(backend, tmp_path: Path) -> None:
    """--server-profile: the run folder gets the recording, the flame graph and its figures."""
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "6", "-r", "6", "-t", "6s", "--server-profile"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "profile" / "server_profile.json").read_text())
    assert data["recorded"] and data["pid"] == backend.pid and data["samples"] > 0, data
    assert (tmp_path / "server_profile.svg").read_text().startswith("<svg")
    assert data["seconds"] >= 5


def test_no_server_profile_says_why(backend, tmp_path: Path) -> None:
    """--no-server-profile: server_profile.json states the reason; no recording is made."""
    done = run_locust(
        backend.url, tmp_path, "--headless", "-u", "2", "-r", "2", "-t", "3s", "--no-server-profile"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "profile" / "server_profile.json").read_text())
    assert not data["recorded"] and "--no-server-profile" in data["reason"]
    assert not (tmp_path / "server_profile.txt").exists()
