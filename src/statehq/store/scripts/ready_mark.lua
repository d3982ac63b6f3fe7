#!lua flags=allow-oom
--[[ statehq ready_mark: say senders have work.

KEYS[1] ready  sorted set  sender -> when it may next be picked (ms, server clock)
ARGV[1] delay in ms: "0" = due now, never postponing a sender already waiting (ZADD LT
        keeps an earlier score, so it keeps its place in line); otherwise due after the
        delay (its lease was busy, or its next update is waiting out a retry backoff)
ARGV[2..n] senders

Returns how many senders were marked. allow-oom: a drained inbox with work left must
stay reachable even on a full server (the entry exists already, or is one small member).
]]
local now = redis.call("TIME")
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local delay = tonumber(ARGV[1])
for i = 2, #ARGV do
  if delay == 0 then
    redis.call("ZADD", KEYS[1], "LT", ms, ARGV[i])
  else
    redis.call("ZADD", KEYS[1], ms + delay, ARGV[i])
  end
end
return #ARGV - 1
