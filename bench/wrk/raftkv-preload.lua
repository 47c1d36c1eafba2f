package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
local next_key = 0
function init(args) next_key = (thread_id or 0) * 5000 end
local headers = { ["Content-Type"] = "application/json" }
function request()
  local body = '{"key":"' .. key_name(next_key % KEYS) .. '","value":"' .. VALUE .. '"}'
  next_key = next_key + 1
  return wrk.format("PUT", "/set", headers, body)
end
