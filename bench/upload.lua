-- wrk script of the ingest benchmarks: POST one prepared multipart body again and again.
-- AUTHORIZATION: one header for every request (a client keeping its token); TOKENS_FILE: a
-- bearer token per line, each request the next one (many clients, each token new to the server).
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. os.getenv("BOUNDARY")
if os.getenv("AUTHORIZATION") then
  wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")
end
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*all")
f:close()

local tokens = {}
if os.getenv("TOKENS_FILE") then
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    tokens[#tokens + 1] = line
  end
end
local next_token = 0
local threads = 0
function setup(thread)  -- wrk's two threads take alternate tokens: none is sent twice in a cycle
  thread:set("id", threads)
  threads = threads + 1
end

if #tokens > 0 then
  request = function()
    next_token = next_token + 1
    local index = (next_token * 2 + (id or 0)) % #tokens + 1
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    headers["Authorization"] = "Bearer " .. tokens[index]
    return wrk.format(nil, nil, headers, wrk.body)
  end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f %.1f %d\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
