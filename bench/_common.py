"""Helpers shared by the benchmarks: machine line, pinning, nginx, wrk, the ground-truth server,
Locust as a subprocess, Markdown tables.

The machine has 2 cores: a generator is pinned to core 0 (``taskset``), the server to core 1. Every
server started here listens on a free loopback port and is stopped by the block that started it;
every subprocess has a time-out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
GENERATOR_CORE, SERVER_CORE = "0", "1"
FAKE_TOKEN = '{"access_token": "bench", "refresh_token": "bench", "expires_in": 3600}'

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log error;
events {{ worker_connections 12000; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    location = /api/v1/login {{ default_type application/json; return 200 '{token}'; }}
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit (inherited by every child)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> str:
    """The 1/5/15-minute load averages, as /proc/loadavg shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine_line(load_before: str, load_after: str) -> str:
    """One line naming the machine and how busy it was (other helpers may be loading it)."""
    busy = max(float(load_before.split()[0]), float(load_after.split()[0]))
    note = " (busy: other work was running, figures are a floor)" if busy > 1.0 else ""
    return (
        f"Machine: nproc {os.cpu_count()}, {cpu_model()}; load average before {load_before}, "
        f"after {load_after}{note}."
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |", "|---" + "|---:" * (len(headers) - 1) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 15.0) -> None:
    """Poll until ``port`` accepts a connection; raise if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""  # type: ignore[union-attr]
            raise RuntimeError(f"{name} exited: {err[-500:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start listening")


@contextlib.contextmanager
def server_process(cmd: list[str], port: int, name: str) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` (which listens on ``port``) for the duration of the block."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc, name)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def nginx(tmp: Path, core: str | None = SERVER_CORE) -> Iterator[str]:
    """nginx (1 worker, 3-byte 200 everywhere, a canned token at the login path) pinned to
    ``core`` (None: not pinned); yields its URL."""
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, token=FAKE_TOKEN))
    cmd = ["nginx", "-c", str(conf), "-p", str(tmp)]
    with server_process(_taskset(core) + cmd, port, "nginx"):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def ground_truth(*args: str, core: str | None = SERVER_CORE) -> Iterator[str]:
    """The ground-truth server (`bench/groundtruth.py`) pinned to ``core``; yields its URL."""
    port = free_port()
    cmd = [sys.executable, str(BENCH / "groundtruth.py"), "--port", str(port), *args]
    with server_process(_taskset(core) + cmd, port, "groundtruth"):
        yield f"http://127.0.0.1:{port}"


def get_json(url: str, timeout: float = 30.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def _taskset(core: str | None) -> list[str]:
    return ["taskset", "-c", core] if core is not None else []


def pin_tree(pid: int, core: str) -> None:
    """Pin every thread of ``pid`` and of its children to ``core``."""
    import psutil

    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        subprocess.run(["taskset", "-a", "-cp", core, str(proc.pid)], capture_output=True)


def pinned(
    *cmd: str,
    timeout: float,
    core: str | None = GENERATOR_CORE,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> str:
    """Run a generator command pinned to ``core``; returns its stdout (raises on an exit code
    outside ``ok``: Locust with our hooks exits 1 when a threshold failed, which is data here)."""
    full = [*_taskset(core), *cmd]
    done = subprocess.run(
        full, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=ROOT
    )
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({done.returncode}): {done.stderr[-800:]}")
    return done.stdout


def cpu_sample(pid: int, window_s: float) -> tuple[list[float], float]:
    """CPU % (100 = one core) of a process and each of its children over ``window_s``, and the
    whole machine's busy % (100 = every core) over the same window."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        p.cpu_percent(None)
    psutil.cpu_percent(None)
    time.sleep(window_s)
    shares = []
    for p in procs:
        try:
            shares.append(p.cpu_percent(None))
        except psutil.NoSuchProcess:
            shares.append(0.0)
    return shares, psutil.cpu_percent(None)


def sampled(
    *cmd: str, seconds: float, core: str | None = GENERATOR_CORE, env: dict[str, str] | None = None
) -> tuple[str, list[float], float]:
    """Run a generator for about ``seconds`` (pinned); sample its CPU over the middle of the run.

    Returns (stdout, CPU % of the process and each child, machine busy %). The process leads its
    own session, which is killed as a whole afterwards (stray forked workers included)."""
    proc = subprocess.Popen(
        [*_taskset(core), *cmd], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(max(2.5, seconds / 4))  # past start-up (imports, spawning)
        shares, machine = cpu_sample(proc.pid, seconds / 2)
        out, _ = proc.communicate(timeout=seconds + 90)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    if proc.returncode not in (0, 1, -signal.SIGKILL):
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({proc.returncode})")
    return out, shares, machine


def wrk(url: str, connections: int, seconds: float, core: str | None = GENERATOR_CORE) -> dict:
    """wrk -t1 --latency: requests/s and its latency percentiles (ms)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout", "30s"]
    out = pinned(*cmd, url, timeout=seconds + 60, core=core)
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
            result[f"p{pct}"] = float(match.group(1)) * scale
    max_match = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    if max_match:
        result["max"] = float(max_match.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[max_match[2]]
    return result


def engine_child(*args: str, timeout: float, core: str | None = GENERATOR_CORE) -> dict:
    """Run `bench/engine_child.py` (the engine in its own process) pinned; its JSON answer."""
    out = pinned(sys.executable, str(BENCH / "engine_child.py"), *args, timeout=timeout, core=core)
    return json.loads(out)


def locust_env(run_dir: Path, **extra: str) -> dict[str, str]:
    """A Locust child's environment: its own run folder, no stray LOCUST_/LOADTEST_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LOADTEST_"))}
    env.update(LOADTEST_RUN_DIR=str(run_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def run_locust(
    locustfile: Path,
    host: str,
    *args: str,
    seconds: float,
    core: str | None = GENERATOR_CORE,
    env: dict[str, str] | None = None,
) -> list[dict]:
    """Locust headless for ``seconds`` (plus its stop time-out); Locust's own --json stats."""
    cmd = [str(VENV_BIN / "locust"), "-f", str(locustfile), "--headless", "--host", host]
    cmd += ["-t", f"{int(seconds)}s", "--json", "--only-summary", "--loglevel", "WARNING", *args]
    out = pinned(*cmd, timeout=seconds + 120, core=core, env=env, ok=(0, 1))
    return locust_stats(out)


def locust_stats(stdout: str) -> list[dict]:
    """The master's (or single process's) --json stats: forked workers print an empty list too."""
    decoder, docs, i = json.JSONDecoder(), [], 0
    while (i := _skip_space(stdout, i)) < len(stdout):
        doc, i = decoder.raw_decode(stdout, i)
        docs.append(doc)
    return max(docs, key=len) if docs else []


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder for configs, locustfiles and run folders."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


def locust_percentile(response_times: dict, count: int, fraction: float) -> float:
    """Locust's own percentile (locust.stats.calculate_response_time_percentile), from its
    rounded buckets: to 1 ms below 100 ms, to 10 ms below 1 s, to 100 ms above."""
    wanted = int(count * fraction)
    seen = 0
    for value, n in sorted(((float(k), n) for k, n in response_times.items()), reverse=True):
        seen += n
        if count - seen <= wanted:
            return value
    return 0.0
