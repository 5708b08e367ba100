"""run_load_tests.sh: presets, pre-flight refusals, `all` past failures, Ctrl-C, a real quick run.

Every run writes under a temporary LOADTEST_RESULTS_ROOT. No test sends traffic anywhere but
127.0.0.1: the non-loopback tests name a TEST-NET address (192.0.2.1) that the runner must refuse
before any request.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.runner.tiny_server import Script, serve

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "run_load_tests.sh"

FAKE_INI = "[pytest]\naddopts = -p no:randomly\n"
FAKE_CONFTEST = """
def pytest_addoption(parser):
    try:
        parser.addoption("--host", default=None)
    except ValueError:
        pass
    for name in ("--profile", "--accounts", "--server-pid", "--metrics-port"):
        parser.addoption(name, default=None)
    parser.addoption("--yes", action="store_true")
"""
FAKE_SUITE = """
import json, os, time
from pathlib import Path

def _report(name, **fields):
    run = Path(os.environ["LOADTEST_RUN_DIR"])
    body = {"schema": "therapybridge-loadtest/1", "test_name": name, "total_requests": 0, **fields}
    (run / f"{name}.json").write_text(json.dumps(body))

def test_fake_first():  # each report is named for its test, as the suite's are
    _report("fake_first", passed=True)

def test_fake_second():
    _report("fake_second", passed=False)
    assert False, "this scenario fails on purpose"

def test_fake_third():
    _report("fake_third", passed=True)
"""
SLEEPY_SUITE = """
import json, os, time
from pathlib import Path

def test_sleepy():
    run = Path(os.environ["LOADTEST_RUN_DIR"])
    (run / "started").write_text("yes")
    start = time.monotonic()
    try:
        time.sleep(60)
    finally:
        body = {"schema": "therapybridge-loadtest/1", "test_name": "sleepy", "interrupted": True,
                "duration_seconds": round(time.monotonic() - start, 3), "total_requests": 0}
        (run / "sleepy.json").write_text(json.dumps(body))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADTEST_")}
    env.update({"LOADTEST_RESULTS_ROOT": str(tmp_path / "results"), "NO_COLOR": "1", **extra})
    env.setdefault("LOADTEST_TOKEN_CACHE", str(tmp_path / "token-cache" / "tokens.json"))
    return env


