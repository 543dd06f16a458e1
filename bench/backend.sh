#!/usr/bin/env bash
# Load benchmark of todo-backend alone (no gateway): GET /todoitems and
# POST /todoitems with wrk, printing requests/s and p99 latency.
# A benchmark, not a test: numbers depend on the machine (wrk shares it).
#
#   bench/backend.sh                 # 10 s per endpoint, 32 connections, 2 threads
#   DURATION=30s CONNECTIONS=64 THREADS=4 SEED=100 bench/backend.sh
#
# The backend runs from a release build on a free loopback port with a
# database in a temporary directory (SQLite, WAL, synchronous=FULL, so
# every POST is on disk before its 201). RUST_LOG defaults to the
# binary's default, info (one access-log line per request, to a file).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
SEED=${SEED:-20} # items the GET user has, so each GET lists SEED items

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "installing wrk" >&2
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq wrk >/dev/null
fi
command -v curl >/dev/null 2>&1 || { echo "curl is needed to seed items" >&2; exit 1; }

cargo build --release -q -p todo-backend

work=$(mktemp -d)
backend_pid=""
cleanup() {
    if [ -n "$backend_pid" ] && kill -0 "$backend_pid" 2>/dev/null; then
        kill -TERM "$backend_pid"
        wait "$backend_pid" || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the OS picks a free port; the backend logs which one.
RUST_LOG=${RUST_LOG:-info} ./target/release/todo-backend \
    --listen 127.0.0.1:0 --db "$work/todo.db" >"$work/backend.log" 2>&1 &
backend_pid=$!
address=""
for _ in $(seq 100); do
    address=$(grep -so 'address=127\.0\.0\.1:[0-9]*' "$work/backend.log" | head -n1 | cut -d= -f2 || true)
    [ -n "$address" ] && break
    kill -0 "$backend_pid" 2>/dev/null || { cat "$work/backend.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$address" ] || { echo "backend did not start" >&2; cat "$work/backend.log" >&2; exit 1; }
base="http://$address"

for n in $(seq "$SEED"); do
    curl -sf -o /dev/null -X POST "$base/todoitems" \
        -H 'X-User-Id: bench-user' -H 'X-User-Tenant: bench-tenant' \
        -H 'Content-Type: application/json' \
        -d "{\"item\":{\"name\":\"Seeded item $n\"}}"
done

echo "todo-backend at $base: $THREADS threads, $CONNECTIONS connections, $DURATION per endpoint, GET lists $SEED items"
for mode in get post; do
    BENCH_MODE=$mode BENCH_USER=bench-user wrk --latency -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
        -s bench/backend.lua "$base/todoitems" >"$work/wrk-$mode.txt"
    grep '^RESULT' "$work/wrk-$mode.txt"
done
