#!/usr/bin/env bash
# Benchmark: the gateway against a plain pass-through reverse proxy (nginx)
# and against the backend direct, side by side in one run, same load.
#
#   bench/gateway.sh            # 10 s per measurement, 2 rounds
#   bench/gateway.sh --quick    # 3 s per measurement, 1 round
#
# Backends: a trivial nginx location answering `{"items":[]}` (so the proxy
# hop is what is measured), and the real todo-backend (SQLite) for scale.
# Load: wrk -t1 -c32 on loopback; load generator, proxies and backends share
# the machine's cores, as in issue 7. It is a benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10s
ROUNDS=2
if [ "${1:-}" = "--quick" ]; then DURATION=3s; ROUNDS=1; fi
CONNS=${CONNS:-32}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi

cargo build --release -q -p authz-proxy -p todo-backend -p dev-idp
BIN=target/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

IDP=$(free_port); BACKEND=$(free_port); STATIC=$(free_port); NGINX_PROXY=$(free_port)
GW_STATIC=$(free_port); GW_BACKEND=$(free_port); ADMIN1=$(free_port); ADMIN2=$(free_port)

# nginx: a static backend and a pass-through proxy in front of it.
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx; uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  upstream static_backend { server 127.0.0.1:$STATIC; keepalive 64; }
  server { listen 127.0.0.1:$STATIC; location / { default_type application/json; return 200 '{"items":[]}'; } }
  server { listen 127.0.0.1:$NGINX_PROXY;
    location / { proxy_pass http://static_backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
EOF
nginx -c "$WORK/nginx.conf"

# dev-idp, a token, the backend, and two gateways (static backend, todo-backend).
export RUST_LOG=warn
"$BIN/dev-idp" serve --listen 127.0.0.1:$IDP --base-url http://127.0.0.1:$IDP --data-dir "$WORK/idp" >"$WORK/idp.log" 2>&1 &
PIDS+=($!)
wait_port $IDP
TOKEN=$("$BIN/dev-idp" token --user alice --base-url http://127.0.0.1:$IDP --data-dir "$WORK/idp")
"$BIN/todo-backend" --listen 127.0.0.1:$BACKEND --db "$WORK/todo.db" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_port $BACKEND
for i in $(seq 1 20); do
  curl -s -o /dev/null -H 'X-User-Id: a11ce000-0000-4000-8000-000000000001' -H 'X-User-Tenant: aaaaaaaa-0000-4000-8000-000000000001' \
    -H 'Content-Type: application/json' -d "{\"item\":{\"name\":\"item $i\"}}" http://127.0.0.1:$BACKEND/todoitems
done
GW_ARGS=(--tenant aaaaaaaa-0000-4000-8000-000000000001 --client-id c0ffee00-0000-4000-8000-0000000000a1
         --instance http://127.0.0.1:$IDP --sts-instance http://127.0.0.1:$IDP --policy policy.yaml)
"$BIN/authz-proxy" --listen 127.0.0.1:$GW_STATIC --admin-listen 127.0.0.1:$ADMIN1 --upstream http://127.0.0.1:$STATIC "${GW_ARGS[@]}" >"$WORK/gw1.log" 2>&1 &
GW1=$!; PIDS+=($GW1)
"$BIN/authz-proxy" --listen 127.0.0.1:$GW_BACKEND --admin-listen 127.0.0.1:$ADMIN2 --upstream http://127.0.0.1:$BACKEND "${GW_ARGS[@]}" >"$WORK/gw2.log" 2>&1 &
GW2=$!; PIDS+=($GW2)
wait_port $GW_STATIC; wait_port $GW_BACKEND
for p in $GW_STATIC $GW_BACKEND; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$p/todoitems)
  [ "$code" = 200 ] || { echo "gateway on $p answered $code, expected 200" >&2; cat "$WORK"/gw*.log >&2; exit 1; }
done

cat > "$WORK/auth.lua" <<EOF
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF
cat > "$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.0f %.0f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.requests))
end
EOF
cat "$WORK/auth.lua" "$WORK/report.lua" > "$WORK/auth_report.lua"

cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
CLK=$(getconf CLK_TCK)

# measure NAME URL SCRIPT PID(or -) → appends "NAME rps p50 p99 cpu_us_per_req" to results
measure() {
  local name=$1 url=$2 script=$3 pid=$4 before after out
  [ "$pid" != - ] && before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -s "$script" "$url" | grep '^RESULT')
  [ "$pid" != - ] && after=$(cpu_ticks "$pid")
  read -r _ rps p50 p99 reqs <<<"$out"
  local cpu=-
  if [ "$pid" != - ]; then cpu=$(awk -v t=$((after - before)) -v c="$CLK" -v n="$reqs" 'BEGIN{printf "%.1f", t / c * 1e6 / n}'); fi
  echo "$name $rps $p50 $p99 $cpu" >> "$WORK/results"
}

NGINX_PID=$(pgrep -f "nginx: worker process" | head -1 || echo -)
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS…" >&2
  measure "static-direct"            http://127.0.0.1:$STATIC/todoitems      "$WORK/report.lua"      -
  measure "nginx-proxy→static"       http://127.0.0.1:$NGINX_PROXY/todoitems "$WORK/report.lua"      "$NGINX_PID"
  measure "gateway→static"           http://127.0.0.1:$GW_STATIC/todoitems   "$WORK/auth_report.lua" $GW1
  measure "todo-backend-direct"      http://127.0.0.1:$BACKEND/todoitems     "$WORK/report.lua"      -
  measure "gateway→todo-backend"     http://127.0.0.1:$GW_BACKEND/todoitems  "$WORK/auth_report.lua" $GW2
done
# todo-backend direct needs identity headers: measured with them below.
cat > "$WORK/ident_report.lua" <<'EOF'
wrk.headers["X-User-Id"] = "a11ce000-0000-4000-8000-000000000001"
wrk.headers["X-User-Tenant"] = "aaaaaaaa-0000-4000-8000-000000000001"
EOF
cat "$WORK/report.lua" >> "$WORK/ident_report.lua"
sed -i '/^todo-backend-direct /d' "$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  measure "todo-backend-direct" http://127.0.0.1:$BACKEND/todoitems "$WORK/ident_report.lua" -
done

echo
echo "wrk -t1 -c$CONNS -d$DURATION, $ROUNDS round(s), $(nproc) cores; latency in µs; CPU = proxy process µs per request"
awk '
  { n[$1]++; rps[$1]+=$2; p50[$1]+=$3; p99[$1]+=$4; if ($5 != "-") { cpu[$1]+=$5; hc[$1]=1 } ; order[$1]=NR }
  END {
    printf "%-24s %10s %9s %9s %9s\n", "target", "req/s", "p50", "p99", "CPU/req"
    for (k in n) line[order[k]] = k
    for (i = 1; i <= NR; i++) if (i in line) { k = line[i]
      printf "%-24s %10.0f %9.0f %9.0f %9s\n", k, rps[k]/n[k], p50[k]/n[k], p99[k]/n[k], hc[k] ? sprintf("%.1f", cpu[k]/n[k]) : "-" }
    if (n["gateway→static"] && n["nginx-proxy→static"]) {
      printf "\ngateway / nginx pass-through: %.2f× req/s, %.2f× p99\n", (rps["gateway→static"]/n["gateway→static"]) / (rps["nginx-proxy→static"]/n["nginx-proxy→static"]), (p99["gateway→static"]/n["gateway→static"]) / (p99["nginx-proxy→static"]/n["nginx-proxy→static"])
    }
    if (n["gateway→todo-backend"] && n["todo-backend-direct"]) {
      printf "gateway→todo-backend / todo-backend direct: %.2f× req/s\n", (rps["gateway→todo-backend"]/n["gateway→todo-backend"]) / (rps["todo-backend-direct"]/n["todo-backend-direct"])
    }
  }' "$WORK/results"
