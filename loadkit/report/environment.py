"""The report's ``environment`` block: Python, platform, CPUs, commit and
the versions of the packages that shape the figures."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess

from loadkit.report.run_folder import REPO_ROOT

VERSIONED_PACKAGES = (
    "locust",
    "aiohttp",
    "httpx",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "psutil",
    "pytest",
    "pytest-xdist",
)


@functools.cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_info(*, seed: int | None = None) -> dict:
    """Python, platform, CPUs, git commit and package versions (from metadata, never imported)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": _git_commit(),
        "versions": {name: _version(name) for name in VERSIONED_PACKAGES},
        "seed": seed,
    }
