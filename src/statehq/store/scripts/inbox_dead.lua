#!lua flags=allow-oom
--[[ statehq inbox_dead: set a queued update aside as a dead letter, kept with its error.

KEYS[1] inbox  sorted set   KEYS[2] bodies  hash   KEYS[3] tries  hash   KEYS[4] errors  hash
KEYS[5] dead   hash id -> the encoded update   KEYS[6] dead:why  hash id -> why (JSON)
ARGV[1] message id   ARGV[2] why: JSON built by the worker (error, attempts, when)

Returns 1 when moved, 0 when the update was no longer queued. allow-oom: it moves what
the inbox already holds, so a full server can still set a poison message aside.
]]
local body = redis.call("HGET", KEYS[2], ARGV[1])
redis.call("ZREM", KEYS[1], ARGV[1])
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
redis.call("HDEL", KEYS[4], ARGV[1])
if not body then return 0 end
redis.call("HSET", KEYS[5], ARGV[1], body)
redis.call("HSET", KEYS[6], ARGV[1], ARGV[2])
return 1
