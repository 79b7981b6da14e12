-- wrk script of the benchmark: the request comes from environment variables, and the
-- summary (counts, errors, latency percentiles in ms) is written as JSON to BENCH_OUT.
--   BENCH_METHOD  GET | POST            BENCH_BODY     file sent as the body (optional)
--   BENCH_HEADERS "Name: value" lines   BENCH_PERCENTILES  comma-separated, e.g. 1,50,99.9

wrk.method = os.getenv("BENCH_METHOD") or "GET"
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
local body_path = os.getenv("BENCH_BODY")
if body_path and body_path ~= "" then
  local file = assert(io.open(body_path, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

function done(summary, latency, requests)
  local cdf = {}
  for p in string.gmatch(os.getenv("BENCH_PERCENTILES"), "[^,]+") do
    cdf[#cdf + 1] = string.format("%.3f", latency:percentile(tonumber(p)) / 1000)
  end
  local e = summary.errors
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  out:write(string.format(
    '{"requests": %d, "duration_s": %.6f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "cdf_ms": [%s]}',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(cdf, ", ")))
  out:close()
end
