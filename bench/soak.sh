#!/usr/bin/env bash
# Soak: the gateway under a mixed load for SOAK_MINUTES (default 10), with a
# signing-key rotation at the IdP every round. Not part of CI.
#
#   bench/soak.sh                  # 10 one-minute rounds
#   SOAK_MINUTES=2 bench/soak.sh   # a short check of the script itself
#
# Four wrk loads run side by side, each expecting one status: valid tokens
# (200), tampered tokens (401), no token (401), unknown paths (404). Each
# round the IdP rotates its keys and a fresh token is minted, so the gateway
# must pick up new keys by itself (unknown-kid refresh). Every round prints
# requests/s, unexpected statuses, and the gateway's RSS and open file
# descriptors; the run fails on any unexpected status, on RSS growing more
# than 50 % after the first round, or on file descriptors growing by > 64.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${SOAK_MINUTES:-10}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p authz-proxy -p todo-backend -p dev-idp
BIN=target/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

IDP=$(free_port); BACKEND=$(free_port); GW=$(free_port); ADMIN=$(free_port)
export RUST_LOG=warn
"$BIN/dev-idp" serve --listen 127.0.0.1:$IDP --base-url http://127.0.0.1:$IDP --data-dir "$WORK/idp" >"$WORK/idp.log" 2>&1 &
PIDS+=($!)
wait_port $IDP
"$BIN/todo-backend" --listen 127.0.0.1:$BACKEND --db "$WORK/todo.db" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
wait_port $BACKEND
"$BIN/authz-proxy" --listen 127.0.0.1:$GW --admin-listen 127.0.0.1:$ADMIN --upstream http://127.0.0.1:$BACKEND \
  --tenant aaaaaaaa-0000-4000-8000-000000000001 --client-id c0ffee00-0000-4000-8000-0000000000a1 \
  --instance http://127.0.0.1:$IDP --sts-instance http://127.0.0.1:$IDP --policy policy.yaml \
  --jwks-cooldown-seconds 5 >"$WORK/gw.log" 2>&1 &
GWPID=$!; PIDS+=($GWPID)
wait_port $GW

# A wrk script per load: the expected status comes from EXPECT; `done`
# prints requests and how many answers were not the expected status.
cat > "$WORK/check.lua" <<'EOF'
local expect = tonumber(os.getenv("EXPECT"))
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() unexpected = 0 end
response = function(status) if status ~= expect then unexpected = unexpected + 1 end end
done = function(summary)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  io.write(string.format("RESULT %d %d\n", summary.requests, bad))
end
EOF
token() { "$BIN/dev-idp" token --user alice --base-url http://127.0.0.1:$IDP --data-dir "$WORK/idp"; }
rss_kb() { awk '/VmRSS/ {print $2}' /proc/$GWPID/status; }
fds() { ls /proc/$GWPID/fd | wc -l; }
load() { # name expect seconds path [header]
  local hdr=()
  [ -n "${5:-}" ] && hdr=(-H "$5")
  EXPECT=$2 wrk -t1 -c8 -d"$3"s -s "$WORK/check.lua" "${hdr[@]}" "http://127.0.0.1:$GW$4" \
    | awk -v n="$1" '/^RESULT/ {print n, $2, $3}'
}

printf 'round  valid/s  401-bad/s  401-none/s  404/s  unexpected  rss_kb  fds\n'
TOTAL_BAD=0; FIRST_RSS=""; FIRST_FDS=""
for round in $(seq 1 "$MINUTES"); do
  curl -s -o /dev/null -X POST http://127.0.0.1:$IDP/_admin/rotate-keys
  T=$(token)
  BAD="${T%.*}.$(printf 'A%.0s' $(seq 1 342))"
  out=$( (load valid 200 60 /todoitems "Authorization: Bearer $T" &
          load tampered 401 60 /todoitems "Authorization: Bearer $BAD" &
          load none 401 60 /todoitems &
          load unknown 404 60 /nope &
          wait) )
  rate() { echo "$out" | awk -v n="$1" '$1 == n {printf "%.0f", $2 / 60}'; }
  bad=$(echo "$out" | awk '{s += $3} END {print s + 0}')
  TOTAL_BAD=$((TOTAL_BAD + bad))
  rss=$(rss_kb); fd=$(fds)
  [ -z "$FIRST_RSS" ] && FIRST_RSS=$rss && FIRST_FDS=$fd
  printf '%5d  %7s  %9s  %10s  %5s  %10d  %6d  %3d\n' "$round" "$(rate valid)" "$(rate tampered)" "$(rate none)" "$(rate unknown)" "$bad" "$rss" "$fd"
done

echo "unexpected statuses: $TOTAL_BAD"
[ "$TOTAL_BAD" -eq 0 ] || { echo "FAIL: unexpected statuses" >&2; exit 1; }
[ "$rss" -le $((FIRST_RSS * 3 / 2)) ] || { echo "FAIL: RSS grew from $FIRST_RSS to $rss kB" >&2; exit 1; }
[ "$fd" -le $((FIRST_FDS + 64)) ] || { echo "FAIL: fds grew from $FIRST_FDS to $fd" >&2; exit 1; }
echo "ok"
