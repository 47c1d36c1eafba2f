package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
local keys = {}
local value
function init(args)
  math.randomseed(54321 + (thread_id or 0))
  for i = 0, KEYS - 1 do keys[i] = base64(key_name(i)) end
  value = base64(VALUE)
end
local headers = { ["Content-Type"] = "application/json" }
-- The same transaction as raftkv-txn.lua: version > 0, then one put.
function request()
  local key = keys[math.random(0, KEYS - 1)]
  return wrk.format("POST", "/v3/kv/txn", headers, '{"compare":[{"target":"VERSION","result":"GREATER","key":"' ..
    key .. '","version":"0"}],"success":[{"request_put":{"key":"' .. key .. '","value":"' .. value .. '"}}]}')
end
