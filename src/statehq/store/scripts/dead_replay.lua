#!lua
--[[ statehq dead_replay: put a dead letter back in its sender's inbox, attempts reset.

KEYS[1] inbox  sorted set   KEYS[2] bodies  hash   KEYS[3] seq  string
KEYS[4] dead   hash         KEYS[5] dead:why  hash
ARGV[1] message id   ARGV[2] its timestamp (s): it goes back in timestamp order

Returns 1 when requeued, 0 when there is no such dead letter. The caller then marks the
sender ready (another slot on Cluster); a lost mark is found by the reconciler.
]]
local body = redis.call("HGET", KEYS[4], ARGV[1])
if not body then return 0 end
local seq = redis.call("INCR", KEYS[3]) % 1000000
redis.call("ZADD", KEYS[1], string.format("%.0f", tonumber(ARGV[2]) * 1000000 + seq), ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], body)
redis.call("HDEL", KEYS[4], ARGV[1])
redis.call("HDEL", KEYS[5], ARGV[1])
return 1
