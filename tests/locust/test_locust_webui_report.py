"""The web UI's run report and defaults, over HTTP: a stopped test's report.md and charts exist at
once, the Server tab names the run folder and the report, the pool is shown in connections, and
the page unticks the opt-in DefectProber in the class picker."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_backend.process import free_port
from tests.locust.conftest import REPO, locust_command, locust_env

RUN_S = 6


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get_content_type(), resp.read()


def _wait(predicate, timeout_s: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stopped_ui(backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Locust's web UI with a short autostarted test that stops on its own, Locust still up."""
    run_dir = tmp_path_factory.mktemp("webui") / "run"
    port = free_port()
    args = ("--web-host", "127.0.0.1", "--web-port", str(port), "--autostart")
    proc = subprocess.Popen(
        locust_command(backend.url, *args, "-u", "3", "-r", "3", "-t", f"{RUN_S}s"),
        cwd=REPO,
        env=locust_env(run_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(url + "/")[0] == 200, 40, "the web UI")
        yield url, run_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tab(url: str) -> dict[str, str]:
    body = json.loads(_get(url + "/stats/requests")[2])
    rows = body["extended_stats"][0]["data"]
    return {r["metric"]: r["value"] for r in rows}


def test_stopped_test_is_rendered_and_linked(stopped_ui) -> None:
    """After the test stops, report.md and charts are in the run folder, /server-report links
    them, and the Server tab names the folder and the report, with Locust still running."""
    url, run_dir = stopped_ui
    rows = _wait(
        lambda: (t := _tab(url))["Report"].startswith("/server-report") and t,
        RUN_S + 90,
        "the report to be rendered",
    )
    assert rows["Run folder"] == str(run_dir)
    assert (run_dir / "report.md").is_file()
    charts = sorted((run_dir / "charts").glob("*.png"))
    assert charts, "no chart rendered"
    _, kind, page = _get(url + "/server-report")
    text = page.decode()
    assert kind == "text/html" and str(run_dir) in text
    assert 'href="/server-report/report.md"' in text
    for chart in charts:
        assert f'src="/server-report/charts/{chart.name}"' in text
    _, kind, md = _get(url + "/server-report/report.md")
    assert kind == "text/plain" and md.decode() == (run_dir / "report.md").read_text()
    _, kind, png = _get(f"{url}/server-report/charts/{charts[0].name}")
    assert kind == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_server_tab_shows_pool_connections_not_overflow(stopped_ui) -> None:
    """The tab shows the pool as connections in use, open and capacity; no raw overflow row."""
    url, _ = stopped_ui
    rows = _tab(url)
    assert not any("overflow" in k and "max_overflow" not in k for k in rows)
    in_use, opened = rows["DB pool connections in use"], rows["DB pool connections open"]
    capacity = rows["DB pool capacity (size + max_overflow)"]
    assert float(capacity) > 0 and 0 <= float(in_use) <= float(opened) <= float(capacity)
    read_p95 = [k for k in rows if k.strip().startswith("response_time_p95_ms <=")]
    assert read_p95 and read_p95[0].endswith(")"), rows  # names the endpoint it measured
    feed = json.loads(_get(url + "/server-charts/data")[2])["series"]
    assert "pool_overflow" not in feed
    assert all(v is None or v >= 0 for v in feed["pool_open"])


def test_class_picker_unticks_the_defect_prober(stopped_ui) -> None:
    """Locust's page carries the script that unticks DefectProber, and only the opt-in ones."""
    url, _ = stopped_ui
    html = _get(url + "/")[2].decode()
    assert 'window.LOADKIT_UNTICKED = ["DefectProber"];' in html
    assert '<script src="/loadkit-webui/picker.js"></script>' in html
    assert _get(url + "/loadkit-webui/picker.js")[0] == 200
