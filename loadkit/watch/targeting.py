"""The system under test for the pytest suites: URL, server process, TLS and time-out options.

Pure helpers for conftest.py: is a host on this machine, which process serves it (``--server-pid``,
else the process listening on the port of a loopback target), and is it up (GET /health answers 200)
before any load is sent. A remote target has no server process here: resource figures are then
unavailable, and `Target.resources_reason` says why.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from loadkit.measure.http import ssl_context
from loadkit.watch import monitor
from loadkit.watch.loopback import is_loopback


def host_problem(url: str) -> str | None:
    """None for an http(s) URL naming a host, else the one line a malformed --host gets."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        valid = False
    if valid:
        return None
    return f"--host {url!r} is not an http(s) URL with a host name (e.g. http://127.0.0.1:8000)"


def confirm_message(url: str) -> str:
    """The one line shown when a non-loopback target lacks --yes."""
    return (
        f"{url} is not on this machine: this sends real load to it. "
        "Pass --yes to confirm, or use a loopback host."
    )


@dataclass(frozen=True)
class Options:
    """The command-line options that shape the target."""

    host: str | None
    server_pid: int | None
    timeout_s: float
    verify: bool | str

    @classmethod
    def from_config(cls, config) -> Options:
        """Read the options from a pytest Config."""
        bundle = config.getoption("--ca-bundle")
        verify: bool | str = False if config.getoption("--insecure") else bundle or True
        host = config.getoption("--host", default=None)
        return cls(
            host=host.rstrip("/") if host else None,
            server_pid=config.getoption("--server-pid"),
            timeout_s=float(config.getoption("--request-timeout")),
            verify=verify,
        )


@dataclass(frozen=True)
class Target:
    """Where load goes, and which process (if any) resource figures describe."""

    url: str
    server_pid: int | None
    resources_reason: str | None
    timeout_s: float = 30.0
    verify: bool | str = True
    started_here: bool = False


def remote_or_local(options: Options) -> Target:
    """A --host target: the server pid from --server-pid, else the port's listener on loopback."""
    url = options.host or ""
    pid, reason = options.server_pid, None
    if pid is None and is_loopback(url):
        pid = monitor.find_server_pid(url)
        reason = None if pid else f"no process found listening on {url}'s port on this machine"
    elif pid is None:
        reason = (
            f"{url} is not on this machine: server memory and CPU cannot be measured "
            "(pass --server-pid for a server that runs here)"
        )
    return Target(url, pid, reason, options.timeout_s, options.verify)


def started(options: Options, url: str, pid: int) -> Target:
    """The reference backend this run started."""
    return Target(url, pid, None, options.timeout_s, options.verify, started_here=True)


def start_reference(*, env: dict[str, str], log_path: Path):
    """Start the reference backend on a free loopback port (reference_backend.process)."""
    from reference_backend.process import start_backend

    # The server's log may carry requests: created readable by the user alone, before it opens it.
    os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return start_backend(env=env, port=0, log_path=log_path)


def preflight(target: Target, timeout_s: float = 10.0) -> str | None:
    """None when GET /health answers 200, else one line saying what is wrong."""
    url = target.url + "/health"
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https"):
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context(target.verify)))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"{url} answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{target.url} is unhealthy: GET /health answered HTTP {exc.code}{_status(exc)}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"cannot reach {target.url}: {reason}"


def _status(exc: urllib.error.HTTPError) -> str:
    """The health body's status field, if any (e.g. " (unhealthy)")."""
    try:
        body = json.loads(exc.read())
    except (OSError, ValueError):
        return ""
    return f" ({body.get('status')})" if isinstance(body, dict) and body.get("status") else ""
