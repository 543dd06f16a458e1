#!/usr/bin/env bash
# Issue 18's memory target alone: the gateway's peak RSS (VmHWM) under
# `wrk -t1 -c1000`, same token, against the static nginx backend of
# bench/compare.sh, and how many upstream connections it held at the peak.
#
#   bench/memory.sh                  # one plain run: peak RSS, connections
#   HEAPTRACK=1 bench/memory.sh      # and a second run under heaptrack:
#                                    # peak heap and its largest allocators
#
# Environment: GW_BIN (default $CARGO_TARGET_DIR/release/authz-proxy, else
# target/release), GW_ARGS_EXTRA (more gateway flags), CONNS (1000),
# DURATION (4s), RUNS (plain runs, each with a fresh gateway; default 3),
# TOKENS_BIN (the token minter, default the dev-idp example bench_tokens),
# SKIP_BUILD=1, KEEP=1 (keep the work directory: logs, heaptrack file).
# Memory figures hardly depend on the machine's load; timings do, so this
# script prints none. A benchmark, not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-1000}
DURATION=${DURATION:-4s}
RUNS=${RUNS:-3}
BIN=${CARGO_TARGET_DIR:-target}/release

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || { [ "${HEAPTRACK:-}" = 1 ] && ! need heaptrack; }; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light heaptrack >/dev/null
fi
# shellcheck source=bench/static-idp.sh
. bench/static-idp.sh
cat > "$WORK/same.lua" <<EOF
wrk.headers["Authorization"] = "Bearer $TOKEN"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d\n", summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout))
end
EOF

# Upstream connections the gateway holds to the backend (all of the
# backend's connections are the gateway's), sampled every 20 ms.
upstream_conns() { ss -Htn state established "( dport = :$STATIC )" | wc -l; }

# run NAME [PREFIX...]: one gateway (under PREFIX, e.g. heaptrack), one wrk
# run; prints "NAME <VmHWM KiB> <max upstream conns> <opened> <requests> <non-2xx> <errors>".
run() {
  local name=$1; shift
  local port admin pid
  port=$(free_port); admin=$(free_port)
  "$@" "$GW_BIN" $(gateway_flags "$port" "$admin") >"$WORK/$name.log" 2>&1 &
  pid=$!
  PIDS+=($pid)
  wait_port "$port"
  # heaptrack runs the gateway as its child.
  local gw=$pid
  for _ in $(seq 1 50); do
    gw=$(pgrep -f -n "^$GW_BIN --listen 127.0.0.1:$port " || true)
    [ -n "$gw" ] && break
    sleep 0.05
  done
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$port/todoitems)
  [ "$code" = 200 ] || { echo "gateway answered $code" >&2; tail -n 20 "$WORK/$name.log" >&2; exit 1; }
  wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 5s -s "$WORK/same.lua" http://127.0.0.1:$port/todoitems \
    > "$WORK/$name.wrk" &
  local wrk_pid=$! max=0 n
  while kill -0 $wrk_pid 2>/dev/null; do
    n=$(upstream_conns); [ "$n" -gt "$max" ] && max=$n
    sleep 0.02
  done
  wait $wrk_pid
  local hwm opened
  hwm=$(awk '/^VmHWM/ {print $2}' /proc/"$gw"/status)
  opened=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^authz_proxy_upstream_connections/ {s += $2} END {print s + 0}')
  read -r _ reqs status errors < <(grep '^RESULT' "$WORK/$name.wrk")
  echo "$name $hwm $max $opened $reqs $status $errors"
  # The gateway itself (heaptrack writes its file once its child has exited).
  kill "$gw" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "bench/memory.sh: wrk -t1 -c$CONNS -d$DURATION, same token, $(nproc) cores, authz-proxy $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- proxy || echo +dirty) ${GW_ARGS_EXTRA:-}"
printf '%-10s %10s %14s %14s %10s %8s %7s\n' run "VmHWM MiB" "upstream max" "opened" requests non-2xx errors
for i in $(seq 1 "$RUNS"); do
  run "plain-$i" | awk '{printf "%-10s %10.1f %14d %14d %10d %8d %7d\n", $1, $2/1024, $3, $4, $5, $6, $7}'
done
if [ "${HEAPTRACK:-}" = 1 ]; then
  run heaptrack heaptrack -o "$WORK/gw" | awk '{printf "%-10s %10s %14d %14d %10d %8d %7d  (RSS under heaptrack: not comparable)\n", $1, "-", $3, $4, $5, $6, $7}'
  FILE=$(ls "$WORK"/gw*.zst "$WORK"/gw*.gz 2>/dev/null | head -1 || true)
  heaptrack_print -f "$FILE" --print-peaks 0 --print-allocators 0 --print-leaks 0 --print-temporary 0 \
    --flamegraph-cost-type peak -F "$WORK/peak-stacks.txt" > "$WORK/heaptrack.txt" 2>/dev/null || true
  echo
  grep -E '^(peak heap memory consumption|peak RSS)' "$WORK/heaptrack.txt" || true
  # The heap at its peak, by what holds it (stacks as heaptrack's flamegraph
  # export writes them: frames root first, "function (file)").
  python3 - "$WORK/peak-stacks.txt" "$CONNS" <<'PY'
import collections, sys
def frames(stack):
    return [f.split(" (")[0] + ("@" + f.split(" (")[1][:-1] if " (" in f else "") for f in stack.split(";")]
cats = collections.OrderedDict([
    ("client: connection state, the request in flight inline (server.rs, boxed)", lambda s: "pin<>@boxed.rs;{async_fn#0}@server.rs" in s),
    ("client: read buffers (server/h1.rs: 2 KiB first, none while idle)", lambda s: ";read@tcp.rs" in s and "poll_fill@h1.rs" not in s),
    ("client (hyper, TLS and handed-over connections): read buffers", lambda s: "poll_read_from_io" in s),
    ("client (hyper): write buffers", lambda s: "serve_connection" in s and "new<>@io.rs" in s),
    ("client (hyper): request futures boxed by its dispatcher", lambda s: "new<>@dispatch.rs" in s and "serve_connection" in s),
    ("upstream: read buffers (upstream/h1.rs, 2 KiB first)", lambda s: "poll_fill@h1.rs" in s),
    ("upstream: request heads, kept for the one retry (upstream/h1.rs)", lambda s: "encode_head@h1.rs" in s and "link.rs" in s),
    ("own HTTP/1 server and client: the rest (h1.rs)", lambda s: "h1.rs" in s),
    ("requests in flight: header maps", lambda s: "@map.rs" in s),
    ("tasks (tokio task cells)", lambda s: "spawn" in s and "new<>@core.rs" in s),
    ("upstream: the rest under link.rs", lambda s: "link.rs" in s),
])
tot = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip().rpartition(" ")
    try: cost = int(cost)
    except ValueError: continue
    s = ";".join(frames(stack))
    for name, f in cats.items():
        if f(s):
            tot[name] += cost; break
    else:
        tot["other"] += cost
T = sum(tot.values())
cw = int(sys.argv[2])
print("heap at the peak, by what holds it (heaptrack, flamegraph stacks at peak):")
for k in list(cats) + ["other"]:
    v = tot[k]
    per = ""
    if k.startswith("client") and cw: per = "%6.0f B per client connection" % (v / cw)
    print("  %6.2f MB  %-76s %s" % (v / 1e6, k, per))
print("  %6.2f MB  total, %d client connections" % (T / 1e6, cw))
PY
  if [ "${KEEP:-}" = 1 ]; then echo "heaptrack file: $FILE (full report: heaptrack_print -f $FILE)"; fi
fi
