-- wrk reporter: one machine-readable line with throughput, latency percentiles (µs)
-- and every kind of error, non-2xx/3xx answers included.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "JSON \"requests\":%d,\"duration_us\":%d,\"rps\":%.1f,\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"errors\":%d,\"non2xx\":%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.timeout, e.status))
end
