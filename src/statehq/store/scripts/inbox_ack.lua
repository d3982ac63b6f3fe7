#!lua flags=allow-oom
--[[ statehq inbox_ack: forget a processed update (its dedup marks stay).

KEYS[1] inbox  sorted set   KEYS[2] bodies  hash   KEYS[3] tries  hash   KEYS[4] errors  hash
ARGV[1] message id

Returns the number of updates still queued for this sender. allow-oom: it frees memory.
]]
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
redis.call("HDEL", KEYS[4], ARGV[1])
return redis.call("ZCARD", KEYS[1])
