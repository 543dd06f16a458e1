#!/usr/bin/env bash
# `docker compose up`, for real: builds the image from the Dockerfile, starts
# the shipped compose files (docker-compose.yml + docker-compose.override.yml)
# and walks the README's quick start against the containers.
#
#   scripts/compose-test.sh          # the image's runtime stage over this
#                                    # checkout's binaries (what CI runs)
#   scripts/compose-test.sh --full   # the whole Dockerfile, Rust stage included
#   scripts/compose-test.sh --keep   # leave the stack up afterwards
#
# What it needs, it brings: Debian's docker.io and docker-compose when
# missing (and chromium + chromium-driver for the browser check), a Docker engine (started here when none runs, and stopped again
# after), and the two base images (pulled, or built locally as stand-ins by
# scripts/base-images.sh when no registry answers). Runs as root.
#
# The stack runs from a copy of the compose files, policy.yaml and
# dev-idp.yaml in a temporary directory (the reload check edits policy.yaml
# there, never yours), on free host ports (GATEWAY_PORT, DEV_IDP_PORT).
#
# Checked, in order: the image (user and group ids, no EXPOSE), health of all
# three services, /health, 401 without a token, tokens minted inside the
# dev-idp container, 201/200/403/204 as alice and bob, /docs and
# /openapi.json, the backend unreachable from any container but the gateway,
# no colour codes in any container's log, Swagger UI's sign-in in headless
# Chromium (tests/tests/browser.rs pointed at the stack), policy.yaml edited
# and reloaded with no restart, a restart that keeps items and signing keys,
# and `down -v`; then examples/two-apis/docker-compose.yml from its
# directory: its README's curls (two APIs, two app registrations, wrong
# audiences refused) and its internal network.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

mode=prebuilt
keep=false
for arg in "$@"; do
  case $arg in
  --full) mode=full ;;
  --keep) keep=true ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "unknown argument: $arg (see --help)" >&2
    exit 2
    ;;
  esac
done

say() { printf '\n[compose-test %4ss] %s\n' "$SECONDS" "$*"; }
fail() {
  printf '[compose-test] FAIL: %s\n' "$*" >&2
  exit 1
}
ok() { printf '  ok  %s\n' "$*"; }

# --- packages ---------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
  need+=(docker-compose)
fi
# The browser check (as scripts/test.sh): Debian's chromium and its driver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if ((${#need[@]})); then
  [[ $(id -u) == 0 ]] || fail "needs ${need[*]} (Debian packages); run as root or install them"
  say "installing ${need[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The engine's own client: Debian's 20.10 CLI has BuildKit built in, where a
# newer client elsewhere on PATH may want a buildx plugin it lacks.
DOCKER=docker
[[ -x /usr/bin/docker ]] && DOCKER=/usr/bin/docker
export DOCKER

# --- engine -----------------------------------------------------------------
started_engine=false
engine_log=$(mktemp)
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd (log: $engine_log)"
  dockerd >"$engine_log" 2>&1 &
  engine_pid=$!
  started_engine=true
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$engine_pid" 2>/dev/null || {
      tail -n 30 "$engine_log" >&2
      fail "dockerd exited"
    }
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || fail "dockerd did not answer within 60 s"
fi
echo "  engine: $("$DOCKER" version --format '{{.Server.Version}}')"

if "$DOCKER" compose version >/dev/null 2>&1; then
  compose=("$DOCKER" compose)
else
  compose=(docker-compose)
fi
echo "  compose: $("${compose[@]}" version --short 2>/dev/null || "${compose[@]}" version | head -n 1)"

# --- the stack's directory and ports --------------------------------------
work=$(mktemp -d)
chmod 755 "$work"
project=authzci$$
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GATEWAY_PORT=$(free_port)
DEV_IDP_PORT=$(free_port)
export GATEWAY_PORT DEV_IDP_PORT AAD_INSTANCE="http://localhost:$DEV_IDP_PORT"
gw="http://localhost:$GATEWAY_PORT"

