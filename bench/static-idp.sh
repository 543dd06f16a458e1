# Shared by bench/memory.sh and bench/callgrind.sh (sourced, not run): builds
# the release binaries unless SKIP_BUILD=1, then starts the static nginx
# backend of bench/compare.sh and the dev IdP in a work directory removed on
# exit (KEEP=1 keeps it), and mints one token.
#
# Expects BIN (the release directory) and, optionally, WAIT_TRIES (how many
# 50 ms waits for a port: more under valgrind). Sets WORK, PIDS, IDP, STATIC,
# TENANT, CLIENT_ID, TOKEN, and the helpers free_port, wait_port,
# wait_pidfile, gateway_flags and nginx_pass_conf.
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -q -p authz-proxy -p dev-idp
  cargo build --release -q -p dev-idp --example bench_tokens
fi
GW_BIN=${GW_BIN:-$BIN/authz-proxy}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/static.pid" ] && kill "$(cat "$WORK/static.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 "${WAIT_TRIES:-400}"); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_pidfile() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "$1 never appeared" >&2; exit 1; }

IDP=$(free_port); STATIC=$(free_port)
TENANT=aaaaaaaa-0000-4000-8000-000000000001
CLIENT_ID=c0ffee00-0000-4000-8000-0000000000a1

# gateway_flags PORT ADMIN: the gateway's flags for this IdP and backend
# (the repository's policy.yaml), and GW_ARGS_EXTRA (word-split on purpose).
gateway_flags() {
  echo --listen 127.0.0.1:"$1" --admin-listen 127.0.0.1:"$2" \
    --tenant $TENANT --client-id $CLIENT_ID --instance http://127.0.0.1:$IDP --sts-instance http://127.0.0.1:$IDP \
    --upstream http://127.0.0.1:$STATIC --log-format text --policy policy.yaml ${GW_ARGS_EXTRA:-}
}

# shellcheck source=bench/nginx-conf.sh
. bench/nginx-conf.sh
nginx_conf_file static "worker_processes 1;" "${STATIC_CONNECTIONS:-4096}" \
  "server { listen 127.0.0.1:$STATIC; keepalive_requests 1000000;
    location / { default_type application/json; return 200 '{\"items\":[]}'; } }"
nginx -c "$WORK/static.conf"
wait_pidfile "$WORK/static.pid"

# nginx_pass_conf NAME PORT RUN: writes $WORK/NAME.conf, nginx as the
# pass-through proxy of bench/compare.sh (one worker, keepalive upstream to
# the static backend) on PORT; RUN is its first line, how it runs
# (`worker_processes 1;`, `master_process off; daemon off;`, ...). Its pid
# file is $WORK/NAME.pid.
nginx_pass_conf() {
  nginx_conf_file "$1" "$3" 4096 "upstream backend { server 127.0.0.1:$STATIC; keepalive 64; }
  server { listen 127.0.0.1:$2; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
}

export RUST_LOG=warn
"$BIN/dev-idp" serve --listen 127.0.0.1:$IDP --base-url http://127.0.0.1:$IDP --data-dir "$WORK/idp" >"$WORK/idp.log" 2>&1 &
PIDS+=($!)
wait_port $IDP
TOKEN=$("${TOKENS_BIN:-$BIN/examples/bench_tokens}" "$WORK/idp" http://127.0.0.1:$IDP valid 1)
