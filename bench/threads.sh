#!/usr/bin/env bash
# How scheduling moves CPU per request, for the gateway and for nginx: the
# same token on -c32 (issue 18's target 1), each proxy as it runs by default
# and pinned, with what the kernel counts per request for the proxy's
# process: user and system time, time spent runnable but waiting for a core
# (schedstat's run delay) and context switches.
#
#   bench/threads.sh
#
# Environment: GW_BIN (default $CARGO_TARGET_DIR/release/authz-proxy, else
# target/release), RUNS (interleaved rounds, default 2), DURATION (seconds
# per run, default 6), SKIP_BUILD=1, KEEP=1.
#
# Configurations (needs at least 2 cores):
#   nginx / nginx-token   nginx pass-through, one worker: the request without
#                         the token (issue 18's peer), and the gateway's
#                         request (1.3 KB token)
#   gw-t1 / gw-t2         the gateway with one thread, and two (the default
#                         on 2 cores)
#   *-pin                 the proxy on CPU 0, wrk and the backend on CPU 1: the
#                         proxy shares its core with nothing (gw-t2-pin: both
#                         threads on CPU 0)
#   *-pin-c4              pinned, 4 connections instead of 32: the same work,
#                         with the proxy idle (asleep) between requests more
#                         often
# Timings come from /proc (utime/stime in clock ticks, schedstat's run delay
# in ns, voluntary + involuntary context switches), summed over the process's
# threads; the nginx figures are its worker's.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(nproc)" -ge 2 ] || { echo "bench/threads.sh needs 2 cores or more" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi
BIN=${CARGO_TARGET_DIR:-target}/release
# shellcheck source=bench/static-idp.sh
. bench/static-idp.sh
RUNS=${RUNS:-2}
DURATION=${DURATION:-6}
CLK=$(getconf CLK_TCK)

