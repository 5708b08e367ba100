"""The /live canary (`loadkit.watch.canary`) against a real server on loopback: it keeps its rate,
times a stalled answer from the intended start and flags it, counts failed answers as errors rather
than
latency, and reads its settings from a targets profile."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadkit.verdicts import slo
from loadkit.watch import canary

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Live:
    """How GET /live answers: its status, and a one-off stall on the n-th request."""

    status: int = 200
    stall_on: int | None = None
    stall_s: float = 0.0
    requests: int = 0


@contextmanager
def live_server(live: Live) -> Iterator[str]:
    """A keep-alive server on 127.0.0.1 answering GET /live as ``live`` says; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            live.requests += 1
            if live.requests == live.stall_on:
                time.sleep(live.stall_s)
            status = live.status if self.path == "/live" else 404
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run(url: str, seconds: float, rate: float = 20.0) -> canary.Canary:
    live = canary.Canary(url, canary.Settings(rate=rate, timeout_s=2.0)).start()
    time.sleep(seconds)
    live.stop()
    return live


def test_a_quiet_server_is_not_flagged_and_the_rate_holds() -> None:
    """20/s for 1 s against a fast /live: about 20 answers, no error, not flagged."""
    with live_server(Live()) as url:
        idle = canary.measure_idle(url, canary.Settings(rate=20.0, idle_s=0.5))
        live = _run(url, 1.0)
    block = live.summary(idle)
    assert 15 <= block["requests"] <= 22 and block["errors"] == 0
    assert block["p50_ms"] is not None and block["p50_ms"] <= block["p99_ms"]
    assert block["flagged"] is False and canary.flagged_problem(block, "the test") is None


def test_a_stall_is_timed_from_the_intended_start_and_flagged() -> None:
    """One 400 ms stall delays the ticks behind it: p99 and the worst gap show it; flagged."""
    with live_server(Live(stall_on=5, stall_s=0.4)) as url:
        live = _run(url, 1.5)
    block = live.summary(idle_p99_ms=2.0)
    assert block["p99_ms"] >= 350 and block["max_gap_ms"] >= 350
    assert block["threshold_ms"] == pytest.approx(102.0)
    assert block["flagged"] is True
    assert "event-loop defect" in canary.flagged_problem(block, "the test")


def test_failed_answers_are_errors_not_latency() -> None:
    """A /live answering 503: every answer an error, no percentile, nothing to flag."""
    with live_server(Live(status=503)) as url:
        live = _run(url, 0.5)
    block = live.summary(idle_p99_ms=2.0)
    assert block["requests"] >= 5 and block["errors"] == block["requests"]
    assert block["p99_ms"] is None and block["flagged"] is None


def test_without_an_idle_figure_nothing_is_flagged() -> None:
    """No idle p99 known: no threshold, flagged is None (not False)."""
    with live_server(Live()) as url:
        live = _run(url, 0.3)
    block = live.summary(idle_p99_ms=None)
    assert block["threshold_ms"] is None and block["flagged"] is None


def test_the_idle_figure_is_measured_once_per_target() -> None:
    """idle_p99_ms measures a target once: asked again after its server is gone, it still has it."""
    settings = canary.Settings(rate=20.0, idle_s=0.3)
    with live_server(Live()) as url:
        first = canary.idle_p99_ms(url, settings)
    assert first is not None
    assert canary.idle_p99_ms(url, settings) == first  # a new measurement would get no answer
    assert canary.measure_idle(url, settings) is None


def test_settings_come_from_the_profile_and_the_threshold_is_the_larger_bar() -> None:
    """The default profile's canary keys are read; threshold = max(factor x idle, idle + excess)."""
    profile = slo.load_profile("default", REPO / "targets.toml")
    settings = canary.Settings.from_profile(profile)
    assert settings.rate == float(profile.scenarios["canary"]["rate_per_s"])
    assert settings.factor == float(profile.thresholds["canary"]["p99_over_idle_factor"])
    s = canary.Settings(factor=10.0, min_excess_ms=100.0)
    assert s.threshold_ms(2.0) == 102.0 and s.threshold_ms(50.0) == 500.0