cp docker-compose.yml docker-compose.override.yml policy.yaml .env.sample "$work/"
mkdir -p "$work/dev-idp"
# The gateway's Graph client secret (a compose secret of the override file).
cp dev-idp/authz-gateway.secret "$work/dev-idp/"
# Swagger UI's redirect URI on this gateway port (exact match, as Entra).
sed "s|^\(\s*\)- http://localhost:8000/oauth2-redirect|&\n\1- $gw/oauth2-redirect|" \
  dev-idp/dev-idp.yaml >"$work/dev-idp/dev-idp.yaml"
chmod -R a+rX "$work"
dc() { (cd "$work" && "${compose[@]}" -p "$project" "$@"); }

cleanup() {
  local status=$?
  if ((status != 0)); then
    echo "--- container logs ---" >&2
    dc logs --no-color --tail 60 >&2 2>&1 || true
  fi
  if $keep; then
    say "left running: project $project in $work (gateway $gw)"
  else
    dc down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
    if $started_engine; then
      kill "$engine_pid" 2>/dev/null || true
      wait "$engine_pid" 2>/dev/null || true
    fi
  fi
  rm -f "$engine_log"
  exit "$status"
}
trap cleanup EXIT

# --- image ----------------------------------------------------------------
say "base images"
if [[ $mode == full ]]; then
  scripts/base-images.sh --rust
else
  scripts/base-images.sh
fi

if [[ $mode == prebuilt ]]; then
  say "binaries: this checkout's (cargo nextest's build; nothing to do after scripts/test.sh)"
  cargo nextest run --workspace --locked --no-run --cargo-quiet >/dev/null
  target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  rm -rf target/image-bin
  mkdir -p target/image-bin
  for bin in authz-proxy todo-backend dev-idp; do
    cp "$target/debug/$bin" target/image-bin/
  done
  build_args=(--build-arg BINARIES=prebuilt)
else
  build_args=()
fi
say "docker build ($mode) -t authz-proxy:local"
build_start=$SECONDS
DOCKER_BUILDKIT=1 "$DOCKER" build -q "${build_args[@]}" -t authz-proxy:local . >/dev/null
echo "  built in $((SECONDS - build_start)) s"
rm -rf target/image-bin

ids=$("$DOCKER" run --rm authz-proxy:local id)
[[ $ids == "uid=10001(app) gid=10001(app) groups=10001(app)" ]] || fail "image user: $ids"
ok "runs as $ids"
exposed=$("$DOCKER" image inspect -f '{{json .Config.ExposedPorts}}' authz-proxy:local)
[[ $exposed == null || $exposed == '{}' ]] || fail "the image EXPOSEs $exposed; compose says each service's port"
ok "no EXPOSE in the shared image"

# --- up -------------------------------------------------------------------
say "compose up (gateway on $GATEWAY_PORT, dev IdP on $DEV_IDP_PORT)"
dc up -d --no-build
container() { dc ps -q "$1"; }
# wait_healthy STACK SERVICE...: each service's health check passes; STACK
# is the function that runs compose for that stack (dc, dx).
wait_healthy() {
  local stack=$1 service id health
  shift
  for service in "$@"; do
    id=$("$stack" ps -q "$service")
    for _ in $(seq 1 240); do
      health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$id")
      [[ $health == healthy ]] && break
      sleep 0.5
    done
    [[ $health == healthy ]] || fail "$service is $health after 120 s"
  done
}
up_start=$SECONDS
wait_healthy dc dev-idp todo-backend proxy
ok "three services healthy in $((SECONDS - up_start)) s"

# --- the quick start, by curl ---------------------------------------------
# status METHOD URL [curl args...]: prints the status code.
status() {
  local method=$1 url=$2
  shift 2
  curl -sS -o /dev/null -w '%{http_code}' -X "$method" "$@" "$url"
}
expect() { # EXPECTED WHAT METHOD URL [curl args...]
  local expected=$1 what=$2 got
  shift 2
  got=$(status "$@")
  [[ $got == "$expected" ]] || fail "$what: $got, expected $expected"
  ok "$what: $got"
}

