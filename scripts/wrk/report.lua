-- Prints requests/s and latency quantiles (ms) at the end of a wrk run.
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("requests %d in %.1fs = %.0f req/s; errors: connect %d, read %d, status %d, timeout %d\n",
    summary.requests, secs, summary.requests / secs, summary.errors.connect, summary.errors.read,
    summary.errors.status, summary.errors.timeout))
  io.write(string.format("latency ms: p50 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
