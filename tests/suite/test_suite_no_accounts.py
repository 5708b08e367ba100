"""Tests that need no account never ask for one: the baseline runs with unusable accounts."""

import json
from pathlib import Path


def test_the_baseline_never_logs_in(backend_factory, run_suite, tmp_path: Path):
    """baseline_test.py with an accounts file whose every password is wrong still passes: no
    pre-flight login, no token, no account is touched."""
    backend = backend_factory()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"email": "nobody@example.com", "password": "Wrong@Password1"}]))
    run = run_suite("baseline_test.py", "--host", backend.url, "--accounts", str(bad))
    assert run.returncode == 0, run.output[-3000:]
    assert "3 passed" in run.output and "login failed" not in run.output, run.output[-3000:]
    assert not (tmp_path / "token-cache" / "tokens.json").exists()
