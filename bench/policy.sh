#!/usr/bin/env bash
# Benchmark: how long a policy takes to compile (load, reload, `check`) and to
# decide one request (normalise + match), for 10 and 10,000 routes.
#
#   bench/policy.sh
#
# A decision goes through the policy's index (a hash map of literal paths, a
# trie of literal segments with GlobSets): the time for the last of 10,000
# routes stays close to the time for the first. "check" adds the warnings.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p authz-proxy --example policy_bench
