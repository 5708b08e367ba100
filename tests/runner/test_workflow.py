"""The CI example, .github/workflows/load-test.yml: parsed, its structure checked, schema-validated.

It cannot run here (no GitHub runner), so this lint is what keeps it honest. The schema check uses
the GitHub-workflow JSON schema that check-jsonschema vendors (0.39.0 when this was written); it is
skipped, with the reason, when check-jsonschema is not installed.
"""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "load-test.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    """The workflow as data; PyYAML (YAML 1.1) reads the key ``on`` as True: put it back."""
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def job(workflow: dict[str, Any]) -> dict[str, Any]:
    """The one job that runs the suite."""
    (only,) = workflow["jobs"].values()
    return only


def _steps_running(job: dict[str, Any], word: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if word in s.get("run", "")]


def _uploads(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@")
    ]


def test_triggers_and_timeout(workflow: dict[str, Any], job: dict[str, Any]) -> None:
    """It runs on pull requests and by hand, and every job is bounded in time."""
    assert {"pull_request", "workflow_dispatch"} <= set(workflow["on"])
    assert 0 < job["timeout-minutes"] <= 60


def test_postgres_service_backs_the_reference_backend(job: dict[str, Any]) -> None:
    """A healthy-checked postgres service, and DATABASE_URL pointing at its published port."""
    postgres = job["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "--health-cmd" in postgres["options"] and "pg_isready" in postgres["options"]
    port = str(postgres["ports"][0]).split(":")[0]
    url = job["env"]["DATABASE_URL"]
    assert url.startswith("postgresql") and f"127.0.0.1:{port}/" in url
    assert url.rsplit("/", 1)[1] == postgres["env"]["POSTGRES_DB"]
    (start,) = _steps_running(job, "-m reference_backend")
    assert "wait-health" in start["run"]


def test_suite_step_runs_both_files_with_junit(job: dict[str, Any]) -> None:
    """The pytest step runs pytest_load_test.py and baseline_test.py and writes JUnit XML."""
    (step,) = _steps_running(job, "pytest pytest_load_test.py")
    argv = shlex.split(step["run"].replace("\\\n", " "))
    assert "baseline_test.py" in argv and "--junitxml" in argv
    junit = argv[argv.index("--junitxml") + 1]
    assert junit == "$JUNIT_XML" and job["env"]["JUNIT_XML"]
    assert "--host" in argv and "--server-pid" in argv


def test_results_and_junit_are_uploaded_even_on_failure(job: dict[str, Any]) -> None:
    """Two upload steps, both `if: always()`: results/ and the JUnit file the suite wrote."""
    paths = {str(s["with"]["path"]).strip(): s for s in _uploads(job)}
    assert "results/" in paths and job["env"]["JUNIT_XML"] in paths
    assert all(s.get("if") == "always()" for s in paths.values())
    names = [s["with"]["name"] for s in paths.values()]
    assert len(set(names)) == len(names)  # artifact names must be unique in a run


def test_referenced_repository_files_exist(job: dict[str, Any]) -> None:
    """Every repository file or module the steps name exists in this tree."""
    commands = " ".join(s.get("run", "") for s in job["steps"])
    for path in re.findall(r"[\w./-]+\.(?:py|txt)\b", commands):
        assert (ROOT / path).is_file(), path
    for module in re.findall(r"bin/python -m ([a-z_][\w.]*)", commands):
        parts = module.split(".")
        assert (ROOT.joinpath(*parts).with_suffix(".py")).is_file() or (
            ROOT.joinpath(*parts) / "__main__.py"
        ).is_file(), module


def test_workflow_matches_the_github_workflow_schema(workflow: dict[str, Any]) -> None:
    """The workflow validates against check-jsonschema's vendored GitHub-workflow schema."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed")
    try:
        vendored = version("check-jsonschema")
    except PackageNotFoundError:
        pytest.skip("check-jsonschema not installed (pip install check-jsonschema==0.39.0)")
    schema_file = (
        resources.files("check_jsonschema") / "builtin_schemas/vendor/github-workflows.json"
    )
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(workflow)]
    assert not errors, f"check-jsonschema {vendored} schema: {errors}"


def test_schema_check_catches_a_broken_workflow(workflow: dict[str, Any]) -> None:
    """The same schema rejects a job without runs-on, so the check above can fail."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed")
    pytest.importorskip("check_jsonschema", reason="check-jsonschema not installed")
    schema_file = (
        resources.files("check_jsonschema") / "builtin_schemas/vendor/github-workflows.json"
    )
    broken = json.loads(json.dumps(workflow))
    next(iter(broken["jobs"].values())).pop("runs-on")
    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text(encoding="utf-8")))
    assert list(validator.iter_errors(broken))