def run_runner(tmp_path: Path, *args: str, timeout: float = 120, **env: str):
    """Run the runner with stdin from /dev/null (not a terminal); return (process, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(RUNNER), *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - start


def one_line(stderr: str) -> str:
    """The only line of stderr (asserting there is exactly one, and no traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def run_folders(tmp_path: Path) -> list[Path]:
    root = tmp_path / "results"
    # .run-locks is the run lock's log (loadkit.report.run_lock), not a run folder
    return (
        sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if root.exists()
        else []
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_suite(tmp_path: Path, body: str) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text(FAKE_INI)
    (suite / "conftest.py").write_text(FAKE_CONFTEST)
    (suite / "test_fake.py").write_text(body)
    return suite / "test_fake.py"


def test_bad_preset_fails_fast_with_one_line(tmp_path: Path) -> None:
    """An unknown preset: one line with a usage hint, exit 2, within seconds, no run folder."""
    proc, seconds = run_runner(tmp_path, "warp-speed")
    assert proc.returncode == 2 and seconds < 5
    assert "unknown preset: warp-speed" in one_line(proc.stderr)
    assert run_folders(tmp_path) == []


def test_unknown_option_and_missing_value_exit_2(tmp_path: Path) -> None:
    """An unknown option, or an option without its value, is a usage error (exit 2)."""
    for args in (["quick", "--turbo"], ["quick", "--users"], ["quick", "--users", "lots"]):
        proc, _ = run_runner(tmp_path, *args)
        assert proc.returncode == 2, args
        assert "--help" in one_line(proc.stderr)


def test_help_lists_every_preset(tmp_path: Path) -> None:
    """--help exits 0 and names each preset."""
    proc, _ = run_runner(tmp_path, "--help")
    assert proc.returncode == 0
    for preset in ("quick", "moderate", "heavy", "stress", "baseline", "pytest", "all"):
        assert f"  {preset} " in proc.stdout


def test_non_loopback_host_needs_yes_before_any_request(tmp_path: Path) -> None:
    """A host outside loopback without --yes and no terminal: refused before anything runs."""
    proc, seconds = run_runner(tmp_path, "quick", "--host", "http://192.0.2.1:8000")
    assert proc.returncode == 2 and seconds < 5
    line = one_line(proc.stderr)
    assert "--yes" in line and "192.0.2.1" in line
    assert run_folders(tmp_path) == []  # refused before the run folder, the venv or any request


def test_unreachable_host_is_one_line_exit_2(tmp_path: Path) -> None:
    """Nobody listening on the target port: 'unreachable', exit 2, and no run folder left behind
    nor named on the terminal (the folder is named once the pre-flight passed)."""
    proc, seconds = run_runner(tmp_path, "quick", "--host", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 2 and seconds < 60
    assert "unreachable" in one_line(proc.stderr)
    assert run_folders(tmp_path) == []
    assert "run folder" not in proc.stdout, proc.stdout


def test_unhealthy_backend_is_refused_after_one_probe(tmp_path: Path) -> None:
    """/health answering 503: one line naming the status, exit 2, and no load (one request only)."""
    with serve(Script(health_status=503)) as (url, script):
        proc, _ = run_runner(tmp_path, "quick", "--host", url)
        requests = script.requests
    assert proc.returncode == 2
    assert "unhealthy" in one_line(proc.stderr) and "503" in proc.stderr
    assert requests == 1


def test_unwritable_results_folder_is_refused_before_load(tmp_path: Path) -> None:
    """A results root that cannot be created: one line, exit 2, and the target sees no request."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with serve() as (url, script):
        proc, _ = run_runner(
            tmp_path, "quick", "--host", url, LOADTEST_RESULTS_ROOT=str(blocker / "results")
        )
        assert script.requests == 0
    assert proc.returncode == 2
    assert "not writable" in one_line(proc.stderr)


def test_all_runs_every_scenario_past_a_failure(tmp_path: Path) -> None:
    """`all` runs each test in turn, continues past the failing one, names it, and exits 1."""
    suite = fake_suite(tmp_path, FAKE_SUITE)
    with serve() as (url, _):
        proc, _ = run_runner(tmp_path, "all", "--host", url, LOADTEST_SUITE=str(suite))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 of 3 scenarios failed (2 passed):" in proc.stdout
    assert f"  {suite}::test_fake_second" in proc.stdout.splitlines()
    (run,) = run_folders(tmp_path)
    assert run.name.endswith("_all")
    for name in ("fake_first", "fake_second", "fake_third"):  # written into LOADTEST_RUN_DIR
        assert (run / f"{name}.json").is_file()
    assert sorted(p.name for p in run.glob("junit-*.xml")) == [f"junit-{i}.xml" for i in (1, 2, 3)]
    report = (run / "report.md").read_text()
    assert "| fake_second |" in report and "report.md (exit 1)" in proc.stdout
    assert json.loads((run / "run.json").read_text())["exit_code"] == 1


def test_metrics_port_is_passed_to_the_load_process(tmp_path: Path) -> None:
    """--metrics-port reaches the process that runs the load; a bad port is a usage error."""
    body = FAKE_SUITE.split("def test_fake_first")[0] + (
        "def test_port(request):\n"
        '    _report("fake_port", port=request.config.getoption("--metrics-port"))\n'
    )
    suite = fake_suite(tmp_path, body)
    with serve() as (url, _):
        proc, _ = run_runner(
            tmp_path, "pytest", "--host", url, "--metrics-port", "9646", LOADTEST_SUITE=str(suite)
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = run_folders(tmp_path)
    assert json.loads((run / "fake_port.json").read_text())["port"] == "9646"
    bad, _ = run_runner(tmp_path, "quick", "--metrics-port", "70000")
    assert bad.returncode == 2 and "--metrics-port must be a port" in one_line(bad.stderr)


def test_interrupt_waits_for_the_report_renders_and_exits_130(tmp_path: Path) -> None:
    """SIGINT: forwarded to the running scenario, which writes its report; rendered; exit 130."""
    suite = fake_suite(tmp_path, SLEEPY_SUITE)
    with serve() as (url, _):
        proc = subprocess.Popen(
            ["bash", str(RUNNER), "pytest", "--host", url],
            cwd=tmp_path,
            env=_env(tmp_path, LOADTEST_SUITE=str(suite)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not list((tmp_path / "results").glob("*/started")):
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 130, out + err
    (run,) = run_folders(tmp_path)
    assert json.loads((run / "sleepy.json").read_text())["interrupted"] is True
    assert "The run was interrupted after" in (run / "report.md").read_text()


@pytest.mark.slow
def test_quick_preset_against_the_bundled_backend(tmp_path: Path) -> None:
    """`quick --run-time 10s`, no --host: exit 0; JSON, HTML, CSV, charts and report written; a
    progress line per 5 s and no periodic Locust table; the final figures line gives the JSON
    report's numbers, and report.md's summary row the same ones."""
    proc, _ = run_runner(tmp_path, "quick", "--run-time", "10s", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = run_folders(tmp_path)
    assert (run / "locust.html").is_file() and (run / "locust_stats.csv").is_file()
    assert list((run / "charts").glob("*.png")) and (run / "server.log").is_file()
    report = (run / "report.md").read_text()
    assert "## Bottleneck analysis" in report and "SQLite file" in report
    assert f"report: {run}/report.md" in proc.stdout
    _check_quiet_and_agreeing(proc, run, report)


def _check_quiet_and_agreeing(proc: subprocess.CompletedProcess, run: Path, report: str) -> None:
    output = proc.stdout + proc.stderr
    progress = [line for line in proc.stdout.splitlines() if line.startswith("progress ")]
    assert 1 <= len(progress) <= 3, proc.stdout
    assert output.count("Aggregated") <= 2, output[-3000:]  # only the final tables
    data = json.loads((run / "locust_all.json").read_text())
    exact = re.search(
        r"exact: (\d+) requests, ([\d.]+)% errors, p50 ([\d.]+) / p95 ([\d.]+) / p99 ([\d.]+)",
        output,
    )
    assert exact, output[-3000:]
    assert int(exact[1]) == data["total_requests"]
    for value, key in zip(exact.groups()[2:], ("p50", "p95", "p99"), strict=True):
        assert float(value) == round(data[f"response_time_{key}_ms"], 1)
    row = next(line for line in report.splitlines() if "| locust_all |" in line)
    assert f"| {data['total_requests']} |" in row
    assert f"| {data['response_time_p95_ms']:.2f} |" in row
    assert "locust_all  passed" in proc.stdout or "locust_all  failed" in proc.stdout
    assert data["defects"] == [] and data["limit_shaped"] is False  # known to the plugin's manager


def test_non_loopback_host_asks_on_a_terminal_and_no_means_no(tmp_path: Path) -> None:
    """On a terminal the runner asks; answering no exits 2 before any request or run folder."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            ["bash", str(RUNNER), "quick", "--host", "http://192.0.2.1:8000"],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(primary, b"n\n")
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(primary)
        os.close(secondary)
    assert proc.returncode == 2, out + err
    assert "not confirmed" in one_line(err) and "no request was sent" in err
    assert run_folders(tmp_path) == []


@pytest.mark.parametrize("script", ["run_load_tests.sh", "run_tests.sh", ".ci/run"])
def test_shell_scripts_pass_bash_syntax_and_shellcheck(script: str) -> None:
    """`bash -n` accepts each shell entry point; shellcheck (when installed) reports nothing."""
    subprocess.run(["bash", "-n", str(ROOT / script)], check=True, timeout=30)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run(
        ["shellcheck", "-x", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout
