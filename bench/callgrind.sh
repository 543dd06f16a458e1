#!/usr/bin/env bash
# Instructions per request in the gateway, counted by callgrind: the same
# token on one keep-alive connection, GET /todoitems (scope check only: no
# condition of issue 16) against the static nginx backend of
# bench/compare.sh. Instruction counts do not depend on the machine's load,
# so an A/B measured here holds on a busy machine where req/s would not.
#
#   bench/callgrind.sh                         # main's release binary
#   GW_BIN=old VARIANT_BIN=new bench/callgrind.sh   # both, and the ratio
#
# Environment: GW_BIN (default $CARGO_TARGET_DIR/release/authz-proxy, else
# target/release), VARIANT_BIN (a second binary, measured the same way),
# REQUESTS (counted, default 2000), WARMUP (before counting, default 300),
# TOP (functions listed by their own instructions, default 25; 0: none),
# WITH_NGINX=1 (also nginx pass-through, one process, the same requests without
# the token's work: the peer of issue 18's target 1, for scale),
# GW_ARGS_EXTRA, SKIP_BUILD=1, KEEP=1 (keep the callgrind files).
#
# What is counted: every instruction the gateway process runs in user space
# (all its threads) from the first counted request to the last, divided by
# REQUESTS. The kernel's share (loopback TCP, epoll) is not in it; see
# bench/README.md for perf's figures of that.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-300}
TOP=${TOP:-25}
BIN=${CARGO_TARGET_DIR:-target}/release

need() { command -v "$1" >/dev/null 2>&1; }
if ! need valgrind || ! need nginx; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind nginx-light >/dev/null
fi
# The static backend and the dev IdP; valgrind starts the gateway slowly.
WAIT_TRIES=1200
# shellcheck source=bench/static-idp.sh
. bench/static-idp.sh

# requests PORT N: N GETs on one keep-alive connection; fails on any non-200.
requests() {
  python3 - "$1" "$2" "$TOKEN" <<'EOF'
import http.client, sys
port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/todoitems", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"gateway answered {r.status}")
EOF
}

# measure_nginx: nginx pass-through as in bench/compare.sh (keepalive
# upstream), in one process (master_process off) so that callgrind sees the
# worker; prints "nginx <instructions per request>".
measure_nginx() {
  local port pid
  port=$(free_port)
  nginx_pass_conf nginx "$port" "master_process off; daemon off;"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/nginx.%p" \
    nginx -c "$WORK/nginx.conf" >"$WORK/nginx.log" 2>&1 &
  pid=$!
  PIDS+=($pid)
  wait_port "$port"
  count nginx "$pid" "$port"
}

# count NAME PID PORT: warms up, counts REQUESTS requests, prints
# "NAME <instructions per request>" and leaves $WORK/NAME.out.
count() {
  local name=$1 pid=$2 port=$3
  requests "$port" "$WARMUP"
  callgrind_control -i on "$pid" >/dev/null
  requests "$port" "$REQUESTS"
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The dump taken on request (the last one written before exit).
  local out
  out=$(ls -t "$WORK/$name.$pid".* 2>/dev/null | head -1)
  [ -n "$out" ] || out="$WORK/$name.$pid"
  mv "$out" "$WORK/$name.out"
  local total
  total=$(callgrind_annotate "$WORK/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  echo "$name $((total / REQUESTS))"
}

# measure NAME BIN: prints "NAME <instructions per request>" and leaves
# $WORK/NAME.out (the callgrind file of the counted requests).
measure() {
  local name=$1 bin=$2 port admin pid
  port=$(free_port); admin=$(free_port)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$name.%p" \
    "$bin" $(gateway_flags "$port" "$admin") >"$WORK/$name.log" 2>&1 &
  pid=$!
  PIDS+=($pid)
  wait_port "$port"
  count "$name" "$pid" "$port"
}

echo "bench/callgrind.sh: $REQUESTS requests (after $WARMUP), same token, one connection, GET /todoitems; instructions per request in the gateway process"
A=$(measure main "$GW_BIN")
echo "$A  ($GW_BIN)"
if [ -n "${VARIANT_BIN:-}" ]; then
  B=$(measure variant "$VARIANT_BIN")
  echo "$B  ($VARIANT_BIN)"
  awk -v a="${A#* }" -v b="${B#* }" 'BEGIN { printf "variant/main: %.3f (%+d instructions per request)\n", b / a, b - a }'
fi
if [ "${WITH_NGINX:-}" = 1 ]; then
  N=$(measure_nginx)
  echo "$N  (nginx pass-through, $(nginx -v 2>&1 | sed 's/.*: //'))"
  awk -v a="${A#* }" -v n="${N#* }" 'BEGIN { printf "main/nginx: %.2f\n", a / n }'
fi
if [ "$TOP" -gt 0 ]; then
  for name in main ${VARIANT_BIN:+variant} ${WITH_NGINX:+nginx}; do
    echo
    echo "== $name: functions by their own instructions per request"
    callgrind_annotate --inclusive=no "$WORK/$name.out" 2>/dev/null \
      | awk -v n="$REQUESTS" -v top="$TOP" '
          /^-+$/ { dashes++; next }
          dashes >= 3 && NF >= 2 && $1 ~ /^[0-9,]+$/ && shown < top {
            v = $1; gsub(",", "", v)
            $1 = ""; if ($2 ~ /^\(/) $2 = ""
            printf "%10.0f %s\n", v / n, substr($0, 1, 150)
            shown++
          }'
  done
fi