# The nginx pass-through of bench/compare.sh, on PORT.
nginx_pass() { # PORT
  nginx_pass_conf px "$1" "worker_processes 1;"
  rm -f "$WORK/px.pid"
  nginx -c "$WORK/px.conf"
  wait_pidfile "$WORK/px.pid"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
run_delay() { cat /proc/"$1"/task/*/schedstat | awk '{s += $2} END {printf "%.0f\n", s}'; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {printf "%.0f\n", s}'; }
backend_on() { # CPUS: the static backend's processes on these CPUs (taskset mask)
  local p
  for p in $(cat "$WORK/static.pid") $(pgrep -P "$(cat "$WORK/static.pid")"); do taskset -a -p "$1" "$p" >/dev/null; done
}

# run NAME PROXY THREADS CONNS TOKEN PIN: one measurement; PROXY gw or
# nginx; PIN 1 puts the proxy on CPU 0 and wrk and the backend on CPU 1.
run() {
  local name=$1 proxy=$2 threads=$3 conns=$4 token=$5 pin=$6
  local port admin pid master on="" wrk_on="" header=()
  port=$(free_port); admin=$(free_port)
  [ "$token" = 1 ] && header=(-H "Authorization: Bearer $TOKEN")
  if [ "$pin" = 1 ]; then on="taskset 1"; wrk_on="taskset 2"; backend_on 2; else backend_on "$ALL"; fi
  if [ "$proxy" = nginx ]; then
    nginx_pass "$port"; master=$(cat "$WORK/px.pid"); pid=$(pgrep -P "$master" | head -1)
    [ "$pin" = 1 ] && taskset -a -p 1 "$pid" >/dev/null
  else
    # shellcheck disable=SC2046
    $on "$GW_BIN" $(gateway_flags "$port" "$admin") --threads "$threads" >"$WORK/gw.log" 2>&1 &
    pid=$!; master=$pid
  fi
  wait_port "$port"
  $wrk_on wrk -t1 -c"$conns" -d1s "${header[@]}" "http://127.0.0.1:$port/todoitems" >/dev/null
  local c0 u0 q0 s0 c1 u1 q1 s1 out
  c0=$(cpu_ticks "$pid"); u0=$(user_ticks "$pid"); q0=$(run_delay "$pid"); s0=$(switches "$pid")
  out=$($wrk_on wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${header[@]}" "http://127.0.0.1:$port/todoitems")
  c1=$(cpu_ticks "$pid"); u1=$(user_ticks "$pid"); q1=$(run_delay "$pid"); s1=$(switches "$pid")
  kill "$master"; wait "$master" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  echo "$out" | awk -v n="$name" -v d="$DURATION" -v clk="$CLK" -v c=$((c1 - c0)) -v u=$((u1 - u0)) \
      -v q=$((q1 - q0)) -v s=$((s1 - s0)) '
    /requests in/ { r = $1 }
    $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
    /Non-2xx/ { bad = $NF }
    END {
      if (bad) { print "bench/threads.sh: " n ": " bad " non-2xx answers" > "/dev/stderr"; exit 1 }
      printf "%s %.0f %.2f %.2f %.2f %.3f %s %s\n", n, r / d, u / clk * 1e6 / r, (c - u) / clk * 1e6 / r, q / 1e3 / r, s / r, p50, p99 }' >> "$WORK/results"
  tail -1 "$WORK/results" >&2
}

ALL=$(printf '%x' $(((1 << $(nproc)) - 1)))
for round in $(seq 1 "$RUNS"); do
  echo "round $round/$RUNS" >&2
  run nginx           nginx 1 32 0 0
  run nginx-token     nginx 1 32 1 0
  run gw-t1           gw    1 32 1 0
  run gw-t2           gw    2 32 1 0
  run nginx-pin       nginx 1 32 0 1
  run nginx-token-pin nginx 1 32 1 1
  run gw-t1-pin       gw    1 32 1 1
  run gw-t2-pin       gw    2 32 1 1
  run nginx-token-pin-c4 nginx 1 4 1 1
  run gw-t1-pin-c4    gw    1 4 1 1
done
backend_on "$ALL"

echo
echo "bench/threads.sh: wrk -t1 -d${DURATION}s, $RUNS interleaved rounds, $(nproc) cores; per request, means of the rounds: µs of the proxy's user and system time, µs runnable but waiting for a core (run delay), context switches"
awk '{ k = $1; if (!(k in n)) order[++count] = k
       n[k]++; r[k] += $2; u[k] += $3; s[k] += $4; q[k] += $5; cs[k] += $6; p50[k] = p50[k] " " $7; p99[k] = p99[k] " " $8 }
  END {
    printf "%-20s %8s %6s %6s %6s %8s %7s  %-20s %s\n", "", "req/s", "user", "sys", "CPU", "run wait", "ctxsw", "p50", "p99"
    for (i = 1; i <= count; i++) { k = order[i]
      printf "%-20s %8.0f %6.2f %6.2f %6.2f %8.2f %7.3f %-20s %s\n", k, r[k]/n[k], u[k]/n[k], s[k]/n[k], (u[k]+s[k])/n[k], q[k]/n[k], cs[k]/n[k], p50[k], p99[k] }
    for (k in n) cpu[k] = (u[k] + s[k]) / n[k]
    printf "\nCPU/req, gateway / nginx pass-through (the target): gw-t1 %.2f, gw-t2 %.2f; pinned: gw-t1 %.2f, gw-t2 %.2f\n",
      cpu["gw-t1"] / cpu["nginx"], cpu["gw-t2"] / cpu["nginx"], cpu["gw-t1-pin"] / cpu["nginx-pin"], cpu["gw-t2-pin"] / cpu["nginx-pin"]
    printf "CPU/req, gateway / nginx passing the same request (the token too): gw-t1 %.2f, gw-t2 %.2f; pinned: gw-t1 %.2f, gw-t2 %.2f\n",
      cpu["gw-t1"] / cpu["nginx-token"], cpu["gw-t2"] / cpu["nginx-token"], cpu["gw-t1-pin"] / cpu["nginx-token-pin"], cpu["gw-t2-pin"] / cpu["nginx-token-pin"]
  }' "$WORK/results"
