#!lua flags=allow-oom
--[[ statehq dead_drop: forget a dead letter for good (an operator decided).

KEYS[1] dead  hash   KEYS[2] dead:why  hash   ARGV[1] message id

Returns 1 when dropped, 0 when there was no such dead letter. allow-oom: it frees memory.
]]
local dropped = redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
return dropped
