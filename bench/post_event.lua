-- wrk script: single-event POST /events, each with a new idempotency key.
-- Arguments (after --): TAG KEY. The same body shape as bench.load.post_event_body.
local tag, key = "bench", ""
local n = 0

function init(args)
  tag = args[1] or tag
  key = args[2] or key
end

function request()
  n = n + 1
  local person, org = n % 20000, n % 97
  local body = string.format(
    '{"type":"member.joined","idempotency_key":"%s-1-%d",' ..
    '"source":{"url":"https://news.example.org/2025/07/%s-%d","outlet":"Bench Wire",' ..
    '"published_at":"2025-07-08","lang":"en"},' ..
    '"data":{"person_id":"bench-person-%d","person_name":"Bench Person %d",' ..
    '"org_id":"bench-team-%d","org_name":"Bench Team %d","role":"member","on":"2025-07"}}',
    tag, n, tag, n, person, person, org, org)
  return wrk.format("POST", "/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end

-- One JSON line for bench.load.wrk: counts, duration and latency percentiles (us).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
