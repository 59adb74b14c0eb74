-- wrk script for the web benchmark: POST {"name": ...} as JSON and print a
-- machine-readable summary line ("WRKJSON {...}") when the run is done.
wrk.method = "POST"
wrk.body = '{"name":"testuser"}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,' ..
    '"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50),
    latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
