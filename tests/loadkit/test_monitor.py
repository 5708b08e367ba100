"""loadkit.watch.monitor against a real server subprocess: its pid, memory, CPU and pool."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadkit.measure.recording import RunRecorder
from loadkit.report.schema import build_report
from loadkit.watch import monitor
from loadkit.watch import pool as pool_monitor

FAKE_SERVER = Path(__file__).with_name("fake_server.py")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Server:
    """The fake server subprocess and its base URL."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_SERVER), "90"], stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 20) -> dict:
        with NO_PROXY.open(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


def test_find_server_pid_is_the_listening_child_not_this_process(server: Server) -> None:
    """The pid found for the target's port is the server subprocess, not the test runner."""
    for host in ("127.0.0.1", "localhost"):
        pid = monitor.find_server_pid(f"http://{host}:{server.port}/")
        assert pid == server.proc.pid and pid != os.getpid()


def test_find_server_pid_refuses_remote_hosts_and_empty_ports(server: Server) -> None:
    """A non-loopback host is never looked up; a port nobody listens on gives None."""
    assert monitor.find_server_pid(f"http://example.com:{server.port}") is None
    assert monitor.find_server_pid(f"http://10.1.2.3:{server.port}") is None
    server.stop()
    assert monitor.find_server_pid(server.url) is None


def test_rss_growth_is_the_servers(server: Server) -> None:
    """When the server keeps 30 MB, the monitor sees its RSS grow by about that much."""
    mon = monitor.ServerMonitor(server.proc.pid, interval_s=0.1)
    mon.start()
    try:
        server.get("/alloc?mb=30")
        time.sleep(0.5)
    finally:
        mon.stop()
    summary = mon.summary()
    assert summary["server_pid"] == server.proc.pid
    assert 25 <= summary["memory_growth_mb"] <= 60, summary
    assert summary["memory_peak_mb"] >= summary["memory_initial_mb"] + 25
    assert summary["cpu_samples"] >= 3 and len(mon.samples()) == summary["cpu_samples"] + 1


@pytest.mark.alone
def test_cpu_is_the_servers_while_the_generator_idles(server: Server) -> None:
    """A busy server shows high server CPU while this (waiting) process stays low."""
    mon = monitor.ServerMonitor(server.proc.pid, interval_s=0.2)
    mon.start()
    try:
        server.get("/busy?s=1.5")
    finally:
        mon.stop()
    summary = mon.summary()
    peak = max(s["cpu_percent"] for s in mon.samples() if s["cpu_percent"] is not None)
    assert peak >= 40, mon.samples()
    assert summary["generator_cpu_percent"] < 30, summary
    assert summary["cpu_avg_percent"] > summary["generator_cpu_percent"]
    assert summary["generator_saturated"] is False


def _tree_cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process and its children (the ground truth here)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


@pytest.mark.alone
def test_cpu_counts_the_whole_process_tree() -> None:
    """CPU of a child (a uvicorn worker, say) counts toward its parent's tree: the monitor's CPU
    matches what the tree really consumed (from psutil), however busy the machine is."""
    code = (
        "import subprocess, sys, time;"
        "c = subprocess.Popen([sys.executable, '-c', 'import time\\nt=time.monotonic()+3\\n"
        "while time.monotonic()<t: pass']);"
        "c.wait()"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        tree = psutil.Process(parent.pid)
        time.sleep(0.3)  # let the child start, so it is known from the first sample
        mon = monitor.ServerMonitor(parent.pid, interval_s=0.2)
        before, t0 = _tree_cpu_seconds(tree), time.monotonic()
        mon.start()
        time.sleep(1.5)
        mon.stop()
        used, elapsed = _tree_cpu_seconds(tree) - before, time.monotonic() - t0
    finally:
        parent.wait(timeout=20)
    samples = [s["cpu_percent"] for s in mon.samples() if s["cpu_percent"] is not None]
    truth = 100 * used / elapsed
    assert truth > 5, "the busy child got no CPU at all"
    assert abs(sum(samples) / len(samples) - truth) <= max(0.35 * truth, 5), (samples, truth)


def test_no_pid_means_unavailable_not_zero() -> None:
    """Without a server pid every server figure is None and the reason is stated."""
    mon = monitor.ServerMonitor(None, interval_s=0.05, unavailable_reason="remote target")
    mon.start()
    time.sleep(0.1)
    mon.stop()
    summary = mon.summary()
    assert summary["unavailable_reason"] == "remote target" and mon.samples() == []
    for key in ("server_pid", "memory_initial_mb", "memory_growth_mb", "cpu_avg_percent"):
        assert summary[key] is None
    assert summary["generator_cpu_percent"] is not None


def test_pool_monitor_tolerates_missing_extra_and_broken_fields(server: Server) -> None:
    """Varied /health bodies (no pool, not JSON, 503, odd types, extra keys): None, no error."""
    pool = pool_monitor.PoolMonitor(server.url)
    rows = [pool.sample_once() for _ in range(6)]
    assert rows[0]["size"] == 5 and rows[0]["checked_out"] == 1 and rows[0]["overflow"] == -4
    assert rows[0]["max_overflow"] is None and rows[0]["timeouts"] is None
    assert rows[1]["checked_out"] is None and rows[1]["status"] == 200
    assert rows[2]["error"] == "body is not JSON"
    assert rows[3]["checked_out"] == 15 and rows[3]["max_overflow"] == 10
    assert rows[4]["status"] == 503 and rows[4]["size"] is None and rows[4]["timeouts"] == 2
    assert rows[5]["checked_out"] == 3 and rows[5]["size"] is None
    summary = pool.summary()
    assert summary == {
        "size": 5, "max_overflow": 10, "checked_out_max": 15, "open_max": 15, "capacity": 15,
        "overflow_max": 10, "exhaustion_events": 2, "samples": 4,
    }  # fmt: skip


def test_pool_monitor_unreachable_health_is_unavailable(server: Server) -> None:
    """With no answer at all the pool block says so, with None figures."""
    url = server.url
    server.stop()
    pool = pool_monitor.PoolMonitor(url, timeout_s=1)
    row = pool.sample_once()
    assert row["status"] is None and row["error"]
    summary = pool.summary()
    assert summary["samples"] == 0 and summary["checked_out_max"] is None
    assert "unavailable_reason" in summary


def test_monitors_sample_on_their_own_and_feed_the_report(server: Server) -> None:
    """Both monitors sample on a timer; server_series joins the report's time series."""
    rec = RunRecorder()
    rec.start()
    srv_mon = monitor.ServerMonitor(server.proc.pid, interval_s=0.1)
    pool_mon = pool_monitor.PoolMonitor(server.url, interval_s=0.1)
    srv_mon.start()
    pool_mon.start()
    rec.record("GET /health", 0.001, status=200)
    time.sleep(1.2)
    srv_mon.stop()
    pool_mon.stop()
    assert len(srv_mon.samples()) >= 5 and len(pool_mon.samples()) >= 5
    rows = monitor.server_series(srv_mon, pool_mon)
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    report = build_report(
        test_name="t", tool="pytest", started_at=rec.t0, duration_s=1.2, recorder=rec,
        target=server.url, profile="default", parameters={}, resources=srv_mon.summary(),
        db_pool=pool_mon.summary(), server_series=rows,
    )  # fmt: skip
    first = report["timeseries"][0]
    assert first["server_rss_mb"] > 0 and first["pool_checked_out"] is not None
    assert report["resources"]["server_pid"] == server.proc.pid
    assert report["db_pool"]["samples"] >= 3
