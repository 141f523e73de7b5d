-- wrk script of benchmarks/http_bench.py: one request shape, optionally one single-use item per
-- request (authorization codes, refresh tokens) taken from a file, and a JSON summary at the end.
--
--   wrk ... -s wrk_bench.lua URL -- METHOD PATH AUTHORIZATION BODY LIST_FILE THREADS
--
-- BODY is form-encoded; "{item}" in it is replaced by the next line of LIST_FILE. Thread t (of
-- THREADS) takes lines t, t+THREADS, ... so no item is sent twice. When a thread has used all its
-- items it repeats its last one (the server answers 400) and counts it in "exhausted". wrk calls
-- request() once on thread 0 before the run to check the script: that first item is never sent.
-- Empty strings stand for "none".

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  method = args[1]
  path = args[2]
  local auth = args[3] or ""
  template = args[4] or ""
  local list_file = args[5] or ""
  local nthreads = tonumber(args[6] or "1")
  headers = {}
  if auth ~= "" then headers["Authorization"] = auth end
  if template ~= "" then headers["Content-Type"] = "application/x-www-form-urlencoded" end
  items = nil
  if list_file ~= "" then
    items = {}
    local i = 0
    for line in io.lines(list_file) do
      if line ~= "" then
        if i % nthreads == tid then table.insert(items, line) end
        i = i + 1
      end
    end
  end
  fixed = nil
  if items == nil then
    local body = nil
    if template ~= "" then body = template end
    fixed = wrk.format(method, path, headers, body)
  end
  pos = 0
  exhausted = 0
  s2xx = 0
  s3xx = 0
  s4xx = 0
  s5xx = 0
end

function request()
  if fixed ~= nil then return fixed end
  pos = pos + 1
  local item = items[pos]
  if item == nil then
    exhausted = exhausted + 1
    item = items[#items] or "none"
  end
  local body = template:gsub("{item}", function() return item end)
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  if status < 300 then s2xx = s2xx + 1
  elseif status < 400 then s3xx = s3xx + 1
  elseif status < 500 then s4xx = s4xx + 1
  else s5xx = s5xx + 1 end
end

function done(summary, latency, requests)
  local totals = {s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, exhausted = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local e = summary.errors
  local parts = {
    string.format('"duration_us": %d', summary.duration),
    string.format('"requests": %d', summary.requests),
    string.format('"bytes": %d', summary.bytes),
    string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d}',
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99)),
  }
  for key, value in pairs(totals) do
    table.insert(parts, string.format('"%s": %d', key, value))
  end
  io.write("BENCH_JSON {" .. table.concat(parts, ", ") .. "}\n")
end
