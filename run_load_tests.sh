#!/usr/bin/env bash
# Run a load-test preset against the TherapyBridge API and render a readable report.
#
#   ./run_load_tests.sh quick                         # bundled reference backend, 5 users, 1 minute
#   ./run_load_tests.sh moderate --host https://staging.example.com --yes
#
# Exit codes: 0 all targets met; 1 a target or test failed (or a regression past tolerance with
# --compare); 2 usage or pre-flight error; 130 interrupted (after rendering what was written).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELPER="$ROOT/scripts/runner_helper.py"
# Started with SIGINT ignored (`./run_load_tests.sh quick &` from a script), bash cannot trap it, so
# a Ctrl-C to the process group stopped the bundled backend but not the load: start again, once, as
# the same process in the same group, with SIGINT at default.
if [[ "$(trap -p INT)" == "trap -- '' SIGINT" && -z "${LOADTEST_SIGINT_RESET:-}" ]] &&
    command -v python3 >/dev/null; then
    export LOADTEST_SIGINT_RESET=1
    exec python3 "$HELPER" exec --same-group -- bash "${BASH_SOURCE[0]}" "$@"
fi
unset LOADTEST_SIGINT_RESET
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
# The pytest suite of the `pytest` and `all` presets (LOADTEST_SUITE: space-separated files to run instead).
read -r -a PYTEST_FILES <<<"${LOADTEST_SUITE:-pytest_load_test.py baseline_test.py}"

