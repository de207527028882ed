-- wrk script of bench/ingest_bench.py: every request posts a new 2-line manual invoice
-- (the body of bench.ingest_bench.sale_body) with a reference of its own, and counts
-- the answers that are not 202. Settings come from the environment, so the API key
-- never appears on a command line: WRK_AUTH (the Authorization header's value) and
-- WRK_PREFIX (the references' prefix). done() prints one JSON line for the bench.

local threads = {}
local prefix = os.getenv("WRK_PREFIX") or "R-"
local auth = os.getenv("WRK_AUTH") or ""

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  other = 0
  statuses = ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = auth
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"reference": "%s%d-%08d", "type": "invoice", "date": "2026-02-01", "customer": "Bench Customer", '
      .. '"lines": [{"sku": "A", "quantity": "1", "unit_price": "10.50", "description": "Widget"}, '
      .. '{"sku": "B", "quantity": "2", "unit_price": "3.25", "description": "Gadget"}]}',
    prefix, id, sent)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 202 then
    other = other + 1
    if #statuses < 200 then
      statuses = statuses .. status .. " "
    end
  end
end

function done(summary, latency, requests)
  local other_total, seen = 0, ""
  for _, thread in ipairs(threads) do
    other_total = other_total + thread:get("other")
    seen = seen .. thread:get("statuses")
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "not_202": %d, "statuses": "%s", "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, other_total, seen, latency:percentile(50), latency:percentile(99), latency.max))
end
