#!/usr/bin/env bash
# Run every test of the project: lint, the project's own tests (all markers), and the pytest load suite
# against the bundled reference backend with the `ci` profile. First use creates .venv. PostgreSQL and
# Redis are started on loopback when their binaries exist; otherwise their tests skip loudly, and under
# REQUIRE_SERVICES=1 (as in .ci/run) that skip is a failure. Extra arguments go to the tests stage's pytest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
# shellcheck source=scripts/ensure_venv.sh
source scripts/ensure_venv.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh

usage() {
  echo "usage: ./run_tests.sh [pytest args for the tests stage]   (env: REQUIRE_SERVICES=1, STAGES='lint tests load', TEST_WORKERS=2)"
}

FAILED=()
TIMINGS=()
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/run_tests.XXXXXX")
LOAD_RUN_DIR=""  # made by the load stage, with loadkit's one run-folder maker

# Run one named stage, time it, keep its output for the closing summary, and remember a failure
# without stopping the others.
stage() {
  local name="$1" start rc=0
  shift
  echo "=== stage: $name" >&2
  start=$(date +%s)
  "$@" 2>&1 | tee "$LOGS/$name.log" || rc=${PIPESTATUS[0]}
  TIMINGS+=("$(printf '%-8s %4ss  exit %s' "$name" "$(($(date +%s) - start))" "$rc")")
  if [[ $rc -eq 5 ]]; then
    echo "stage $name: pytest collected no tests, which counts as a failure" >&2
  fi
  [[ $rc -eq 0 ]] || FAILED+=("$name")
}

lint() {
  "$PY" -m ruff check . && "$PY" -m ruff format --check .
}

# The load stage: the pytest load suite against the bundled backend with the ci profile (sizes and
# limits a shared 2-core machine meets with a wide margin), its reports rendered to report.md.
# Every scenario must pass.
load_suite() {
  local rc=0
  LOADTEST_RUN_DIR="$LOAD_RUN_DIR" "$PY" -m pytest -p no:cacheprovider -rs --profile ci \
    pytest_load_test.py baseline_test.py || rc=$?
  if [[ -d "$LOAD_RUN_DIR" ]]; then
    "$PY" -m loadkit.render "$LOAD_RUN_DIR" >/dev/null || true
  fi
  return "$rc"
}

# The project's own tests (all markers): on the xdist workers, then the `alone` ones by themselves.
# Nothing collected in both runs is exit 5; in one of them (a -k that selects no `alone` test), fine.
project_tests() {
  local -a common=(-p no:cacheprovider -rs --durations=20)
  if [[ ${#PARALLEL[@]} -eq 0 ]]; then
    "$PY" -m pytest -m '' "${common[@]}" tests "$@"
    return
  fi
  local rc=0 alone=0
  "$PY" -m pytest -m 'not alone' "${common[@]}" "${PARALLEL[@]}" tests "$@" || rc=$?
  echo "=== the tests marked alone, in one process"
  "$PY" -m pytest -m alone "${common[@]}" tests "$@" || alone=$?
  if [[ $rc -eq 5 && $alone -eq 5 ]]; then return 5; fi
  if [[ $rc -eq 5 ]]; then rc=0; fi
  if [[ $alone -eq 5 ]]; then alone=0; fi
  if [[ $rc -ne 0 ]]; then return "$rc"; fi
  return "$alone"
}

# Repeat what was skipped (pytest's -rs lines), so a skip is not lost above the timings.
print_skips() {
  local skips
  skips=$(grep -h '^SKIPPED ' "$LOGS"/*.log 2>/dev/null || true)
  [[ -n "$skips" ]] || return 0
  echo "=== skipped ($(grep -c . <<<"$skips") lines; install what they name to run them)" >&2
  echo "$skips" >&2
}

finish() {
  services_stop
  print_skips
  echo "=== stage timings" >&2
  printf '%s\n' "${TIMINGS[@]}" >&2
  if [[ -n "$LOAD_RUN_DIR" && -d "$LOAD_RUN_DIR" ]]; then
    echo "load stage reports: ${LOAD_RUN_DIR#"$ROOT"/}/ (report.md, one JSON per test)" >&2
  fi
  rm -rf "$LOGS"
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac

ensure_venv "$ROOT" || exit 2
export PYTHONDONTWRITEBYTECODE=1
export LOADTEST_UNDER_RUN_TESTS=1  # tests/services.py: a missing service means a missing binary
services_start
trap finish EXIT
trap 'exit 130' INT TERM

# Most of the tests stage waits (servers, runs of a fixed length): two xdist workers, each file whole
# on one worker (module fixtures start once), the longest files first (tests/conftest.py); then the
# tests marked `alone` (a CPU figure or a TCP race that another worker's load upsets) in one process,
# with nothing beside them. TEST_WORKERS=0 runs them all in one process.
TEST_WORKERS=${TEST_WORKERS:-2}
[[ "$TEST_WORKERS" =~ ^[0-9]+$ ]] || { echo "TEST_WORKERS must be a whole number (0: no xdist)" >&2; exit 2; }
PARALLEL=()
[[ "$TEST_WORKERS" == 0 ]] || PARALLEL=(-n "$TEST_WORKERS" --dist loadfile --no-loadscope-reorder)

STAGES=${STAGES:-lint tests load}
for s in $STAGES; do
  case "$s" in
    lint) stage lint lint ;;
    tests) stage tests project_tests "$@" ;;
    load)
      LOAD_RUN_DIR=$("$PY" scripts/runner_helper.py run-dir tests-load) || exit 2
      stage load load_suite
      ;;
    *) echo "unknown stage: $s" >&2; exit 2 ;;
  esac
done

if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "FAILED stages: ${FAILED[*]}" >&2
  exit 1
fi
echo "all stages passed" >&2
