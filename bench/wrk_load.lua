-- The benches' wrk script (bench/common.py run_wrk). Two kinds of load:
--   WRK_PATHS set: GET each path of that file (one per line) in turn, every thread from
--                  its own offset (the query bench's scenarios);
--   else:          POST a new 2-line manual invoice with a reference of its own (the body
--                  of bench.ingest_bench.sale_body; prefix WRK_PREFIX) (the ingest bench).
-- WRK_AUTH is the Authorization header's value: the API key reaches wrk through its
-- environment, never its command line. Answers other than WRK_EXPECT are counted.
-- done() prints one JSON line for the bench.

local threads = {}
local prefix = os.getenv("WRK_PREFIX") or "R-"
local auth = os.getenv("WRK_AUTH") or ""
local expect = tonumber(os.getenv("WRK_EXPECT") or "200")
local paths_file = os.getenv("WRK_PATHS")

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  other = 0
  statuses = ""
  wrk.headers["Authorization"] = auth
  if paths_file then
    paths = {}
    for line in io.lines(paths_file) do
      table.insert(paths, line)
    end
    next_path = (id * 7919) % #paths
  else
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  sent = sent + 1
  if paths then
    next_path = next_path % #paths + 1
    return wrk.format("GET", paths[next_path])
  end
  local body = string.format(
    '{"reference": "%s%d-%08d", "type": "invoice", "date": "2026-02-01", "customer": "Bench Customer", '
      .. '"lines": [{"sku": "A", "quantity": "1", "unit_price": "10.50", "description": "Widget"}, '
      .. '{"sku": "B", "quantity": "2", "unit_price": "3.25", "description": "Gadget"}]}',
    prefix, id, sent)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= expect then
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
      .. '"timeouts": %d, "unexpected": %d, "statuses": "%s", "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, other_total, seen, latency:percentile(50), latency:percentile(99), latency.max))
end
