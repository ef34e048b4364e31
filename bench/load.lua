-- wrk script of `cargo xtask bench` (settings come from the environment, see xtask/src/bench/load.rs).
--   BENCH_MODE      mix: ~80% reads (GET client/document by id, list pages of clients and
--                   documents, following next_cursor) and ~20% writes (POST client; PATCH client,
--                   with If-Match on a client this connection thread created, or without);
--                   get: GET client by id only (the read path compared with the floors);
--                   create: POST client only (the write path compared with its JS twin).
--   BENCH_TOKEN     bearer token; BENCH_ACCOUNT account id (sent as x-account-id for the floors)
--   BENCH_CLIENTS / BENCH_DOCS   number of seeded rows (ids: prefix + 12-digit index)
--   BENCH_THINK_MIN_MS / BENCH_THINK_MAX_MS   think time before every request (0: none)
--   BENCH_HOST      Host header (routes to a floor Worker through the bench edge)
--   BENCH_FLOOR_SESSION  1: ask floor-js for the product's exact D1 call (a session read)
--   BENCH_LOG       1: ask twin-js to write the product's per-request log line too
--   BENCH_CONNS_PER_THREAD  connections per wrk thread (their first delays ramp the start)
-- Non-2xx answers are counted in response(); done() prints one line "BENCH_JSON {...}".

local mode = os.getenv("BENCH_MODE") or "mix"
local token = os.getenv("BENCH_TOKEN") or ""
local account = os.getenv("BENCH_ACCOUNT") or ""
local nclients = tonumber(os.getenv("BENCH_CLIENTS") or "1")
local ndocs = tonumber(os.getenv("BENCH_DOCS") or "1")
local think_min = tonumber(os.getenv("BENCH_THINK_MIN_MS") or "0")
local think_max = tonumber(os.getenv("BENCH_THINK_MAX_MS") or "0")
local host = os.getenv("BENCH_HOST") or ""
local floor_session = os.getenv("BENCH_FLOOR_SESSION") == "1"
local ramp_calls = tonumber(os.getenv("BENCH_CONNS_PER_THREAD") or "0")

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  ok, non2xx, s4xx, s5xx = 0, 0, 0, 0
  codes = {}         -- non-2xx answers by status code
  created, patched_ifmatch, patched_plain, lists, gets = 0, 0, 0, 0, 0
  mine = {}          -- locations of clients created by this thread (patched with If-Match "v1")
  cursor_clients, cursor_docs = nil, nil
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["x-account-id"] = account
  wrk.headers["Content-Type"] = "application/json"
  if host ~= "" then wrk.headers["Host"] = host end
  if floor_session then wrk.headers["x-floor-session"] = "1" end
  if os.getenv("BENCH_LOG") == "1" then wrk.headers["x-bench-log"] = "1" end
end

-- wrk asks for a delay before every request, a connection's first one included (all of a
-- thread's connections ask first, at the start). Those first delays are spread over the whole
-- think time, as users arrive over time: no synchronised burst of every VU at once.
local arrivals = 0
function delay()
  if think_max <= 0 then return 0 end
  if arrivals < ramp_calls then
    arrivals = arrivals + 1
    return math.random(0, think_max)
  end
  return math.random(think_min, think_max)
end

local function client_id(i) return string.format("c1000000-0000-4000-8000-%012d", i) end
local function doc_id(i) return string.format("d1000000-0000-4000-8000-%012d", i) end

local function list(path, cursor)
  lists = lists + 1
  if cursor ~= nil and math.random() < 0.7 then
    return wrk.format("GET", path .. "?limit=50&cursor=" .. cursor)
  end
  return wrk.format("GET", path .. "?limit=50")
end

local function new_client()
  created = created + 1
  local body = string.format('{"forenames":"Load","surname":"Tester%d","status":"prospect","email":"load%d@bench.example"}',
    math.random(100000), math.random(1000000000))
  return wrk.format("POST", "/v1/clients", nil, body)
end

function request()
  if mode == "get" then
    gets = gets + 1
    return wrk.format("GET", "/v1/clients/" .. client_id(math.random(nclients)))
  elseif mode == "create" then
    return new_client()
  end
  local r = math.random()
  if r < 0.30 then
    gets = gets + 1
    return wrk.format("GET", "/v1/clients/" .. client_id(math.random(nclients)))
  elseif r < 0.55 then
    gets = gets + 1
    return wrk.format("GET", "/v1/documents/" .. doc_id(math.random(ndocs)))
  elseif r < 0.68 then
    return list("/v1/clients", cursor_clients)
  elseif r < 0.80 then
    return list("/v1/documents", cursor_docs)
  elseif r < 0.90 then
    return new_client()
  else
    local body = string.format('{"phone":"0161 496 %04d"}', math.random(9999))
    local loc = table.remove(mine)
    if loc ~= nil then
      patched_ifmatch = patched_ifmatch + 1
      -- wrk.format uses the given headers instead of wrk.headers, not in addition to them.
      local h = { ["If-Match"] = '"v1"' }
      for k, v in pairs(wrk.headers) do h[k] = v end
      return wrk.format("PATCH", loc, h, body)
    end
    patched_plain = patched_plain + 1
    return wrk.format("PATCH", "/v1/clients/" .. client_id(math.random(nclients)), nil, body)
  end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    codes[tostring(status)] = (codes[tostring(status)] or 0) + 1
    if status >= 500 then s5xx = s5xx + 1 elseif status >= 400 then s4xx = s4xx + 1 end
  end
  if mode ~= "mix" then return end
  if status == 201 then
    local loc = headers["location"] or headers["Location"]
    if loc ~= nil and #mine < 1000 then
      -- Location may be absolute; keep the path.
      table.insert(mine, (string.gsub(loc, "^https?://[^/]+", "")))
    end
  elseif status == 200 and body ~= nil then
    local cur = string.match(body, '"next_cursor":"([^"]+)"')
    if cur ~= nil then
      if string.find(body, '"surname"', 1, true) then cursor_clients = cur else cursor_docs = cur end
    end
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, non2xx = 0, s4xx = 0, s5xx = 0, created = 0, patched_ifmatch = 0,
              patched_plain = 0, lists = 0, gets = 0 }
  local codes_all = {}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (tonumber(th:get(k)) or 0) end
    for code, n in pairs(th:get("codes") or {}) do codes_all[code] = (codes_all[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(codes_all) do table.insert(parts, string.format('"%s":%d', code, n)) end
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"ok":%d,"non2xx":%d,"s4xx":%d,"s5xx":%d,' ..
    '"non2xx_by_status":{' .. table.concat(parts, ",") .. '},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"ops":{"gets":%d,"lists":%d,"created":%d,"patched_ifmatch":%d,"patched_plain":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p75":%d,"p90":%d,"p95":%d,"p99":%d,"p99_9":%d}}',
    summary.requests, summary.duration, summary.bytes, t.ok, t.non2xx, t.s4xx, t.s5xx,
    e.connect, e.read, e.write, e.timeout,
    t.gets, t.lists, t.created, t.patched_ifmatch, t.patched_plain,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9))
  io.write("BENCH_JSON " .. out .. "\n")
end
