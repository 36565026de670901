#!/usr/bin/env bash
# Run a command with PostgreSQL and Redis reachable, exporting DATABASE_URL and REDIS_URL for it.
#
# Uses DATABASE_URL / REDIS_URL when given; else the local servers on 127.0.0.1:5432 / :6379; else, when the
# server binaries are installed, a throwaway server in a temporary directory, stopped when the command ends.
# Otherwise it says exactly what is missing and exits 2.
set -euo pipefail

PYTHON=${PYTHON:-python3}
tmp=""
cleanup() {
  local status=$?
  if [ -n "${PG_TMP:-}" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast stop >/dev/null 2>&1 || true
  fi
  if [ -n "${REDIS_TMP_PORT:-}" ]; then
    "$REDIS_SERVER" --version >/dev/null 2>&1 && redis_cli_shutdown || true
  fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT

port_open() {  # host port
  "$PYTHON" - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

redis_cli_shutdown() {
  "$PYTHON" - "$REDIS_TMP_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"SHUTDOWN NOSAVE\r\n")
PY
}

ensure_tmp() { [ -n "$tmp" ] || tmp=$(mktemp -d); chmod 755 "$tmp"; }

if [ -z "${DATABASE_URL:-}" ]; then
  if port_open 127.0.0.1 5432; then
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/controlplane
  else
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
      echo "PostgreSQL: nothing answers on 127.0.0.1:5432 and no PostgreSQL server binaries (initdb) are" >&2
      echo "installed. Start PostgreSQL, set DATABASE_URL, or install it (apt-get install postgresql)." >&2
      exit 2
    fi
    ensure_tmp
    PG_TMP=$tmp/pg
    mkdir -p "$PG_TMP" && chown -R postgres "$PG_TMP" 2>/dev/null || true
    as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
      -o "-p 55432 -k $PG_TMP -c listen_addresses=127.0.0.1" start >/dev/null
    export DATABASE_URL=postgres://postgres@127.0.0.1:55432/controlplane
    echo "PostgreSQL: started a throwaway server on 127.0.0.1:55432" >&2
  fi
fi

if [ -z "${REDIS_URL:-}" ]; then
  if port_open 127.0.0.1 6379; then
    export REDIS_URL=redis://127.0.0.1:6379/15
  else
    REDIS_SERVER=$(command -v redis-server || true)
    if [ -z "$REDIS_SERVER" ]; then
      echo "Redis: nothing answers on 127.0.0.1:6379 and redis-server is not installed." >&2
      echo "Start Redis, set REDIS_URL, or install it (apt-get install redis-server)." >&2
      exit 2
    fi
    ensure_tmp
    REDIS_TMP_PORT=56379
    "$REDIS_SERVER" --daemonize yes --bind 127.0.0.1 --port "$REDIS_TMP_PORT" --save "" --appendonly no \
      --dir "$tmp" --logfile "$tmp/redis.log"
    for _ in $(seq 50); do port_open 127.0.0.1 "$REDIS_TMP_PORT" && break; sleep 0.1; done
    export REDIS_URL=redis://127.0.0.1:$REDIS_TMP_PORT/15
    echo "Redis: started a throwaway server on 127.0.0.1:$REDIS_TMP_PORT" >&2
  fi
fi

"$@"
