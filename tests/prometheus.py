"""A real Prometheus on loopback for the tests: a generated config that scrapes given targets
every second, a throw-away storage folder, and its HTTP query API.

Needs the `prometheus` binary (Debian: `apt-get install prometheus`); `prometheus_binary()` says
whether it is there so a test can skip loudly (REQUIRE_SERVICES=1 turns that into a failure).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 20.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def prometheus_binary() -> str | None:
    """Path of the prometheus binary, or None."""
    return shutil.which("prometheus")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, targets: list[str]) -> Path:
    """A config scraping ``targets`` (host:port) every second."""
    quoted = ", ".join(f"'{t}'" for t in targets)
    path.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: loadkit\n    static_configs:\n"
        f"      - targets: [{quoted}]\n"
    )
    return path


class Prometheus:
    """A running Prometheus: ``query(expr)`` returns the instant vector's result list."""

    def __init__(self, url: str, proc: subprocess.Popen) -> None:
        self.url, self.proc = url, proc

    def _get(self, path: str, **params: str) -> dict:
        query = urllib.parse.urlencode(params)
        with _OPENER.open(f"{self.url}{path}?{query}", timeout=5) as resp:
            return json.loads(resp.read())

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """Evaluate ``expr`` now (or at Unix time ``at``); raise on an error answer."""
        params = {"query": expr} if at is None else {"query": expr, "time": repr(at)}
        body = self._get("/api/v1/query", **params)
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r}: {body}")
        return body["data"]["result"]

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll /-/ready until it answers 200 (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}")
            try:
                with _OPENER.open(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready within {timeout_s} s")

    def wait_scraped(self, expr: str, predicate, timeout_s: float = 15.0) -> list[dict]:
        """Poll ``expr`` until ``predicate(result)`` holds (bounded); the last result."""
        deadline, result = time.monotonic() + timeout_s, []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{expr!r} never satisfied the test within {timeout_s} s: {result}")


@contextmanager
def running_prometheus(folder: Path, targets: list[str]) -> Iterator[Prometheus]:
    """Start Prometheus on 127.0.0.1 scraping ``targets``; stop it (and wait) afterwards."""
    port = free_port()
    config = write_config(folder / "prometheus.yml", targets)
    log = (folder / "prometheus.log").open("wb")
    args = [
        prometheus_binary() or "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        prom = Prometheus(f"http://127.0.0.1:{port}", proc)
        prom.wait_ready()
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def dashboard_queries(dashboard: dict, testid: str, interval: str = "10s") -> list[str]:
    """Every panel query of a Grafana dashboard, with its variables filled in."""
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return [e.replace("$testid", testid).replace("$__rate_interval", interval) for e in exprs]