say "the quick start against $gw"
expect 200 "GET /health" GET "$gw/health"
headers=$(curl -sS -D - -o /dev/null "$gw/todoitems")
grep -qi '^www-authenticate: Bearer' <<<"$headers" || fail "401 without WWW-Authenticate: $headers"
expect 401 "GET /todoitems without a token" GET "$gw/todoitems"
alice=$(dc exec -T dev-idp dev-idp token --user alice)
bob=$(dc exec -T dev-idp dev-idp token --user bob)
[[ $alice == ey* && $bob == ey* ]] || fail "dev-idp token inside its container printed no token"
ok "tokens minted inside the dev-idp container (docker compose exec dev-idp dev-idp token --user …)"
json=(-H 'Content-Type: application/json')
expect 201 "POST /todoitems as alice" POST "$gw/todoitems" -H "Authorization: Bearer $alice" "${json[@]}" \
  -d '{"item":{"name":"Walk the dog"}}'
listed=$(curl -sS -H "Authorization: Bearer $alice" "$gw/todoitems")
grep -q 'Walk the dog' <<<"$listed" || fail "alice's list: $listed"
expect 200 "GET /todoitems as alice" GET "$gw/todoitems" -H "Authorization: Bearer $alice"
expect 403 "DELETE /todoitems as alice (Admin only)" DELETE "$gw/todoitems" -H "Authorization: Bearer $alice"
expect 204 "DELETE /todoitems as bob (Admin)" DELETE "$gw/todoitems" -H "Authorization: Bearer $bob"
expect 200 "GET /docs" GET "$gw/docs"
curl -fsS "$gw/openapi.json" | grep -q '"/todoitems"' || fail "/openapi.json has no /todoitems"
ok "GET /openapi.json: the backend's document"

# --- isolation --------------------------------------------------------------
say "the backend: reachable by the gateway alone"
backend_ip=$("$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container todo-backend)")
[[ -n $backend_ip ]] || fail "no address for todo-backend"
dc exec -T proxy curl -fsS -m 5 -o /dev/null http://todo-backend:8081/health ||
  fail "the gateway cannot reach todo-backend:8081"
