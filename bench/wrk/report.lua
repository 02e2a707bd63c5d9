-- wrk script for bench/run.py: one JSON line of results at the end of a run.
--
-- Arguments after "--" on the wrk command line:
--   close   send "Connection: close" with every request (wrk reconnects
--           after each answer that carries "Connection: close").
-- The JSON line holds the request count, the duration, wrk's error
-- counters and the latency percentiles in microseconds (p50, p99).

function init(args)
   if args[1] == "close" then
      wrk.headers["Connection"] = "close"
   end
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
      '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes, errors.connect,
      errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
