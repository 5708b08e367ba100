"""Nothing a run does escapes the host it was given, and every run stops by itself.

The pytest suite and headless Locust run against a chaos server without faults on 127.0.0.1 while
the test samples the tool's sockets (psutil, the tool and its children) every 0.1 s: every
connection goes to that host and port, and the server's log shows every peer on loopback. Each run
ends on its own within its bound (no kill needed). A host outside loopback is refused before any
request elsewhere (tests/runner, tests/suite, tests/locust: the ``--yes`` tests).
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import connections_of, locust_command, suite_command

pytestmark = pytest.mark.faults

COMMANDS = {
    "pytest": lambda url: suite_command("baseline_test.py", "--host", url),
    "locust": lambda url: locust_command(
        "--host", url, "-u", "4", "-r", "4", "-t", "5s", "--tags", "health", "db_pool"
    ),
}
BOUND_S = {"pytest": 60.0, "locust": 5 + 30.0}


@pytest.mark.parametrize("tool", sorted(COMMANDS))
def test_every_connection_goes_to_the_named_host(tool: str, chaos, background) -> None:
    """Sampled while the run goes on: every remote end is 127.0.0.1:<the server's port>, nothing
    listens outside loopback; the run ends by itself within its bound."""
    server = chaos()
    run = background(COMMANDS[tool](server.url))
    remotes, listeners = set(), set()
    deadline = time.monotonic() + BOUND_S[tool]
    while run.proc.poll() is None and time.monotonic() < deadline:
        for conn in connections_of(run.proc.pid):
            if conn.raddr:
                remotes.add((conn.raddr.ip, conn.raddr.port))
            elif conn.status == "LISTEN":
                listeners.add(conn.laddr.ip)
        time.sleep(0.1)
    done = run.wait(10)  # fails (and kills it) if it did not stop by itself within the bound
    assert remotes == {("127.0.0.1", server.port)}, remotes
    assert all(ip.startswith("127.") or ip == "::1" for ip in listeners), listeners
    peers = {entry["peer"][0] for entry in server.entries() if entry.get("conn")}
    assert peers == {"127.0.0.1"}, peers
    assert done.seconds < BOUND_S[tool], done.seconds
    assert done.reports, done.output[-3000:]  # it did run load and reported
