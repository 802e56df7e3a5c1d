-- Counts answers by status (200 admitted, 429 throttled), across wrk threads.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; throttled = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 429 then throttled = throttled + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local o, t, x = 0, 0, 0
  for _, th in ipairs(threads) do o = o + th:get("ok"); t = t + th:get("throttled"); x = x + th:get("other") end
  io.write(string.format("STATUS ok=%d throttled=%d other=%d duration_us=%d\n", o, t, x, summary.duration))
end
