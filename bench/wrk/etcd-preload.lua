package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
local keys, value, next_key = {}, nil, 0
function init(args)
  for i = 0, KEYS - 1 do keys[i] = base64(key_name(i)) end
  value = base64(VALUE)
  next_key = (thread_id or 0) * 5000
end
local headers = { ["Content-Type"] = "application/json" }
function request()
  local body = '{"key":"' .. keys[next_key % KEYS] .. '","value":"' .. value .. '"}'
  next_key = next_key + 1
  return wrk.format("POST", "/v3/kv/put", headers, body)
end
