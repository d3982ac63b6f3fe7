#!lua
--[[ statehq ready_mark: say senders have work.

KEYS[1] ready  sorted set  sender -> when it may next be picked (ms, server clock)
ARGV[1] delay in ms: "0" = due now, never postponing a sender already waiting (ZADD LT
        keeps an earlier score, so it keeps its place in line); otherwise due after the
        delay, for a sender already in the set (its lease was busy)
ARGV[2..n] senders
]]
local now = redis.call("TIME")
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local delay = tonumber(ARGV[1])
for i = 2, #ARGV do
  if delay == 0 then
    redis.call("ZADD", KEYS[1], "LT", ms, ARGV[i])
  else
    redis.call("ZADD", KEYS[1], "XX", ms + delay, ARGV[i])
  end
end
return #ARGV - 1
