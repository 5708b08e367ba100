"""py-spy attached to the real reference backend: what a login run and a list run profile shows."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadkit.report import render_profile as profile_section
from loadkit.report.server_profile import (
    JSON_NAME,
    SVG_NAME,
    not_profiled,
    read_profile,
    write_profile,
)
from loadkit.watch.server_profile import (
    DEFAULT_ON,
    OFF_REASON,
    RAW_NAME,
    ServerProfiler,
    profile_reason,
    profiler_for,
    under_profiler,
)
from reference_backend.process import free_port
from tests.backends import FAST_ENV, SEED_PASSWORD, seed_email

pytestmark = pytest.mark.slow
LOGIN_ROUNDS = "10"  # ~60 ms a hash here: enough samples in a few logins
TEST_RATE_HZ = 50  # more samples than the default in a short test


def _login(client, number: int = 1) -> str:
    body = {"email": seed_email(number), "password": SEED_PASSWORD}
    response = client.post("/api/v1/login", json=body)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _profiled(run: Path, backend, load) -> dict:
    profiler = ServerProfiler(run, backend.pid, rate=TEST_RATE_HZ)
    assert profiler.start(), profiler.reason
    with backend.client() as client:
        load(client)
    return write_profile(run, profiler.stop())


def test_a_login_run_names_bcrypts_hash(backend_factory, tmp_path):
    """Logins: bcrypt's native hash is a top own function; the section and a finding say so."""
    backend = backend_factory(BCRYPT_ROUNDS=LOGIN_ROUNDS)
    data = _profiled(tmp_path, backend, lambda c: [_login(c) for _ in range(8)])
    assert data["recorded"] and (tmp_path / RAW_NAME).stat().st_size > 0
    assert (tmp_path / SVG_NAME).read_text().startswith("<svg")
    top = [name for name, _, _ in data["top_own"][:3]]
    assert any("bcrypt" in name for name in top), top
    text = "\n".join(profile_section.section(read_profile(tmp_path)))
    assert "Where the server's CPU went" in text and "bcrypt" in text
    assert any("password hashing (bcrypt" in f for f in profile_section.findings(data))


def test_recordings_of_one_run_folder_add_up(backend_factory, tmp_path):
    """A second recording into the same run folder is appended: samples and seconds add up."""
    backend = backend_factory(BCRYPT_ROUNDS=LOGIN_ROUNDS)
    first = _profiled(tmp_path, backend, lambda c: [_login(c) for _ in range(3)])
    second = _profiled(tmp_path, backend, lambda c: [_login(c) for _ in range(3)])
    assert second["recordings"] == 2 and not list(tmp_path.glob("*.part"))
    assert second["samples"] + second["idle_samples"] > first["samples"] + first["idle_samples"]
    assert second["seconds"] > first["seconds"]


def test_a_session_list_run_names_where_the_list_goes(backend_factory, tmp_path):
    """Session lists: the list handler is a group, and its finding names frames beneath it."""
    backend = backend_factory()

    def lists(client):
        headers = {"Authorization": f"Bearer {_login(client)}"}
        deadline = time.monotonic() + 4
        for _ in range(2000):
            if time.monotonic() > deadline:
                break
            assert client.get("/api/sessions/", headers=headers).status_code == 200

    data = _profiled(tmp_path, backend, lists)
    groups = [g for g in data["groups"] if g["group"].startswith("handler list_sessions")]
    assert groups and groups[0]["samples"] >= profile_section.MIN_SAMPLES, data["groups"]
    line = next(f for f in profile_section.findings(data) if "handler list_sessions" in f)
    within = line.split("within it: ")[1]
    assert any(lib in within for lib in ("schemas.py", "crud.py", "sqlalchemy", "pydantic")), line


def test_switched_off_or_remote_gives_a_reason_and_no_profile(tmp_path):
    """--no-server-profile and a remote target each write the reason and no recording."""
    assert profile_reason(enabled=False, remote=False, pid=1) == OFF_REASON
    assert profile_reason(enabled=True, remote=False, pid=1) is None
    remote = profile_reason(enabled=True, remote=True, pid=None, host="https://api.example")
    assert "remote target https://api.example" in remote
    not_profiled(tmp_path, remote)
    text = "\n".join(profile_section.section(read_profile(tmp_path)))
    assert f"No server profile: {remote}." in text
    assert not (tmp_path / RAW_NAME).exists() and not (tmp_path / SVG_NAME).exists()


def test_the_run_profiler_follows_the_switch_and_the_target(tmp_path):
    """profiler_for: off, the default, and a pid-less target each record nothing and say why."""
    off = profiler_for(tmp_path, enabled=False, pid=os.getpid(), unavailable=None)
    assert not off.start() and write_profile(tmp_path, off.stop())["reason"] == OFF_REASON
    default = profiler_for(tmp_path, enabled=None, pid=os.getpid(), unavailable=None)
    assert (default.reason is None) == DEFAULT_ON
    remote = profiler_for(tmp_path, enabled=True, pid=None, unavailable="https://x is remote")
    assert not remote.start()
    assert write_profile(tmp_path, remote.stop())["reason"] == "https://x is remote"
    assert not (tmp_path / RAW_NAME).exists()


def test_a_process_py_spy_cannot_record_gives_its_reason(tmp_path):
    """Attaching to a process that is not Python fails with py-spy's reason, stated, no profile."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        profiler = ServerProfiler(tmp_path, sleeper.pid)
        profiler.start()
        time.sleep(2)  # py-spy looks for Python in the tree for about a second, then exits
        data = write_profile(tmp_path, profiler.stop())
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not data["recorded"] and f"pid {sleeper.pid}" in data["reason"]
    assert (tmp_path / JSON_NAME).exists() and not (tmp_path / SVG_NAME).exists()


def test_a_backend_started_under_py_spy_is_profiled_when_it_stops(tmp_path):
    """The fallback for refused ptrace: the backend runs under py-spy; stop writes the profile."""
    port, env = free_port(), {**os.environ, **FAST_ENV, "BCRYPT_ROUNDS": LOGIN_ROUNDS}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/b.db", UPLOAD_DIR=str(tmp_path / "up"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    server = [sys.executable, "-m", "reference_backend", "--host", "127.0.0.1", "--port", str(port)]
    command = under_profiler(server, tmp_path / RAW_NAME, rate=TEST_RATE_HZ)
    popen = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, start_new_session=True)
    profiler = ServerProfiler.started_under(tmp_path, popen, rate=TEST_RATE_HZ)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            [_login(client) for _ in range(5)]
    finally:
        data = write_profile(tmp_path, profiler.stop())
    assert popen.returncode is not None and data["mode"] == "started under"
    assert any("bcrypt" in name for name, _, _ in data["top_own"][:3]), data["top_own"]


def _wait_healthy(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered /health")
