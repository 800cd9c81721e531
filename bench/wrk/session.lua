-- wrk script of bench/web_bench.py: log in as a staff user through the login form, keep
-- the session cookie, then request the given paths in turn; count responses that are
-- not 200 or lack the expected text; collect the server's own time from each response's
-- "Server-Timing: app;dur=<ms>" header.
--
--   wrk -t2 -c50 -d15s -s session.lua http://127.0.0.1:PORT -- \
--       "/path1|/path2" "<session cookie or empty>" "<text every page has>" USER PASSWORD
--
-- With an empty cookie each connection first GETs /login (double-submit CSRF cookie),
-- then POSTs the form; the session cookie of the first login is kept by the thread and
-- reported by done(), so the bench logs in during a warm-up run and measures with it.
-- done() prints one line: "BENCH {json}" with wrk's latency percentiles (ms) and ours.

local paths, expect, user, password = {}, "", "", ""
local csrf = nil
local turn = 0
-- globals: done() reads them from each thread with thread:get()
cookie = nil
bad = 0
server_ms = {} -- histogram: server time rounded to 0.01 ms -> count

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function header(headers, name)
  for k, v in pairs(headers) do
    if k:lower() == name then return v end
  end
  return nil
end

function init(args)
  for p in string.gmatch(args[1], "[^|]+") do paths[#paths + 1] = p end
  if args[2] ~= nil and args[2] ~= "" then cookie = args[2] end
  expect, user, password = args[3] or "", args[4] or "", args[5] or ""
end

function request()
  if cookie then
    turn = turn + 1
    return wrk.format("GET", paths[(turn % #paths) + 1], {Cookie = "es_session=" .. cookie})
  elseif csrf then
    local body = "username=" .. urlencode(user) .. "&password=" .. urlencode(password) ..
                 "&csrf_token=" .. urlencode(csrf)
    return wrk.format("POST", "/login",
                      {["Content-Type"] = "application/x-www-form-urlencoded",
                       Cookie = "es_login_csrf=" .. csrf}, body)
  end
  return wrk.format("GET", "/login")
end

function response(status, headers, body)
  if not cookie then
    local set = header(headers, "set-cookie") or ""
    local session = set:match("es_session=([^;]+)")
    local token = set:match("es_login_csrf=([^;]+)")
    if session then cookie = session elseif token then csrf = token end
    return
  end
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
  local timing = header(headers, "server-timing")
  local dur = timing and tonumber(timing:match("app;dur=([%d%.]+)"))
  if dur then
    local key = math.floor(dur * 100 + 0.5)
    server_ms[key] = (server_ms[key] or 0) + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function percentile(hist, total, p)
  local keys = {}
  for k in pairs(hist) do keys[#keys + 1] = k end
  table.sort(keys)
  local want, seen = math.max(1, math.ceil(total * p / 100)), 0
  for _, k in ipairs(keys) do
    seen = seen + hist[k]
    if seen >= want then return k / 100 end
  end
  return -1
end

function done(summary, latency, requests)
  local hist, timed, wrong, session = {}, 0, 0, ""
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("server_ms") or {}) do
      hist[k] = (hist[k] or 0) + n
      timed = timed + n
    end
    wrong = wrong + (t:get("bad") or 0)
    session = t:get("cookie") or session
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "seconds": %.3f, "p50": %.2f, "p95": %.2f, "p99": %.2f, ' ..
    '"server_p50": %.2f, "server_p95": %.2f, "timed": %d, "bad": %d, ' ..
    '"socket_errors": %d, "session": "%s"}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    percentile(hist, timed, 50), percentile(hist, timed, 95), timed, wrong,
    e.connect + e.read + e.write + e.timeout, session))
end
