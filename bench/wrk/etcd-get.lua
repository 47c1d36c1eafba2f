package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
local keys = {}
function init(args)
  math.randomseed(54321 + (thread_id or 0))
  for i = 0, KEYS - 1 do keys[i] = base64(key_name(i)) end
end
local headers = { ["Content-Type"] = "application/json" }
-- Linearizable by default (serializable=false).
function request()
  return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. keys[math.random(0, KEYS - 1)] .. '"}')
end
