package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
function init(args) math.randomseed(54321 + (thread_id or 0)) end
local headers = { ["Content-Type"] = "application/json" }
-- One comparison (the key exists: version > 0) and one put.
function request()
  local key = key_name(math.random(0, KEYS - 1))
  return wrk.format("POST", "/txn", headers, '{"compare":[{"key":"' .. key .. '","version":0,"op":">"}],' ..
    '"success":[{"put":{"key":"' .. key .. '","value":"' .. VALUE .. '"}}]}')
end
