-- wrk script for bench/backend.sh: the identity headers the gateway would
-- set, a POST body when BENCH_MODE=post, and a one-line summary at the end.
local mode = os.getenv("BENCH_MODE") or "get"

wrk.headers["X-User-Id"] = os.getenv("BENCH_USER") or "bench-user"
wrk.headers["X-User-Tenant"] = "bench-tenant"
if mode == "post" then
  wrk.method = "POST"
  wrk.body = '{"item":{"name":"Benchmark item"}}'
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT %-4s %8.0f requests/s   p50 %7.2f ms   p99 %7.2f ms   (%d requests, %d non-2xx, %d socket errors)\n",
    mode:upper(),
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.requests,
    errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
