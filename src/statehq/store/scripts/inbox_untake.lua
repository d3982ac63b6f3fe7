#!lua flags=allow-oom
--[[ statehq inbox_untake: take back the attempt a worker counted but could not make.

KEYS[1] tries  hash id -> attempts   ARGV[1] message id

The store failed under the worker (unreachable, full), not the update: the attempt must
not bring the update closer to the dead letters. Returns the attempts left counted.
allow-oom: a full server is exactly when this is needed.
]]
local tries = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0")
if tries > 0 then
  return redis.call("HINCRBY", KEYS[1], ARGV[1], -1)
end
return 0
