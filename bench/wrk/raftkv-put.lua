package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
function init(args) math.randomseed(12345 + (thread_id or 0)) end
local headers = { ["Content-Type"] = "application/json" }
function request()
  local body = '{"key":"' .. key_name(math.random(0, KEYS - 1)) .. '","value":"' .. VALUE .. '"}'
  return wrk.format("PUT", "/set", headers, body)
end
