"""The one loopback check (`loadkit.watch.loopback`): loopback by spelling, URL or bare host, never
by resolving a name; the runner's helper (system python3) gives the same answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loadkit.watch.loopback import is_loopback

REPO = Path(__file__).resolve().parents[2]
CASES = {
    "http://127.0.0.1:8000": True,
    "127.0.0.1:1": True,
    "http://127.8.9.10": True,
    "http://[::1]:8000/api": True,
    "http://localhost:8000": True,
    "https://LOCALHOST": True,
    "http://api.localhost:9000": True,
    "localhost": True,
    "::1": True,
    "http://192.0.2.10:8000": False,
    "http://10.0.0.1": False,
    "http://[2001:db8::1]:80": False,
    "http://example.com": False,
    "http://localhost.example.com": False,
    "http://localhost.localdomain": False,  # may resolve to 127.0.0.1: names are never resolved
    "not a url at all": False,
    "": False,
}


@pytest.mark.parametrize(("target", "expected"), CASES.items())
def test_loopback_by_spelling(target: str, expected: bool) -> None:
    """127.0.0.0/8, ::1, localhost and *.localhost are loopback; everything else is not."""
    assert is_loopback(target) is expected


def test_the_runner_helper_agrees_under_the_system_python() -> None:
    """scripts/runner_helper.py loopback exits 0 exactly where is_loopback is True."""
    targets = [t for t in CASES if t]
    for target in targets:
        done = subprocess.run(
            ["python3", str(REPO / "scripts" / "runner_helper.py"), "loopback", target],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == (0 if CASES[target] else 1), (target, done.stderr)
