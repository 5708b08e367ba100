"""Locust's web UI and the master's worker port listen on loopback by default, from any folder.

Each test starts `locust -f <repo>/load_test.py` from an empty temporary folder (no locust.conf
there, no --web-host / --master-bind-host) and reads the bound address from /proc/net/tcp and
/proc/net/tcp6: no traffic is sent anywhere, loopback included.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reference_backend.process import free_port
from tests.locust.conftest import LOCUST, REPO, locust_env

pytestmark = pytest.mark.slow  # Locust starts in 2-4 s each

LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
LISTEN = "0A"
START_TIMEOUT_S = 30


def listeners(port: int) -> list[tuple[str, str]]:
    """(table, local address in hex) of every socket listening on ``port``, IPv4 and IPv6."""
    found = []
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == LISTEN:
                found.append((table, address))
    return found


def wait_listening(port: int, proc: subprocess.Popen) -> list[tuple[str, str]]:
    """The listeners on ``port`` once there is one (bounded; fails if Locust exits first)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = listeners(port)
        if found:
            return found
        assert proc.poll() is None, f"locust exited with {proc.returncode} before listening"
        time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {START_TIMEOUT_S} s")


@contextmanager
def locust_in(folder: Path, *args: str) -> Iterator[subprocess.Popen]:
    """Locust started from ``folder`` with the repository's locustfile by absolute path."""
    proc = subprocess.Popen(
        [*LOCUST, *args],
        cwd=folder,
        env=locust_env(folder / "run"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_web_ui_listens_on_loopback_from_any_folder(tmp_path: Path) -> None:
    """With no --web-host and no locust.conf in the working folder, the web UI binds 127.0.0.1
    only (Locust's own default is every interface)."""
    assert not (tmp_path / "locust.conf").exists() and tmp_path != REPO
    port = free_port()
    with locust_in(tmp_path, "--web-port", str(port)) as proc:
        assert wait_listening(port, proc) == [("tcp", LOOPBACK_HEX)]


def test_master_binds_loopback_by_default(tmp_path: Path) -> None:
    """A --master with no --master-bind-host listens for workers on 127.0.0.1 only, and so does
    its web UI."""
    web, master = free_port(), free_port()
    args = ("--master", "--master-bind-port", str(master), "--web-port", str(web))
    with locust_in(tmp_path, *args) as proc:
        assert wait_listening(master, proc) == [("tcp", LOOPBACK_HEX)]
        assert wait_listening(web, proc) == [("tcp", LOOPBACK_HEX)]


WARN_SCRIPT = """
import logging, sys
from types import SimpleNamespace
logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
from loadkit.locust_plugin.options import warn_open_web_ui
for host in sys.argv[1:]:
    warn_open_web_ui(SimpleNamespace(web_host=host, headless=False))
warn_open_web_ui(SimpleNamespace(web_host="0.0.0.0", headless=True))
"""


def test_a_web_ui_beyond_loopback_warns_that_the_form_has_no_password() -> None:
    """One warning line for a web host outside loopback ('*', an address), none for loopback
    or headless (no web UI). Checked in a child (the module imports Locust), binding nothing."""
    hosts = ("127.0.0.1", "localhost", "*", "10.1.2.3", "::1")
    done = subprocess.run(
        [sys.executable, "-c", WARN_SCRIPT, *hosts],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("WARNING")]
    assert len(lines) == 2, done.stdout
    assert "every interface" in lines[0] and "10.1.2.3" in lines[1]
    assert all("no password" in line for line in lines)
