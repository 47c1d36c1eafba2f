package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
local bodies = {}
function init(args)
  math.randomseed(54321 + (thread_id or 0))
  for i = 0, 99 do
    bodies[i] = '{"key":"' .. base64(string.format("key%03d", i)) .. '","range_end":"' ..
      base64(string.format("key%03d", i + 1)) .. '"}'
  end
end
local headers = { ["Content-Type"] = "application/json" }
-- The same 100 keys as raftkv-range100.lua, linearizable.
function request()
  return wrk.format("POST", "/v3/kv/range", headers, bodies[math.random(0, 99)])
end
