#!lua flags=allow-oom
--[[ statehq ready_claim: pick senders whose inbox has work, hiding them for a while.

KEYS[1] ready  sorted set  sender -> when it may next be picked (ms, server clock)
ARGV[1] how long (ms) the picked senders stay hidden from other workers
ARGV[2] (optional, default 1) the most senders to pick
ARGV[3] (optional, default 1) pick at most the due senders divided by this (at least
        one): a worker that takes several leaves the rest of the line to the others

Returns {sender, hidden_until_ms, sender, hidden_until_ms, ...} (one pair per sender
picked), or false when none is due. The hiding is a visibility timeout: a worker that
dies holding a sender lets it reappear once the timeout passes. hidden_until_ms is what
ready_done compares to tell whether anyone marked the sender since. allow-oom: it only
rescores members already in the set.
]]
local now = redis.call("TIME")
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local most = tonumber(ARGV[2] or "1")
if most > 1 then
  local share = math.floor(redis.call("ZCOUNT", KEYS[1], "-inf", ms) / tonumber(ARGV[3] or "1"))
  most = math.max(1, math.min(most, share))
end
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ms, "LIMIT", 0, most)
if #due == 0 then return false end
local hidden = ms + tonumber(ARGV[1])
local until_ms = string.format("%d", hidden)
local picked = {}
for _, sender in ipairs(due) do
  redis.call("ZADD", KEYS[1], "XX", hidden, sender)
  picked[#picked + 1] = sender
  picked[#picked + 1] = until_ms
end
return picked
