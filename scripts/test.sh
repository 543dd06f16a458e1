#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing
# (Debian's chromium + chromium-driver for the browser test, PostgreSQL for
# the backend's second store, nginx and Caddy for the decision endpoint's
# ingress test), starts PostgreSQL, then runs every test.
#
#   scripts/test.sh                 # all tests
#   scripts/test.sh -E 'test(tenant)'   # any cargo-nextest arguments
#
# Without root (or apt-get), it says what to install instead of installing it.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
# nginx is in /usr/sbin, which a non-root PATH may lack.
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v caddy >/dev/null || need+=(caddy)
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} (Debian packages the tests need)…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The ingress test runs its own nginx and Caddy; the packaged services,
    # started by the install on a systemd machine, are not needed.
    for svc in nginx caddy; do
      if [[ " ${need[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
      fi
    done
  else
    echo "the tests need these Debian packages: ${need[*]}" >&2
    echo "install them (apt-get install ${need[*]}) and run this again" >&2
    exit 1
  fi
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

# PostgreSQL: Debian's cluster, started if needed; one role and database in
# which every test makes a schema of its own. With CI=true the backend's tests
# fail (not skip) without TEST_DATABASE_URL.
if [[ -z ${TEST_DATABASE_URL:-} ]] && [[ $(id -u) == 0 ]]; then
  read -r pg_version pg_cluster pg_port pg_status _ < <(pg_lsclusters -h | head -n 1)
  [[ $pg_status == online ]] || pg_ctlcluster "$pg_version" "$pg_cluster" start
  su postgres -c "psql -qAt -p $pg_port" <<'SQL'
SELECT 'CREATE ROLE todo LOGIN PASSWORD ''todo''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'todo') \gexec
SELECT 'CREATE DATABASE todo_test OWNER todo' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'todo_test') \gexec
SQL
  export TEST_DATABASE_URL="postgres://todo:todo@127.0.0.1:$pg_port/todo_test"
fi

exec cargo nextest run --workspace "$@"
