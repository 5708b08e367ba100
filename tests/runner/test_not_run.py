"""loadkit.report.not_run: a scenario that never wrote its report is listed in run.json and shown.

The scenario is a real pytest process that fails at collection (exit 2); the exit line is read from
its real output, and the real renderer turns run.json into report.md's verdict line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loadkit.report import not_run, render

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "import no_such_module_for_the_test\n\ndef test_x():\n    pass\n"


def _pytest(test_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=test_file.parent,
    )


def test_collection_error_is_recorded_and_rendered(tmp_path: Path) -> None:
    """Exit 2 with no report gives a not_run entry whose exit line names the error, and report.md
    shows it as "not run: exit 2: ..."."""
    test_file = tmp_path / "test_broken.py"
    test_file.write_text(BROKEN)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = _pytest(test_file)
    assert done.returncode == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"preset": "all"}))
    node = "test_broken.py::test_x"
    entry = not_run.record(run, node, done.returncode, done.stdout + done.stderr)
    assert entry is not None and "no_such_module_for_the_test" in entry["exit_line"]
    info = json.loads((run / "run.json").read_text())
    assert info["preset"] == "all" and info["scenarios"] == [entry]
    assert entry["test_name"] == "x" and entry["verdict"] == "not_run"
    render.render(run)
    text = (run / "report.md").read_text()
    assert f"`x` not run: exit 2: {entry['exit_line']}" in text.replace("\\_", "_")


def test_scenario_with_a_report_is_not_listed(tmp_path: Path) -> None:
    """A scenario whose JSON report exists gets no entry, whatever its exit code."""
    (tmp_path / "x[a].json").write_text(json.dumps({"schema": 1, "test_name": "x[a]"}))
    assert not_run.record(tmp_path, "pytest_load_test.py::test_x[a]", 1, "FAILED") is None
    assert not (tmp_path / "run.json").exists()


def test_recording_twice_keeps_one_entry_per_node(tmp_path: Path) -> None:
    """The same node recorded again replaces its entry; other nodes stay."""
    not_run.record(tmp_path, "f.py::test_a", 2, "ERROR one")
    not_run.record(tmp_path, "f.py::test_b", 2, "ERROR two")
    not_run.record(tmp_path, "f.py::test_a", 4, "ERROR three")
    entries = json.loads((tmp_path / "run.json").read_text())["scenarios"]
    assert [(e["node"], e["exit_code"]) for e in entries] == [
        ("f.py::test_b", 2),
        ("f.py::test_a", 4),
    ]


def test_exit_line_prefers_the_error_and_redacts() -> None:
    """The E-line beats the summary line; a bearer token never reaches the line."""
    output = "collected 0 items\nE   ValueError: Bearer abc.def.ghi refused\n= 1 error in 0.1s ="
    line = not_run.exit_line(output)
    assert line.startswith("ValueError:") and "abc.def.ghi" not in line
    assert not_run.exit_line("") == "no output"
    exited = (
        "test_e.py::test_x \n!!!!! _pytest.outcomes.Exit: no usable account !!!!!\n= no tests ran ="
    )
    assert not_run.exit_line(exited) == "no usable account"


WRITER = """
import sys
from pathlib import Path
from loadkit.report import not_run
run = Path(sys.argv[1])
print("ready", flush=True)
for i in range(100000):
    not_run.record(run, f"f.py::test_{i % 50}", 2, "ERROR " + "x" * 2000)
"""


def test_run_json_stays_whole_when_the_writer_is_killed(tmp_path: Path) -> None:
    """SIGKILL at any moment of a write leaves run.json parseable (atomic replace)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        data = json.loads((tmp_path / "run.json").read_text())
        assert all(e["verdict"] == "not_run" for e in data["scenarios"])
