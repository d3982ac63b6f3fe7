#!lua flags=allow-oom
--[[ statehq ready_claim: pick a sender whose inbox has work, hiding it for a while.

KEYS[1] ready  sorted set  sender -> when it may next be picked (ms, server clock)
ARGV[1] how long (ms) the picked sender stays hidden from other workers

Returns {sender, hidden_until_ms}, or false when none is due. The hiding is a visibility
timeout: a worker that dies holding a sender lets it reappear once the timeout passes.
hidden_until_ms is what ready_done compares to tell whether anyone marked the sender
since. allow-oom: it only rescores a member already in the set.
]]
local now = redis.call("TIME")
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ms, "LIMIT", 0, 1)
if #due == 0 then return false end
local hidden = ms + tonumber(ARGV[1])
redis.call("ZADD", KEYS[1], "XX", hidden, due[1])
return {due[1], string.format("%d", hidden)}
