-- wrk script of bench/phone_punch_bench.py: each request is a phone punch of one of the
-- enrolled employees (round robin over the sessions file), with a fresh punch id, the
-- phone's clock and a location; or, with an empty sessions file name, GETs the baseline
-- path. done() prints "BENCH {json}": latency percentiles (ms), requests, non-2xx.
-- PACE_MS > 0: each connection (an employee's phone) waits that long before its next
-- request (wrk's delay()), so the offered rate is connections * 1000 / PACE_MS per second
-- and the latency is the server's answer time, not a queue wrk builds by never waiting.
-- wrk calls delay() before a connection's first request too, so with a fixed pace all
-- the phones punch at the same instant every PACE_MS ("in step"). JITTER = 1 draws each
-- wait uniformly from 0..2*PACE_MS instead (the same mean rate, phones out of step, as
-- employees arriving at a shift are).
--   wrk -t2 -c50 -d10s -s phone_punch.lua http://127.0.0.1:PORT -- SESSIONS_FILE|"" PATH [PACE_MS [JITTER]]

local sessions, path, turn, pace, jitter = {}, "/api/v1/phone/punch", 0, 0, false
bad = 0

function init(args)
  if args[1] ~= nil and args[1] ~= "" then
    for line in io.lines(args[1]) do sessions[#sessions + 1] = line end
  end
  path = args[2] or path
  pace = tonumber(args[3] or "0") or 0
  jitter = args[4] == "1"
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end

local function uuid()
  return string.format("%08x-%04x-4%03x-%04x-%012x", math.random(0, 0xffffffff),
                       math.random(0, 0xffff), math.random(0, 0xfff),
                       math.random(0x8000, 0xbfff), math.random(0, 0xffffffffffff))
end

function request()
  if #sessions == 0 then return wrk.format("GET", path) end
  turn = turn + 1
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local body = string.format(
    '{"id":"%s","type":"arrival","at":"%s","sent_at":"%s","lat":46.0569,"lon":14.5058,' ..
    '"accuracy":10}', uuid(), now, now)
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   Authorization = "Bearer " .. sessions[(turn % #sessions) + 1]},
                    body)
end

function delay()
  if jitter and pace > 0 then return math.random(0, 2 * pace) end
  return pace
end

function response(status, headers, body)
  if status >= 300 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads or {}) do total_bad = total_bad + (t:get("bad") or 0) end
  io.write(string.format(
    'BENCH {"requests":%d,"seconds":%.3f,"p50":%.3f,"p95":%.3f,"p99":%.3f,"bad":%d,' ..
    '"errors":%d}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, total_bad,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout))
end

threads = {}
function setup(thread) threads[#threads + 1] = thread end