ok "proxy → todo-backend:8081: 200"
# Even from the gateway's container, forged headers without the gateway's
# signed assertion are refused by the backend itself.
got=$(dc exec -T proxy curl -sS -m 5 -o /dev/null -w '%{http_code}' -H 'X-User-Id: forged' \
  -H 'X-User-Tenant: forged' -H 'X-User-Roles: Admin' http://todo-backend:8081/todoitems) ||
  fail "the gateway cannot reach todo-backend:8081/todoitems"
[[ $got == 401 ]] || fail "forged identity headers straight to the backend: $got, expected 401"
ok "proxy → todo-backend:8081 with forged headers and no assertion: 401"
dc exec -T proxy curl -fsS -m 5 -o /dev/null http://todo-backend:8081/ready ||
  fail "the backend is not ready (it cannot fetch the gateway's JWKS)"
ok "todo-backend /ready: 200 (the gateway's JWKS fetched)"
# The gateway's Graph credentials as the container has them (the compose
# secret, GRAPH_*) get an app token for Graph from the dev IdP, and Graph
# answers a membership question with it: the groups overage path is wired.
graph_check='set -e
secret=$(cat "$GRAPH_CLIENT_SECRET_FILE")
token=$(curl -fsS -m 5 "http://dev-idp:9400/$AAD_TENANT_ID/oauth2/v2.0/token" \
  -d grant_type=client_credentials -d "client_id=$GRAPH_CLIENT_ID" \
  --data-urlencode "client_secret=$secret" \
  --data-urlencode scope=https://graph.microsoft.com/.default |
  sed -n "s/.*\"access_token\":\"\([^\"]*\)\".*/\1/p")
[ -n "$token" ]
curl -fsS -m 5 -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
  -d "{\"groupIds\": [\"6f1c0000-0000-4000-8000-00000000f1a0\"]}" \
  "$GRAPH_URL/v1.0/users/f2a40000-0000-4000-8000-000000000006/checkMemberGroups" |
  grep -q 6f1c0000-0000-4000-8000-00000000f1a0'
dc exec -T proxy sh -c "$graph_check" ||
  fail "the gateway's Graph credentials (GRAPH_*, the compose secret) get no Graph token from the dev IdP"
ok "proxy's GRAPH_* credentials: a Graph app token from the dev IdP; Graph says frank is in finance"
forge=(-H 'X-User-Id: forged' -H 'X-User-Roles: Admin' -H 'X-User-Scopes: access_as_user' -H 'X-User-Type: user')
for target in "todo-backend:8081" "$backend_ip:8081"; do
  if dc exec -T dev-idp curl -sS -m 5 -o /dev/null "${forge[@]}" "http://$target/todoitems" 2>/dev/null; then
    fail "the dev-idp container reached http://$target with forged identity headers"
  fi
  ok "dev-idp → $target: unreachable"
done
network=$("$DOCKER" inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}' "$(container dev-idp)")
network=${network%% *}
if "$DOCKER" run --rm --network "$network" authz-proxy:local \
  curl -sS -m 5 -o /dev/null "${forge[@]}" "http://$backend_ip:8081/todoitems" 2>/dev/null; then
  fail "a new container on $network reached the backend"
fi
ok "a new container on $network → $backend_ip:8081: unreachable"

# --- logs -------------------------------------------------------------------
for service in dev-idp todo-backend proxy; do
  if "$DOCKER" logs "$(container "$service")" 2>&1 | grep -q $'\e\['; then
    fail "$service writes colour codes into its container log"
  fi
done
ok "no colour codes in any container's log"

# --- Swagger UI in a browser ------------------------------------------------
say "Swagger UI sign-in in headless Chromium against the stack"
# --workspace, as scripts/test.sh builds it: the same features, so nothing
# is rebuilt after the tests.
BROWSER_GATEWAY_URL=$gw cargo nextest run --workspace --locked --cargo-quiet \
  -E 'package(e2e-tests) & binary(e2e) & test(/^browser::/)'

# --- reload -----------------------------------------------------------------
say "policy.yaml edited as an editor saves it (new file, renamed over): reloaded, no restart"
# The health route allows GET and HEAD; the edit leaves HEAD alone.
sed 's|^    methods: \[GET, HEAD\]$|    methods: [HEAD]|' "$work/policy.yaml" >"$work/policy.yaml.new"
grep -q '^    methods: \[HEAD\]$' "$work/policy.yaml.new" || fail "policy.yaml has no '    methods: [GET, HEAD]' line to edit"
chmod 644 "$work/policy.yaml.new"
mv "$work/policy.yaml.new" "$work/policy.yaml"
for _ in $(seq 1 60); do
  [[ $(status GET "$gw/health") == 405 ]] && break
  sleep 0.5
done
expect 405 "GET /health after the edit (the route now allows HEAD only)" GET "$gw/health"
allow=$(curl -sS -D - -o /dev/null "$gw/health" | tr -d '\r' | grep -i '^allow:' || true)
[[ ${allow,,} == "allow: head" ]] || fail "the gateway's 405 names the methods allowed now: got '$allow'"
ok "the 405 is the gateway's, from the edited policy ($allow)"

# --- restart ----------------------------------------------------------------
say "restart: items and signing keys survive"
expect 201 "POST /todoitems as alice" POST "$gw/todoitems" -H "Authorization: Bearer $alice" "${json[@]}" \
  -d '{"item":{"name":"Survive a restart"}}'
dc restart >/dev/null 2>&1
wait_healthy dc dev-idp todo-backend proxy
listed=$(curl -sS -H "Authorization: Bearer $alice" "$gw/todoitems")
grep -q 'Survive a restart' <<<"$listed" ||
  fail "after a restart, alice's token (signed before it) lists: $listed"
ok "the item, and alice's token from before the restart, still good"

# --- examples/two-apis -------------------------------------------------------
say "examples/two-apis in containers: one gateway, two APIs, two app registrations"
# Run from the example's own directory (its policy.yaml and dev-idp.yaml are
# mounted read-only) on ports of its own, with the image built above.
dc down -v --remove-orphans >/dev/null 2>&1
example_project=authzex$$
EXAMPLE_GATEWAY_PORT=$(free_port)
EXAMPLE_IDP_PORT=$(free_port)
dx() {
  (cd examples/two-apis && GATEWAY_PORT=$EXAMPLE_GATEWAY_PORT DEV_IDP_PORT=$EXAMPLE_IDP_PORT \
    AAD_INSTANCE="http://localhost:$EXAMPLE_IDP_PORT" "${compose[@]}" -p "$example_project" "$@")
}
example_down() { dx down -v --remove-orphans >/dev/null 2>&1 || true; }
trap 'example_down; cleanup' EXIT
dx up -d --no-build
wait_healthy dx orders reports dev-idp proxy
ok "four services healthy"
ex="http://localhost:$EXAMPLE_GATEWAY_PORT"
orders=$(dx exec -T dev-idp dev-idp token --user alice)
reports=$(dx exec -T dev-idp dev-idp token --user alice --api reports-api)
bob_reports=$(dx exec -T dev-idp dev-idp token --user bob --api reports-api)
[[ $orders == ey* && $reports == ey* && $bob_reports == ey* ]] || fail "examples/two-apis: no tokens from its dev IdP"
# The README's curls, with the statuses it gives.
expect 200 "GET /health" GET "$ex/health"
expect 200 "GET /reports/health (the reports API's)" GET "$ex/reports/health"
expect 201 "POST /todoitems, orders token" POST "$ex/todoitems" -H "Authorization: Bearer $orders" "${json[@]}" \
  -d '{"item":{"name":"Order 1"}}'
expect 200 "GET /todoitems, orders token" GET "$ex/todoitems" -H "Authorization: Bearer $orders"
expect 401 "GET /reports/todoitems, orders token (wrong audience)" GET "$ex/reports/todoitems" -H "Authorization: Bearer $orders"
expect 200 "GET /reports/todoitems, reports token" GET "$ex/reports/todoitems" -H "Authorization: Bearer $reports"
expect 401 "GET /todoitems, reports token (wrong audience)" GET "$ex/todoitems" -H "Authorization: Bearer $reports"
expect 403 "POST /reports/todoitems as alice (no Admin of reports)" POST "$ex/reports/todoitems" \
  -H "Authorization: Bearer $reports" "${json[@]}" -d '{"item":{"name":"Q4"}}'
expect 201 "POST /reports/todoitems as bob" POST "$ex/reports/todoitems" -H "Authorization: Bearer $bob_reports" \
  "${json[@]}" -d '{"item":{"name":"Q4"}}'
expect 401 "GET /reports/todoitems without a token" GET "$ex/reports/todoitems"
challenge=$(curl -sS -D - -o /dev/null -H "Authorization: Bearer $orders" "$ex/reports/todoitems" | tr -d '\r' |
  grep -i '^www-authenticate:' || true)
grep -q 'invalid_token' <<<"$challenge" || fail "the wrong-audience 401's challenge: '$challenge'"
ok "the wrong-audience 401 says invalid_token ($challenge)"
# Each API got only its own requests: the reports item is not on orders.
listed=$(curl -sS -H "Authorization: Bearer $orders" "$ex/todoitems")
grep -q 'Order 1' <<<"$listed" && ! grep -q 'Q4' <<<"$listed" || fail "orders lists: $listed"
ok "orders has its item and not the reports one"
if dx exec -T dev-idp curl -sS -m 5 -o /dev/null http://reports:8081/health 2>/dev/null; then
  fail "examples/two-apis: the dev-idp container reached the reports API"
fi
ok "dev-idp → reports:8081: unreachable (internal network)"
example_down
trap cleanup EXIT

say "compose test passed"
