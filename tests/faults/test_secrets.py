"""Secrets stay the user's: the credential files are private and no run writes a credential.

One short run of every tool, at once: the runner's quick preset (Locust headless, 5 s, every
persona) and the pytest load suite (a load scenario and the access-control probe, which sends
tokens right and wrong), each on the reference backend it starts. Then every file under the
results root (reports, run.json, report.md, charts, Locust's CSV and HTML, server logs, the run
lock; not the SQLite database, which holds password hashes by design) and the tools' own output
are searched for the seed password, the probe's wrong password, every access and refresh token in
the run's token cache, anything shaped like a JWT, ``Bearer `` and an ``Authorization`` header.
The token cache, its lock files and the server logs, which could carry requests, are created 0600
(the cache folder 0700).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from loadkit.contract.api import DEFAULT_SEED_PASSWORD
from tests.faults.conftest import Background, runner_command, suite_command

pytestmark = [pytest.mark.faults, pytest.mark.slow]

WRONG_PASSWORD = "Probe@Wrong-Passw0rd"  # loadkit/probes/probe_requests.wrong_login's
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
HEADER = re.compile(rb"authorization['\"]?\s*[:=]|bearer\s", re.IGNORECASE)


def _tokens(cache: Path) -> list[str]:
    """Every access and refresh token the run's token cache holds."""
    entries = json.loads(cache.read_text(encoding="utf-8"))["tokens"].values()
    found = [e["access_token"] for e in entries] + [e.get("refresh_token") for e in entries]
    return [t for t in found if t]


def _leaks(blob: bytes, needles: list[str]) -> list[str]:
    """What of the credentials (by kind, never the value) the bytes hold."""
    kinds = [f"credential #{i}" for i, n in enumerate(needles) if n.encode() in blob]
    kinds += ["a JWT"] if JWT.search(blob) else []
    kinds += [f"header text {m.group(0)!r}" for m in [HEADER.search(blob)] if m]
    return kinds


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run_both(tmp_path: Path, cache: Path) -> list:
    """The runner's quick preset and a pytest run, at once, each on the reference backend it
    starts itself (so each writes that backend's log into its run folder)."""
    env = {"LOADTEST_TOKEN_CACHE": str(cache)}
    locust = Background(
        runner_command("quick", "--run-time", "5s", "--users", "4", "--spawn-rate", "4",
                       "--profile", "faults"),
        tmp_path, **env,
    )  # fmt: skip
    suite = Background(
        suite_command("pytest_load_test.py", "-k", "concurrent_sessions or access_control_probe",
                      "--profile", "faults"),
        tmp_path, **env,
    )  # fmt: skip
    try:
        return [locust.wait(120), suite.wait(120)]
    finally:
        locust.kill()
        suite.kill()


def test_no_credential_in_any_file_of_any_tool_and_the_credential_files_are_private(
    tmp_path: Path,
) -> None:
    """Every file the two runs wrote and all they printed hold no password, no token of the run,
    no JWT, no Bearer or Authorization header; the token cache and its locks are 0600 in a 0700
    folder, and the backends' logs (which could carry requests) are 0600."""
    cache = tmp_path / "cache" / "tokens.json"
    done = _run_both(tmp_path, cache)
    assert all(d.returncode in (0, 1) for d in done), [d.output[-2000:] for d in done]
    needles = [DEFAULT_SEED_PASSWORD, WRONG_PASSWORD, *_tokens(cache)]
    assert len(needles) > 3, "the run issued no token"
    in_cache = _leaks(cache.read_bytes(), needles)  # the search does find tokens where they are
    assert "a JWT" in in_cache
    assert all(f"credential #{i}" in in_cache for i in range(2, len(needles)))
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    kinds = {".json", ".md", ".csv", ".html", ".log", ".png", ".db"}
    assert kinds <= {p.suffix for p in files}, sorted({p.suffix for p in files})
    leaks = {str(p): _leaks(p.read_bytes(), needles) for p in files if p.suffix != ".db"}
    for i, tool in enumerate(done):
        leaks[f"output of tool {i}"] = _leaks(tool.output.encode(), needles)
    assert not {k: v for k, v in leaks.items() if v}
    _check_private(cache, files)


def _check_private(cache: Path, files: list[Path]) -> None:
    """The cache folder 0700; the cache, its locks and the server logs 0600."""
    assert _mode(cache.parent) == 0o700 and _mode(cache) == 0o600
    locks = list(cache.parent.glob("*.lock"))
    assert locks and all(_mode(p) == 0o600 for p in locks), [(p, oct(_mode(p))) for p in locks]
    logs = [p for p in files if p.name in ("server.log", "backend.log")]
    assert len(logs) == 2, logs
    assert all(_mode(p) == 0o600 for p in logs), [(p.name, oct(_mode(p))) for p in logs]
