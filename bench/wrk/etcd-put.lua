package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
local keys, value = {}, nil
function init(args)
  math.randomseed(12345 + (thread_id or 0))
  for i = 0, KEYS - 1 do keys[i] = base64(key_name(i)) end
  value = base64(VALUE)
end
local headers = { ["Content-Type"] = "application/json" }
function request()
  local body = '{"key":"' .. keys[math.random(0, KEYS - 1)] .. '","value":"' .. value .. '"}'
  return wrk.format("POST", "/v3/kv/put", headers, body)
end
