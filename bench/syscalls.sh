#!/usr/bin/env bash
# System calls per request, counted by `strace -c`: the gateway (same token,
# GET /todoitems) and nginx pass-through (one worker, upstream keepalive),
# each under `wrk -t1 -c32 -d4s` against the static nginx backend of
# bench/compare.sh. strace slows both down; the counts per request are what
# this measures, not the speed. Each syscall on loopback is a kernel entry,
# and a read that hears EAGAIN is one that did nothing.
#
#   bench/syscalls.sh
#
# Environment: GW_BIN (default $CARGO_TARGET_DIR/release/authz-proxy, else
# target/release), GW_ARGS_EXTRA, SKIP_BUILD=1, KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${CARGO_TARGET_DIR:-target}/release
need() { command -v "$1" >/dev/null 2>&1; }
if ! need strace || ! need wrk || ! need nginx; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace wrk nginx-light >/dev/null
fi
# shellcheck source=bench/static-idp.sh
. bench/static-idp.sh

# count NAME PID PORT: wrk against PORT while strace counts PID's threads.
count() {
  local name=$1 pid=$2 port=$3 tracer requests
  strace -c -f -p "$pid" -o "$WORK/$name.strace" 2>/dev/null &
  tracer=$!
  # strace prints "attached" only to its terminal: give it a moment.
  sleep 1
  wrk -t1 -c32 -d4s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/todoitems" >"$WORK/$name.wrk"
  kill -INT "$tracer" 2>/dev/null || true
  wait "$tracer" 2>/dev/null || true
  requests=$(awk '/requests in/ {print $1}' "$WORK/$name.wrk")
  echo "$name: $requests requests"
  awk -v n="$requests" '
    $NF == "total" { printf "  %-14s %6.2f per request\n", "all", $4 / n; next }
    $4 ~ /^[0-9]+$/ && $NF ~ /^[a-z_0-9]+$/ && $4 / n >= 0.01 { printf "  %-14s %6.2f per request\n", $NF, $4 / n }
  ' "$WORK/$name.strace"
}

echo "bench/syscalls.sh: wrk -t1 -c32 -d4s, same token, authz-proxy $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- proxy || echo +dirty)"
port=$(free_port); admin=$(free_port)
"$GW_BIN" $(gateway_flags "$port" "$admin") >"$WORK/gateway.log" 2>&1 &
gateway=$!
PIDS+=($gateway)
wait_port "$port"
count gateway "$gateway" "$port"

pass=$(free_port)
nginx_pass_conf pass "$pass" "worker_processes 1; daemon off;"
nginx -c "$WORK/pass.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$pass"
wait_pidfile "$WORK/pass.pid"
count nginx "$(pgrep -P "$(cat "$WORK/pass.pid")" | head -1)" "$pass"