usage() {
    local tags
    tags="$(python3 "$HELPER" tags 2>/dev/null || echo "see load_test.py")"
    cat <<EOF
Usage: ./run_load_tests.sh PRESET [options]

Presets (Locust headless, load_test.py):
  quick       5 users, spawn 1/s, 1 minute
  moderate   20 users, spawn 2/s, 5 minutes
  heavy      50 users, spawn 5/s, 10 minutes
  stress    100 users, spawn 10/s, 15 minutes
  soak       20 users, spawn 2/s, 2 hours: refreshes tokens, checkpoints the report, drift section
Presets (pytest):
  baseline   baseline_test.py: no-auth latency baseline
  pytest     the whole pytest suite (pytest_load_test.py baseline_test.py; LOADTEST_SUITE) in one run
  all        each pytest scenario in turn, continuing past failures; says which failed
  readiness  \`all\` then the capacity search, in one run folder: readiness.md (verdict, capacity,
             bottlenecks, scaling and monitoring advice); --run-time bounds the capacity search
Presets (the engine's open model):
  capacity   search the arrival rate the target sustains (realistic mix), at most --run-time (5m);
             the bundled backend runs with its rate limits raised (the report says so)

Options:
  --host URL          target (default: start the bundled reference backend on a fresh SQLite file)
  --users N           override the preset's users (Locust presets)
  --spawn-rate R      override the spawn rate, users per second (Locust presets)
  --run-time T        override the duration, e.g. 30s, 5m, 1h (Locust presets; capacity, readiness: the search)
  --checkpoint-interval S  write the report and report.md every S seconds while the load runs
                      (Locust presets; soak: 300, others: off; 0: off)
  --tags T[,T...]     Locust tags selecting scenarios, any of:
                      $tags
  --max-rps N         capacity: the highest rate offered (requests/s)
  --mix M             capacity: realistic (default) or reads
  --server-workers L  capacity, bundled backend: worker counts to search, e.g. 1,2 (needs redis-server)
  --profile NAME      targets.toml profile (default: LOADTEST_PROFILE, else "default")
  --accounts FILE     JSON list of {"email", "password"} to log in with
  --tokens FILE       JSON list of pre-issued {"email", "access_token"} (logins behind SSO)
  --login-rate N/P    login budget once a login is refused (default LOADTEST_LOGIN_RATE, 5/minute)
  --no-token-cache    keep tokens in memory only (default: a 0600 file in the user's cache dir)
  --processes N       Locust worker processes on this machine (pytest presets: xdist workers)
  --metrics-port P    serve live Prometheus metrics on 127.0.0.1:P/metrics (xdist worker N: P+N)
  --compare RUN       compare with an earlier run folder; a regression past tolerance exits 1
  --yes               confirm load on a host outside loopback (needed when stdin is not a terminal)
  --server-profile    py-spy profile of a local server: server_profile.svg, report section (default off)
  --no-server-profile no server profile (the report says so)
  --baseline-report   also render this run into BASELINE_REPORT.md (charts in docs/baseline/)
  -h, --help          this help

Results: results/<UTC timestamp>_<preset>/ (LOADTEST_RESULTS_ROOT overrides results/), with the
JSON reports, Locust HTML and CSV, server log, logs/ (each \`all\` scenario's output), charts/
and report.md. The terminal shows one line per scenario (\`all\`) or one Locust progress line every
5 s, then the verdicts the report states. Exit codes: 0 all targets met; 1 a target or test
failed; 2 usage, bad input (e.g. a malformed --accounts file) or pre-flight error, before any load;
130 interrupted (report.md and run.json are still written; a second Ctrl-C stops the load at once).
EOF
}

# --- output -----------------------------------------------------------------------------------------
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
    BOLD=$'\e[1m' RED=$'\e[31m' GREEN=$'\e[32m' YELLOW=$'\e[33m' RESET=$'\e[0m'
else
    BOLD="" RED="" GREEN="" YELLOW="" RESET=""
fi
stage() { printf '%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
# The terminal's stderr, kept: a signal's line reaches it while a scenario's output goes to its log.
exec {TERMINAL}>&2
warn() { printf '%swarning: %s%s\n' "$YELLOW" "$*" "$RESET" >&2; }
INTERRUPTED=0
fail_quietly() { # fail_quietly CODE: exit after a child already said why (130 once interrupted)
    [[ "$INTERRUPTED" == 0 ]] || exit 130
    exit "$1"
}
fail() { # fail CODE MESSAGE: one line on stderr, then exit (130 once interrupted)
    local code="$1"
    shift
    [[ "$INTERRUPTED" == 0 ]] || code=130
    printf '%s%s%s\n' "$RED" "$*" "$RESET" >&2
    exit "$code"
}
usage_error() { fail 2 "run_load_tests.sh: $* (see --help)"; }

# --- arguments --------------------------------------------------------------------------------------
PRESET="" HOST="" USERS="" SPAWN_RATE="" RUN_TIME="" TAGS="" PROFILE="" ACCOUNTS=""
PROCESSES="" COMPARE="" YES=0 BASELINE_REPORT=0 METRICS_PORT="" SERVER_PROFILE="" TOKENS="" LOGIN_RATE=""
NO_TOKEN_CACHE=0 MAX_RPS="" MIX="" SERVER_WORKERS="" CHECKPOINT=""

need_value() { [[ $# -ge 2 && -n "$2" ]] || usage_error "option $1 needs a value"; }

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --host) need_value "$@"; HOST="$2"; shift 2 ;;
            --users) need_value "$@"; USERS="$2"; shift 2 ;;
            --spawn-rate) need_value "$@"; SPAWN_RATE="$2"; shift 2 ;;
            --run-time) need_value "$@"; RUN_TIME="$2"; shift 2 ;;
            --checkpoint-interval) need_value "$@"; CHECKPOINT="$2"; shift 2 ;;
            --tags) need_value "$@"; TAGS="$2"; shift 2 ;;
            --profile) need_value "$@"; PROFILE="$2"; shift 2 ;;
            --max-rps) need_value "$@"; MAX_RPS="$2"; shift 2 ;;
            --mix) need_value "$@"; MIX="$2"; shift 2 ;;
            --server-workers) need_value "$@"; SERVER_WORKERS="$2"; shift 2 ;;
            --accounts) need_value "$@"; ACCOUNTS="$2"; shift 2 ;;
            --tokens) need_value "$@"; TOKENS="$2"; shift 2 ;;
            --login-rate) need_value "$@"; LOGIN_RATE="$2"; shift 2 ;;
            --no-token-cache) NO_TOKEN_CACHE=1; shift ;;
            --processes) need_value "$@"; PROCESSES="$2"; shift 2 ;;
            --compare) need_value "$@"; COMPARE="$2"; shift 2 ;;
            --metrics-port) need_value "$@"; METRICS_PORT="$2"; shift 2 ;;
            --yes | -y) YES=1; shift ;;
            --server-profile | --no-server-profile) SERVER_PROFILE="$1"; shift ;;
            --baseline-report) BASELINE_REPORT=1; shift ;;
            -*) usage_error "unknown option: $1" ;;
            *)
                [[ -z "$PRESET" ]] || usage_error "more than one preset: $PRESET and $1"
                PRESET="$1"
                shift
                ;;
        esac
    done
    [[ -n "$PRESET" ]] || usage_error "no preset given"
}

set_preset() {
    local users rate time
    case "$PRESET" in
        quick) users=5 rate=1 time=1m ;;
        moderate) users=20 rate=2 time=5m ;;
        heavy) users=50 rate=5 time=10m ;;
        stress) users=100 rate=10 time=15m ;;
        soak) users=20 rate=2 time=2h CHECKPOINT="${CHECKPOINT:-300}" ;;
        baseline | pytest | all) KIND=pytest; return ;;
        readiness) KIND=pytest RUN_TIME="${RUN_TIME:-5m}"; return ;; # `all`, then capacity
        capacity) KIND=capacity RUN_TIME="${RUN_TIME:-5m}"; return ;;
        *) usage_error "unknown preset: $PRESET" ;;
    esac
    KIND=locust
    USERS="${USERS:-$users}" SPAWN_RATE="${SPAWN_RATE:-$rate}" RUN_TIME="${RUN_TIME:-$time}"
}

absolute() { # absolute PATH: the path from the caller's directory, made absolute
    if [[ -d "$1" ]]; then (cd "$1" && pwd); else echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; fi
}

validate_args() {
    [[ -z "$USERS" || "$USERS" =~ ^[1-9][0-9]*$ ]] || usage_error "--users must be a positive integer"
    [[ -z "$SPAWN_RATE" || "$SPAWN_RATE" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] ||
        usage_error "--spawn-rate must be a number"
    [[ -z "$RUN_TIME" || "$RUN_TIME" =~ ^([0-9]+[hms]?)+$ ]] ||
        usage_error "--run-time must look like 30s, 5m, 1h30m"
    [[ -z "$CHECKPOINT" || "$CHECKPOINT" =~ ^[0-9]+$ ]] ||
        usage_error "--checkpoint-interval must be whole seconds (0: off)"
    [[ -z "$PROCESSES" || "$PROCESSES" =~ ^[1-9][0-9]*$ ]] ||
        usage_error "--processes must be a positive integer"
    [[ -z "$METRICS_PORT" || ("$METRICS_PORT" =~ ^[1-9][0-9]{0,4}$ && "$METRICS_PORT" -le 65535) ]] ||
        usage_error "--metrics-port must be a port number (1-65535)"
    [[ -z "$ACCOUNTS" || -r "$ACCOUNTS" ]] || usage_error "--accounts file not readable: $ACCOUNTS"
    [[ -z "$TAGS" ]] || python3 "$HELPER" check-tags "$TAGS" || exit 2
    [[ -z "$ACCOUNTS" ]] || python3 "$HELPER" accounts "$ACCOUNTS" || exit 2 # before any backend
    [[ -z "$TOKENS" || -r "$TOKENS" ]] || usage_error "--tokens file not readable: $TOKENS"
    [[ -z "$LOGIN_RATE" || "$LOGIN_RATE" =~ ^[1-9][0-9]*\ *(/|per)\ *[0-9.]*\ *[a-z]*$ ]] ||
        usage_error "--login-rate must look like 5/minute or 5/10s"
    [[ -z "$COMPARE" || -d "$COMPARE" ]] || usage_error "--compare run folder not found: $COMPARE"
    [[ -z "$HOST" || "$HOST" =~ ^https?://[^/]+ ]] || usage_error "--host must be an http(s):// URL"
    validate_capacity_args
    [[ -z "$ACCOUNTS" ]] || ACCOUNTS="$(absolute "$ACCOUNTS")"
    [[ -z "$TOKENS" ]] || TOKENS="$(absolute "$TOKENS")"
    [[ -z "$COMPARE" ]] || COMPARE="$(absolute "$COMPARE")"
    if [[ "$KIND" == pytest ]]; then
        local opt
        local -a locust_only=(USERS SPAWN_RATE RUN_TIME TAGS)
        [[ "$PRESET" != readiness ]] || locust_only=(USERS SPAWN_RATE TAGS) # --run-time: capacity
        for opt in "${locust_only[@]}"; do
            [[ -z "${!opt}" ]] || warn "--$(tr '[:upper:]_' '[:lower:]-' <<<"$opt") applies to Locust presets only; ignored"
        done
        [[ -z "$CHECKPOINT" ]] || warn "--checkpoint-interval applies to Locust presets only; ignored"
    fi
}

validate_capacity_args() { # the capacity preset's own options; elsewhere they are ignored
    if [[ "$KIND" != capacity && "$PRESET" != readiness ]]; then
        [[ -z "$MAX_RPS$MIX$SERVER_WORKERS" ]] || warn "--max-rps, --mix and --server-workers apply to the capacity preset only; ignored"
        return 0
    fi
    local opt # readiness: validate_args warned of these already, and its pytest part uses some
    [[ "$PRESET" == readiness ]] || for opt in USERS SPAWN_RATE TAGS PROCESSES METRICS_PORT; do
        [[ -z "${!opt}" ]] || warn "--$(tr '[:upper:]_' '[:lower:]-' <<<"$opt") does not apply to the capacity preset; ignored"
    done
    [[ -z "$MAX_RPS" || "$MAX_RPS" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || usage_error "--max-rps must be a number"
    [[ -z "$MIX" || "$MIX" =~ ^(realistic|reads)$ ]] || usage_error "--mix must be realistic or reads"
    [[ -z "$SERVER_WORKERS" || "$SERVER_WORKERS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
        usage_error "--server-workers must list worker counts, e.g. 1,2"
    [[ -z "$SERVER_WORKERS" || -z "$HOST" ]] || usage_error "--server-workers needs the bundled backend (no --host)"
    if [[ -n "$SERVER_WORKERS" && "$SERVER_WORKERS" =~ ,|[2-9]|[1-9][0-9] ]] && ! command -v redis-server >/dev/null; then
        usage_error "--server-workers above 1 needs redis-server for the workers' shared limiter; none is installed"
    fi
    return 0
}

# --- safety: load on a host outside loopback needs consent, before any request ---------------------
confirm_host() {
    [[ -n "$HOST" ]] || return 0
    python3 "$HELPER" loopback "$HOST" && return 0
    [[ "$YES" == 1 ]] && return 0
    if [[ -t 0 ]]; then
        local answer=""
        read -r -p "Send $PRESET load to $HOST, outside this machine? [y/N] " answer || true
        [[ "$answer" =~ ^[Yy]([Ee][Ss])?$ ]] && { YES=1; return 0; }
        fail 2 "run_load_tests.sh: not confirmed; no request was sent to $HOST"
    fi
    fail 2 "run_load_tests.sh: $HOST is outside loopback: pass --yes to send load to it (no request sent)"
}

# --- results folder ---------------------------------------------------------------------------------
make_run_dir() { # loadkit's one run-folder maker (report/run_folder.py), with the system python3
    RUN="$(python3 "$HELPER" run-dir "$PRESET")" || fail_quietly 2
    export LOADTEST_RUN_DIR="$RUN"
}

# A log that may carry a request is created readable by the user alone (umask, not chmod after).
private_file() { (umask 077 && : >>"$1") || true; }

# shield CMD...: run CMD in the foreground in its own process group, out of a Ctrl-C's reach (the
# trap runs once it is done), so a record being written is finished, never cut halfway.
shield() { "$PY" "$HELPER" exec -- "$@" </dev/null; }
info() { shield "$PY" "$HELPER" info "$RUN/run.json" "$@" || warn "could not update $RUN/run.json"; }
lock() { # lock register|release: note other runs against this target (warned, never refused)
    [[ -n "$HOST" && -n "$RUN" ]] || return 0
    shield "$PY" "$HELPER" lock "$1" "$(dirname "$RUN")" "$HOST" "$RUN" --pid "$$" || true
}

# --- virtual environment ----------------------------------------------------------------------------
# shellcheck source=scripts/ensure_venv.sh
source "$ROOT/scripts/ensure_venv.sh"

check_dependencies() {
    ensure_venv "$ROOT" || fail 2 "run_load_tests.sh: could not set up .venv from requirements.txt"
    "$PY" -c 'import locust, pytest, httpx, psutil, matplotlib, loadkit' 2>/dev/null ||
        fail 2 "run_load_tests.sh: dependencies missing in .venv; delete .venv and run again"
    local file
    local -a files=(load_test.py)
    [[ "$KIND" == locust ]] || files=("${PYTEST_FILES[@]}")
    [[ "$PRESET" != baseline ]] || files=(baseline_test.py)
    for file in "${files[@]}"; do
        [[ -f "$file" ]] || fail 2 "run_load_tests.sh: $file is missing from $ROOT"
    done
}

# --- the bundled reference backend ------------------------------------------------------------------
SERVER_PID=""
start_backend() {
    local port
    port="$("$PY" "$HELPER" free-port)"
    HOST="http://127.0.0.1:$port"
    stage "starting the reference backend on $HOST (log $RUN/server.log)"
    # LOADTEST_DATABASE_URL (never DATABASE_URL, which may name a real database) picks PostgreSQL.
    local database="${LOADTEST_DATABASE_URL:-sqlite:///$RUN/therapybridge.db}"
    local -a settings=(DATABASE_URL="$database" UPLOAD_DIR="$RUN/uploads")
    private_file "$RUN/server.log"
    # SIGHUP ignored: a closed terminal ends the run (its reports written), not the target under it
    (trap '' HUP && exec env "${settings[@]}" "$PY" -m reference_backend --host 127.0.0.1 \
        --port "$port") >"$RUN/server.log" 2>&1 </dev/null {TERMINAL}>&- &
    SERVER_PID=$!
    local described="SQLite file $RUN/therapybridge.db (fresh)"
    [[ -z "${LOADTEST_DATABASE_URL:-}" ]] || described="${database%%:*} database from LOADTEST_DATABASE_URL"
    info server="reference backend started by the runner, pid $SERVER_PID" database="$described" \
        target="$HOST" backend_settings="defaults"
    "$PY" "$HELPER" wait-health "$HOST" --pid "$SERVER_PID" --timeout 120 ||
        fail 2 "run_load_tests.sh: the reference backend did not start; see $RUN/server.log"
}

TARGET_DIED=()
stop_backend() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID" i
    SERVER_PID=""
    if ! kill -0 "$pid" 2>/dev/null || [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]]; then
        local code=0
        wait "$pid" 2>/dev/null || code=$?
        TARGET_DIED=(target_died="the reference backend (pid $pid) exited during the run, exit code $code")
        warn "${TARGET_DIED[0]#target_died=}; see $RUN/server.log"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# --- running a child so that Ctrl-C reaches it once and its report gets written --------------------
# SIGTERM and SIGHUP (terminal closed) end a run as Ctrl-C does: the signal goes on to the child
# once, the reports are written, report.md is rendered, run.json says `ended` (exit 130 for all).
CHILD="" RUN="" LOAD_STARTED=0 ENDING=0 LAST_SIGNAL=0 ENDED="" HUNG_UP=0
# shellcheck disable=SC2317  # invoked by trap
on_interrupt() { # on_interrupt SIGNAL; every path returns 0: under set -e a failing trap ends the script
    local signal="${1:-INT}" now="${EPOCHREALTIME//[.,]/}"
    [[ "$signal" != HUP ]] || { HUNG_UP=1 && detach_terminal; }
    # One Ctrl-C can arrive twice (the terminal's and `timeout`'s forwarded copy): within 1 s, once.
    [[ "$INTERRUPTED" == 1 ]] && ((now - LAST_SIGNAL < 1000000)) && return 0
    LAST_SIGNAL="$now"
    [[ -n "$ENDED" ]] || ENDED="SIG$signal"
    if [[ "$ENDING" == 1 ]]; then # the load is over: let report.md and run.json be finished
        INTERRUPTED=1
        printf '\n%s%s: finishing report.md and run.json, then exit 130%s\n' "$YELLOW" "$(ended_word)" "$RESET" >&"$TERMINAL" || true
        return 0
    fi
    if [[ "$INTERRUPTED" == 1 && -n "$CHILD" ]]; then
        printf '\n%ssecond interrupt: stopping the load now; the report is still written%s\n' \
            "$YELLOW" "$RESET" >&"$TERMINAL" || true
        kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null || true # 2nd: stop now
        return 0
    fi
    INTERRUPTED=1
    [[ -n "$CHILD" ]] || return 0
    printf '\n%s%s: stopping the load, waiting for its report%s\n' "$YELLOW" "$(ended_word)" "$RESET" >&"$TERMINAL" || true
    kill "-$signal" -- "-$CHILD" 2>/dev/null || kill "-$signal" "$CHILD" 2>/dev/null || true
}
# shellcheck disable=SC2317  # invoked by trap
ended_word() { # how the run is ending, for the terminal
    case "$ENDED" in
        SIGTERM) echo "terminated (SIGTERM)" ;;
        SIGHUP) echo "terminal closed (SIGHUP)" ;;
        *) echo "interrupted" ;;
    esac
}
# shellcheck disable=SC2317  # invoked by trap
detach_terminal() { # the terminal is gone: our output goes to the run folder's log from now on
    [[ -n "$RUN" && -d "$RUN" ]] || { exec >/dev/null 2>&1 {TERMINAL}>&- {TERMINAL}>&2; return 0; }
    mkdir -p "$RUN/logs" 2>/dev/null || true
    private_file "$RUN/logs/runner.log"
    exec >>"$RUN/logs/runner.log" 2>&1 || exec >/dev/null 2>&1
    exec {TERMINAL}>&- {TERMINAL}>&2 # the signal lines too
}
# A redirection around run_child is undone when it returns: detach again after a hang-up there.
after_child() { [[ "$HUNG_UP" == 0 ]] || detach_terminal; }
# shellcheck disable=SC2317  # invoked by trap
cleanup() { # stop the backend; drop a run folder that a pre-flight failure left with nothing in it
    stop_following
    stop_backend
    [[ "$LOAD_STARTED" == 0 ]] || lock release >/dev/null 2>&1
    if [[ "$LOAD_STARTED" == 0 && -n "$RUN" && -d "$RUN" ]]; then
        rm -f "$RUN/run.json" "$RUN/run.json.tmp"
        rmdir "$RUN" 2>/dev/null || true
    fi
}
trap 'on_interrupt INT' INT
trap 'on_interrupt TERM' TERM
trap 'on_interrupt HUP' HUP
trap cleanup EXIT

run_child() { # run_child CMD...: returns the command's exit code; waits through an interrupt
    "$PY" "$HELPER" exec -- "$@" </dev/null {TERMINAL}>&- &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    while kill -0 "$CHILD" 2>/dev/null; do
        rc=0
        wait "$CHILD" || rc=$?
    done
    CHILD=""
    return "$rc"
}

stop_if_interrupted() {
    [[ "$INTERRUPTED" == 0 ]] && return 0
    fail 130 "run_load_tests.sh: interrupted before any load was sent"
}

# --- the load -----------------------------------------------------------------------------------------
locust_command() {
    CMD=("$VENV/bin/locust" -f "$ROOT/load_test.py" --headless -u "$USERS" -r "$SPAWN_RATE"
        -t "$RUN_TIME" --host "$HOST" --html "$RUN/locust.html" --csv "$RUN/locust"
        --only-summary --progress-every 5) # a quiet terminal: one progress line per 5 s
    if [[ -n "$PROCESSES" ]]; then # a free master port: 5557 may be taken by another Locust
        local port
        port="$("$PY" "$HELPER" free-port)"
        CMD+=(--processes "$PROCESSES" --master-bind-port "$port" --master-port "$port")
    fi
    [[ -z "$PROFILE" ]] || CMD+=(--profile "$PROFILE")
    [[ -z "$ACCOUNTS" ]] || CMD+=(--accounts "$ACCOUNTS")
    [[ -z "$SERVER_PID" ]] || CMD+=(--server-pid "$SERVER_PID")
    [[ -z "$METRICS_PORT" ]] || CMD+=(--metrics-port "$METRICS_PORT")
    [[ -z "$CHECKPOINT" ]] || CMD+=(--checkpoint-interval "$CHECKPOINT")
    [[ "$YES" == 0 ]] || CMD+=(--yes)
    [[ -z "$SERVER_PROFILE" ]] || CMD+=("$SERVER_PROFILE")
    if [[ -n "$TAGS" ]]; then
        local -a tags
        read -r -a tags <<<"${TAGS//,/ }"
        CMD+=(--tags "${tags[@]}")
    fi
}

capacity_command() { # the capacity search: loadkit.capacity, against --host or the bundled backend
    CMD=("$PY" -m loadkit.capacity --run-time "$RUN_TIME")
    if [[ "$CAPACITY_BUNDLED" == 1 ]]; then CMD+=(--bundled); else CMD+=(--host "$HOST"); fi
    [[ -z "$MAX_RPS" ]] || CMD+=(--max-rps "$MAX_RPS")
    [[ -z "$MIX" ]] || CMD+=(--mix "$MIX")
    [[ -z "$SERVER_WORKERS" ]] || CMD+=(--server-workers "$SERVER_WORKERS")
    [[ -z "$PROFILE" ]] || CMD+=(--profile "$PROFILE")
    [[ -z "$ACCOUNTS" ]] || CMD+=(--accounts "$ACCOUNTS")
    [[ -z "$TOKENS" ]] || CMD+=(--tokens "$TOKENS")
    [[ -z "$LOGIN_RATE" ]] || CMD+=(--login-rate "$LOGIN_RATE")
    [[ "$YES" == 0 ]] || CMD+=(--yes)
    return 0
}

run_capacity() {
    stage "capacity: an open-model search of the arrival rate, at most $RUN_TIME"
    capacity_command
    local rc=0
    run_child "${CMD[@]}" || rc=$?
    LOAD_CODE="$(tool_code "$rc")"
}

pytest_command() { # pytest_command JUNIT_NAME TARGETS...
    local junit="$1"
    shift
    CMD=("$PY" -m pytest "$@" -v -m "" --host "$HOST" --junitxml "$RUN/$junit"
        -p no:cacheprovider)
    [[ -z "$SERVER_PID" ]] || CMD+=(--server-pid "$SERVER_PID")
    [[ -z "$PROFILE" ]] || CMD+=(--profile "$PROFILE")
    [[ -z "$ACCOUNTS" ]] || CMD+=(--accounts "$ACCOUNTS")
    [[ -z "$PROCESSES" ]] || CMD+=(-n "$PROCESSES")
    [[ -z "$METRICS_PORT" ]] || CMD+=(--metrics-port "$METRICS_PORT")
    [[ "$YES" == 0 ]] || CMD+=(--yes)
    [[ -z "$SERVER_PROFILE" ]] || CMD+=("$SERVER_PROFILE")
}

# Map a tool's exit code onto ours: 0 met, 1 failed, 2 usage/pre-flight (e.g. no usable account).
tool_code() {
    case "$1" in
        0) echo 0 ;;
        2 | 4 | 5) echo 2 ;;
        *) echo 1 ;;
    esac
}

run_locust() {
    stage "locust: $USERS users, spawn $SPAWN_RATE/s, $RUN_TIME against $HOST"
    locust_command
    local rc=0
    run_child "${CMD[@]}" || rc=$?
    after_child
    LOAD_CODE="$(tool_code "$rc")"
}

run_pytest_once() {
    stage "pytest: $* against $HOST"
    pytest_command junit.xml "$@"
    local rc=0
    mkdir -p "$RUN/logs"
    private_file "$RUN/logs/pytest.log"
    # tee -i: a Ctrl-C must not end the copy (the child would lose its output and its report)
    # and a closed terminal must not end it either (SIGHUP ignored: the child's output still lands)
    run_child "${CMD[@]}" > >(trap '' HUP && exec tee -i "$RUN/logs/pytest.log") 2>&1 || rc=$?
    after_child
    LOAD_CODE="$(tool_code "$rc")"
    # Scenarios without a report (never started, or stopped by a second Ctrl-C) -> run.json.
    [[ "$rc" == 0 ]] || record_not_run "$rc" "$RUN/logs/pytest.log" "$@"
}

record_not_run() { # record_not_run CODE LOG FILES...: each collected scenario with no report -> run.json
    local code="$1" log="$2" node line
    shift 2
    sleep 0.2 # let tee write the last lines
    if ! collect_node_ids "$@" 2>/dev/null; then # the files themselves do not collect
        printf '%s: %s\n' "$1" "$(shield "$PY" "$HELPER" scenario-done "$RUN" "$1::collection" "$code" "$log")"
        return 0
    fi
    for node in "${NODE_IDS[@]}"; do
        line="$(shield "$PY" "$HELPER" scenario-done "$RUN" "$node" "$code" "$log")"
        [[ "$line" != "not run"* ]] || printf '%s: %s\n' "$node" "$line"
    done
}

collect_node_ids() { # collect_node_ids [FILES...]: NODE_IDS (default: the suite's files), 1: none
    local -a files=("$@")
    [[ ${#files[@]} -gt 0 ]] || files=("${PYTEST_FILES[@]}")
    local out
    local -a yes=()
    [[ "$YES" == 0 ]] || yes=(--yes)
    out="$(shield "$PY" -m pytest --collect-only -q -m "" -p no:cacheprovider --host "$HOST" \
        "${yes[@]}" "${files[@]}" 2>&1)" || {
        printf '%s\n' "$out" | tail -n 5 >&2
        printf 'run_load_tests.sh: pytest could not collect %s\n' "${files[*]}" >&2
        return 1
    }
    local -a found
    mapfile -t found < <(grep '::' <<<"$out" || true)
    [[ ${#found[@]} -gt 0 ]] || { echo "run_load_tests.sh: no pytest scenario collected" >&2; return 1; }
    # Node ids are relative to pytest's rootdir: put back each suite file as it was given.
    local node file suite
    NODE_IDS=()
    for node in "${found[@]}"; do
        file="${node%%::*}"
        for suite in "${files[@]}"; do
            [[ "$suite" == "$file" || "$suite" == */"$file" ]] && file="$suite" && break
        done
        NODE_IDS+=("$file::${node#*::}")
    done
}

run_all() {
    collect_node_ids || { [[ "$INTERRUPTED" == 0 ]] || exit 130; exit 2; } # its one line is out
    mkdir -p "$RUN/logs"
    local -a ran=()
    local node rc i=0 worst=0 log
    # Every scenario process knows the whole run, so an address's upload budget goes in order.
    export LOADTEST_PLANNED_TESTS="${NODE_IDS[*]}"
    for node in "${NODE_IDS[@]}"; do
        i=$((i + 1))
        pytest_command "junit-$i.xml" "$node"
        rc=0
        # The scenario processes share the token cache and the run's account rotation (files), so
        # no account logs in twice and each scenario takes accounts the one before did not use.
        # Each one's output goes to logs/; the terminal gets one line per scenario, and before it
        # the lines that say the scenario waits (the login budget: minutes), as they are written.
        log="$RUN/logs/scenario-$i.log"
        private_file "$log"
        follow_waiting "$log" "[$i/${#NODE_IDS[@]}] $node: "
        run_child "${CMD[@]}" >"$log" 2>&1 || rc=$?
        stop_following
        after_child
        printf '[%d/%d] %s: %s\n' "$i" "${#NODE_IDS[@]}" "$node" \
            "$(shield "$PY" "$HELPER" scenario-done "$RUN" "$node" "$rc" "$log")"
        ran+=("$node")
        rc="$(tool_code "$rc")"
        if [[ "$rc" != 0 ]]; then
            [[ "$rc" == 1 || "$worst" == 1 ]] && worst=1 || worst="$rc"
        fi
        [[ "$INTERRUPTED" == 0 ]] || break
    done
    tally_scenarios "${ran[@]}" || worst=1
    LOAD_CODE="$worst"
}

FOLLOWER=""
follow_waiting() { # follow_waiting LOG PREFIX: the scenario's waiting lines to the terminal, live
    "$PY" "$HELPER" follow "$1" --pid "$$" --prefix "$2" </dev/null &
    FOLLOWER=$!
}
stop_following() {
    [[ -n "${FOLLOWER:-}" ]] || return 0
    kill "$FOLLOWER" 2>/dev/null || true
    wait "$FOLLOWER" 2>/dev/null || true
    FOLLOWER=""
}

tally_scenarios() { # tally_scenarios NODES...: the count by run.json's verdicts; 1 when one failed
    local out code=0
    out="$(shield "$PY" "$HELPER" tally "$RUN" "$@")" || code=$?
    if [[ "$code" == 0 ]]; then
        printf '%s%s%s\n' "$GREEN" "$out" "$RESET"
    else
        printf '%s%s%s\n' "$RED" "$out" "$RESET"
    fi
    [[ "$code" != 1 ]]
}

run_load() {
    [[ -z "$PROFILE" ]] || export LOADTEST_PROFILE="$PROFILE"
    [[ -z "$ACCOUNTS" ]] || export LOADTEST_ACCOUNTS="$ACCOUNTS"
    [[ -z "$TOKENS" ]] || export LOADTEST_TOKENS="$TOKENS"
    [[ -z "$LOGIN_RATE" ]] || export LOADTEST_LOGIN_RATE="$LOGIN_RATE"
    [[ "$NO_TOKEN_CACHE" == 0 ]] || export LOADTEST_NO_TOKEN_CACHE=1
    case "$PRESET" in
        quick | moderate | heavy | stress | soak) run_locust ;;
        baseline) run_pytest_once baseline_test.py ;;
        pytest) run_pytest_once "${PYTEST_FILES[@]}" ;;
        all) run_all ;;
        readiness) run_readiness ;;
        capacity) run_capacity ;;
    esac
}

# --- readiness: every scenario, then the capacity search, in one run folder --------------------------
run_readiness() {
    stage "readiness 1/2: every scenario, the baseline and the probes"
    run_all
    local scenarios_code="$LOAD_CODE"
    [[ "$INTERRUPTED" == 0 ]] || return 0
    stage "readiness 2/2: the capacity search${RUN_TIME:+ (--run-time $RUN_TIME)}"
    LOAD_CODE=0
    run_readiness_capacity
    # the worse of the two: 1 (a target missed) over 2 (usage or pre-flight) over 0
    if [[ "$scenarios_code" == 1 || "$LOAD_CODE" == 1 ]]; then
        LOAD_CODE=1
    elif [[ "$scenarios_code" != 0 ]]; then
        LOAD_CODE="$scenarios_code"
    fi
}

run_readiness_capacity() { # the capacity preset's search into this run folder
    if [[ -n "$SERVER_PID" ]]; then # the bundled backend: the search starts its own, limits raised
        stop_backend
        CAPACITY_BUNDLED=1
        info capacity_server="reference backend started by the capacity search, rate limits raised"
    fi
    stage "capacity: an open-model search of the arrival rate, at most $RUN_TIME"
    capacity_command
    local rc=0
    mkdir -p "$RUN/logs"
    run_child "${CMD[@]}" > >(tee -i "$RUN/logs/capacity.log") 2>&1 || rc=$?
    LOAD_CODE="$(tool_code "$rc")"
    sleep 0.2 # let tee write the last lines
    # no capacity.json (a pre-flight refusal, a crash): run.json says so, with its exit line
    printf 'capacity: %s\n' "$(shield "$PY" "$HELPER" scenario-done "$RUN" capacity "$rc" "$RUN/logs/capacity.log")"
}

render_readiness() { # readiness.md; "not ready" makes the exit 1; --baseline-report copies it
    stage "rendering the readiness report"
    local rc=0
    shield "$PY" -m loadkit.report.render_readiness "$RUN" || rc=$?
    [[ "$rc" == 0 ]] || RENDER_CODE="$rc"
    if [[ "$BASELINE_REPORT" == 1 && "$INTERRUPTED" == 0 && "$rc" != 2 ]]; then
        stage "writing BASELINE_REPORT.md from readiness.md (charts in docs/baseline/)"
        (cd "$ROOT" && "$PY" -m loadkit.report.render_readiness "${RUN#"$ROOT"/}" \
            --output BASELINE_REPORT.md --charts-dir docs/baseline >/dev/null) || [[ $? == 1 ]] ||
            RENDER_CODE=2
    fi
}

# --- the report ---------------------------------------------------------------------------------------
render_report() {
    stage "rendering the report"
    local -a args=("$RUN")
    [[ -z "$COMPARE" ]] || args+=(--compare "$COMPARE")
    [[ -z "$PROFILE" ]] || args+=(--profile "$PROFILE")
    local rc=0
    shield "$PY" -m loadkit.render "${args[@]}" >"$RUN/.render.out" || rc=$?
    RENDER_CODE="$rc"
    grep -v '^report: ' "$RUN/.render.out" || true # the verdicts as report.md states them
    rm -f "$RUN/.render.out"
    if [[ -n "$COMPARE" && -f "$RUN/report.md" ]]; then
        shield "$PY" "$HELPER" section "$RUN/report.md" "Comparison with"
    fi
    if [[ "$BASELINE_REPORT" == 1 && "$PRESET" != readiness && "$INTERRUPTED" == 0 && "$LOAD_CODE" == 0 ]]; then
        stage "writing BASELINE_REPORT.md (charts in docs/baseline/)"
        (cd "$ROOT" && "$PY" -m loadkit.render "${RUN#"$ROOT"/}" --output BASELINE_REPORT.md \
            --charts-dir docs/baseline >/dev/null) || RENDER_CODE=1
    fi
}

final_code() {
    if [[ "$INTERRUPTED" == 1 ]]; then echo 130; return; fi
    if [[ "$LOAD_CODE" != 0 ]]; then echo "$LOAD_CODE"; return; fi
    case "$RENDER_CODE" in 0) echo 0 ;; *) echo 1 ;; esac
}

main() {
    parse_args "$@"
    set_preset
    validate_args
    confirm_host
    make_run_dir
    cd "$ROOT"
    check_dependencies
    info preset="$PRESET" started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" command="$0 $*"
    stop_if_interrupted
    CAPACITY_BUNDLED=0
    if [[ -z "$HOST" && "$KIND" == capacity ]]; then # the search starts it, per worker count
        CAPACITY_BUNDLED=1
        info server="reference backend started by the capacity search, rate limits raised" \
            database="SQLite file per worker count in $RUN (fresh)" target="bundled reference backend"
    elif [[ -z "$HOST" ]]; then
        start_backend
    else
        info target="$HOST" server="external target" database="not known to the runner (external target)"
        stage "pre-flight: GET $HOST/health"
        "$PY" "$HELPER" health "$HOST" --timeout 5 || { stop_if_interrupted; exit 2; }
    fi
    stop_if_interrupted
    # named once the pre-flight passed: a refused one removes the folder it would have named
    stage "run folder: $RUN"
    LOAD_CODE=0 RENDER_CODE=0 LOAD_STARTED=1
    lock register
    run_load
    ENDING=1 # from here on a Ctrl-C only makes the exit 130: report.md and run.json get written
    stop_backend
    lock release
    info load_exit_code="$LOAD_CODE" interrupted="$INTERRUPTED" ended="${ENDED:-completed}" \
        "${TARGET_DIED[@]}"
    shield "$PY" "$HELPER" verdicts "$RUN" || warn "could not write the verdicts into run.json"
    render_report
    [[ "$PRESET" != readiness ]] || render_readiness
    local code
    code="$(final_code)"
    info exit_code="$code"
    [[ "$RENDER_CODE" == 0 || "$RENDER_CODE" == 1 ]] || warn "the report could not be rendered"
    local name=report.md
    [[ "$PRESET" != readiness ]] || name=readiness.md
    if [[ -f "$RUN/$name" ]]; then
        if [[ "$code" == 0 ]]; then
            printf '%sreport: %s/%s%s\n' "$GREEN" "$RUN" "$name" "$RESET"
        else
            printf '%sreport: %s/%s (exit %s)%s\n' "$RED" "$RUN" "$name" "$code" "$RESET"
        fi
    fi
    exit "$code"
}

main "$@"
