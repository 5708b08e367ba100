# shellcheck shell=bash
# Sourced by run_tests.sh: start throw-away PostgreSQL and Redis servers on loopback for the tests.
# Each found server exports its URL (TEST_POSTGRES_URL, TEST_REDIS_URL); a missing one is announced and
# left unset, so its tests skip loudly (or fail under REQUIRE_SERVICES=1). services_stop undoes it all.

SERVICES_DIR=""

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_bindir() {
  local d
  for d in "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/*/bin; do
    [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
  done
  return 1
}

# Run a PostgreSQL tool as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bindir port data
  bindir=$(pg_bindir) || { echo "services: PostgreSQL not found (initdb/pg_ctl): its tests will skip" >&2; return 0; }
  port=$(free_port)
  data="$SERVICES_DIR/pg"
  mkdir -p "$data"
  [[ $(id -u) -eq 0 ]] && chown -R postgres "$SERVICES_DIR"
  as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$SERVICES_DIR/pg-init.log" 2>&1 \
    || { echo "services: initdb failed (see $SERVICES_DIR/pg-init.log): PostgreSQL tests will skip" >&2; return 0; }
  as_pg "$bindir/pg_ctl" -D "$data" -l "$SERVICES_DIR/pg.log" -w -t 30 \
    -o "-p $port -k $SERVICES_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
    || { echo "services: PostgreSQL did not start (see $SERVICES_DIR/pg.log)" >&2; return 0; }
  PG_BINDIR="$bindir"
  export TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "services: PostgreSQL on 127.0.0.1:$port" >&2
}

start_redis() {
  local port
  command -v redis-server >/dev/null || { echo "services: redis-server not found: its tests will skip" >&2; return 0; }
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$SERVICES_DIR/redis.pid" --logfile "$SERVICES_DIR/redis.log" --dir "$SERVICES_DIR" >/dev/null \
    || { echo "services: redis-server did not start" >&2; return 0; }
  local i
  for i in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "services: Redis on 127.0.0.1:$port" >&2
}

services_start() {
  SERVICES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tb-services.XXXXXX")
  chmod 755 "$SERVICES_DIR"
  start_postgres
  start_redis
}

services_stop() {
  [[ -n "$SERVICES_DIR" && -d "$SERVICES_DIR" ]] || return 0
  if [[ -n "${PG_BINDIR:-}" ]]; then
    as_pg "$PG_BINDIR/pg_ctl" -D "$SERVICES_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [[ -f "$SERVICES_DIR/redis.pid" ]]; then
    kill "$(cat "$SERVICES_DIR/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$SERVICES_DIR"
  SERVICES_DIR=""
}
