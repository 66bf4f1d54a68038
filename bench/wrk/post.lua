-- wrk script for the llmroute benchmark: POSTs one canned body and reports JSON from done().
--
-- Environment (set by bench/run.py):
--   BENCH_BODY_FILE   file whose bytes are the request body
--   BENCH_HEADERS     request headers, one "Name: value" per line
--   BENCH_MARKER      a response counts as OK when its status is 200 and its body contains this string
--                     (e.g. "[DONE]" or "message_stop": a stream cut short is an error)
--   BENCH_WIN_START, BENCH_WIN_END
--                     measurement window, in CLOCK_MONOTONIC seconds (Python's time.monotonic()); OK
--                     responses that complete inside it are counted separately, so that the harness can
--                     divide the server's CPU time over the same window by them
--
-- done() prints one line: "BENCH_RESULT {json}".

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec_t")

local function now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

wrk.method = "POST"
wrk.body = read_file(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE not set"))
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
   local name, value = line:match("^([^:]+):%s*(.*)$")
   if name then
      wrk.headers[name] = value
   end
end

local marker = os.getenv("BENCH_MARKER") or ""
local win_start = tonumber(os.getenv("BENCH_WIN_START") or "0")
local win_end = tonumber(os.getenv("BENCH_WIN_END") or "1e18")

-- Per-thread counters, summed in done() through thread:get().
ok, bad, ok_in_window, bad_in_window, last_bad_status = 0, 0, 0, 0, 0
local statuses = {}

local threads = {}
function setup(thread)
   table.insert(threads, thread)
end

function response(status, headers, body)
   local t = now()
   local good = status == 200 and (marker == "" or (body and body:find(marker, 1, true) ~= nil))
   local inside = t >= win_start and t <= win_end
   if good then
      ok = ok + 1
      if inside then ok_in_window = ok_in_window + 1 end
   else
      bad = bad + 1
      last_bad_status = status
      if inside then bad_in_window = bad_in_window + 1 end
   end
end

function done(summary, latency, requests)
   local sums = { ok = 0, bad = 0, ok_in_window = 0, bad_in_window = 0 }
   local last_bad = 0
   for _, thread in ipairs(threads) do
      for name, _ in pairs(sums) do
         sums[name] = sums[name] + (thread:get(name) or 0)
      end
      local s = thread:get("last_bad_status") or 0
      if s ~= 0 then last_bad = s end
   end
   local e = summary.errors
   local parts = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"ok":%d', sums.ok),
      string.format('"bad":%d', sums.bad),
      string.format('"ok_in_window":%d', sums.ok_in_window),
      string.format('"bad_in_window":%d', sums.bad_in_window),
      string.format('"last_bad_status":%d', last_bad),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
         e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}',
         latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)),
   }
   io.write("BENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
end
