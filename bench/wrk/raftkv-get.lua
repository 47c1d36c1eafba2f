package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
function init(args) math.randomseed(54321 + (thread_id or 0)) end
function request()
  return wrk.format("GET", "/get?key=" .. key_name(math.random(0, KEYS - 1)))
end
