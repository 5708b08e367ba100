"""The Locust web UI in headless Chromium: the Server tab and the live charts page render and
move."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_backend.process import free_port
from tests.locust.conftest import REPO, locust_command, locust_env

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture
def locust_ui(backend, tmp_path: Path) -> Iterator[str]:
    """Locust's web UI on a free loopback port, a test autostarted against the backend."""
    yield from _ui(backend, tmp_path, "--autostart", "-u", "5", "-r", "5", "-t", "60s")


@pytest.fixture
def idle_ui(backend, tmp_path: Path) -> Iterator[str]:
    """Locust's web UI showing its start form (no test started)."""
    yield from _ui(backend, tmp_path)


def _ui(backend, tmp_path: Path, *args: str) -> Iterator[str]:  # noqa: ANN001
    port = free_port()
    proc = subprocess.Popen(
        locust_command(backend.url, "--web-host", "127.0.0.1", "--web-port", str(port), *args),
        cwd=REPO,
        env=locust_env(tmp_path / "run"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """Debian's chromium, headless, driven by its chromedriver with a fresh profile."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium and chromedriver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(predicate, timeout_s: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _server_tab_text(driver) -> str:  # noqa: ANN001
    text = driver.find_element("tag name", "body").text
    return text if "Server RSS now" in text else ""


def _requests_recorded(text: str) -> int:
    match = re.search(r"Requests recorded\s+([\d,]+)", text)
    return int(match.group(1).replace(",", "")) if match else -1


def test_server_tab_renders_live_figures(locust_ui: str, browser, tmp_path: Path) -> None:
    """The Server tab lists the server's RSS, the pool, p95 and the verdict, and its figures
    move."""
    browser.get(f"{locust_ui}/?tab=server")
    first = _wait_for(lambda: _server_tab_text(browser), 40, "the Server tab")
    for label in ("Server PID", "DB pool connections in use", "p95, last 5 s", "Verdict"):
        assert label in first
    second = _wait_for(
        lambda: (
            (t := _server_tab_text(browser))
            and _requests_recorded(t) > _requests_recorded(first)
            and t
        ),
        30,
        "the Server tab's figures to change",
    )
    assert second != first
    browser.save_screenshot(str(tmp_path / "server_tab.png"))


def test_charts_page_renders_moving_data(locust_ui: str, browser, tmp_path: Path) -> None:
    """/server-charts draws three uPlot charts from the JSON feed, and the data keeps coming."""
    browser.get(f"{locust_ui}/server-charts")

    def samples() -> int:
        body = browser.find_element("tag name", "body")
        return int(body.get_attribute("data-samples") or 0)

    first = _wait_for(lambda: samples() >= 2 and samples(), 40, "chart data")
    _wait_for(lambda: samples() > first, 30, "the charts to move")
    assert browser.execute_script("return typeof uPlot") == "function"
    assert len(browser.find_elements("css selector", ".uplot canvas")) == 3
    assert "Server memory and CPU" in browser.find_element("tag name", "body").text
    browser.save_screenshot(str(tmp_path / "server_charts.png"))


def _picker_boxes(driver) -> dict[str, bool]:  # noqa: ANN001
    """{persona: ticked} from the class picker's rows."""
    boxes = {}
    for row in driver.find_elements("css selector", "tr"):
        cells = row.find_elements("css selector", "td")
        inputs = row.find_elements("css selector", "td input[type=checkbox]")
        if len(cells) >= 2 and inputs:
            boxes[cells[1].text.strip()] = inputs[0].is_selected()
    return boxes


def test_class_picker_starts_with_defect_prober_unticked(idle_ui: str, browser) -> None:
    """The start form ticks the load personas and leaves the opt-in DefectProber unticked."""
    browser.get(idle_ui + "/")
    boxes = _wait_for(
        lambda: (b := _picker_boxes(browser)) and "DefectProber" in b and b, 30, "the picker"
    )
    time.sleep(1.0)  # the untick script runs every 250 ms
    boxes = _picker_boxes(browser)
    assert boxes["DefectProber"] is False, boxes
    assert boxes["RealisticTherapist"] is True and boxes["DbPoolStressor"] is True, boxes
