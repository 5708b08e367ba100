"""The pytest suite's server profile: one per session with --server-profile, a reason without."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _profile(run) -> tuple[dict, object]:
    folder = run.results_root / next(iter(run.reports.values()))["_dir"]
    return json.loads((folder / "profile" / "server_profile.json").read_text()), folder


@pytest.mark.slow
def test_server_profile_records_the_session_and_the_report_cites_it(run_suite):
    """--server-profile: one recording of the session; the rendered report has its section."""
    run = run_suite("pytest_load_test.py", "-k", "concurrent_sessions", "--server-profile")
    assert run.returncode == 0, run.output[-3000:]
    data, folder = _profile(run)
    assert data["recorded"] and data["mode"] == "attached", data
    assert (folder / "server_profile.svg").is_file() and (folder / "server_profile.txt").is_file()
    render = [sys.executable, "-m", "loadkit.render", str(folder)]
    subprocess.run(render, cwd=REPO, capture_output=True, timeout=120, check=False)
    text = (folder / "report.md").read_text()
    assert "## Where the server's CPU went" in text, text
    assert f"{data['samples']} busy samples" in text and "server_profile.svg" in text


@pytest.mark.slow
def test_without_the_option_the_run_says_why_it_has_no_profile(run_suite):
    """No option (off by default) and --no-server-profile: the JSON gives the reason, no SVG."""
    for option, words in ((), "off by default"), (("--no-server-profile",), "switched off"):
        run = run_suite("baseline_test.py", "-k", "sequential_health", *option)
        assert run.returncode == 0, run.output[-3000:]
        data, folder = _profile(run)
        assert not data["recorded"] and words in data["reason"], data
        assert not (folder / "server_profile.svg").exists()
