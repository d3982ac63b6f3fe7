#!lua
--[[ statehq ready_claim: pick a sender whose inbox has work, hiding it for a while.

KEYS[1] ready  sorted set  sender -> when it may next be picked (ms, server clock)
ARGV[1] how long (ms) the picked sender stays hidden from other workers

Returns the sender, or false when none is due. The hiding is a visibility timeout: a
worker that dies holding a sender lets it reappear once the timeout passes.
]]
local now = redis.call("TIME")
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ms, "LIMIT", 0, 1)
if #due == 0 then return false end
redis.call("ZADD", KEYS[1], "XX", ms + tonumber(ARGV[1]), due[1])
return due[1]
