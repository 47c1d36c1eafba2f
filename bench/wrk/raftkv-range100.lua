package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
require "common"
function init(args) math.randomseed(54321 + (thread_id or 0)) end
-- A prefix of 100 preloaded keys: key012 covers key01200..key01299 (linearizable).
function request()
  return wrk.format("GET", string.format("/range?prefix=key%03d", math.random(0, 99)))
end
