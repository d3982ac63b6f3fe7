#!lua flags=allow-oom
--[[ statehq inbox_next: the sender's oldest queued update, counting the attempt.

KEYS[1] inbox  sorted set   KEYS[2] bodies  hash   KEYS[3] tries  hash id -> attempts
KEYS[4] errors hash id -> the last error handling the update raised
ARGV[1] (optional) the id of the update just processed: acknowledged first, as by
        inbox_ack, which saves a worker one round trip per update

Returns {id, body, attempts} or {} when the inbox is empty. attempts > 1 means a worker
took this update before and did not acknowledge it (it died, or its turn failed).

allow-oom: it only removes and counts, and a full server must still let workers drain
what they acknowledged.
]]
local done = ARGV[1]
if done and done ~= "" then
  redis.call("ZREM", KEYS[1], done)
  redis.call("HDEL", KEYS[2], done)
  redis.call("HDEL", KEYS[3], done)
  redis.call("HDEL", KEYS[4], done)
end
local head = redis.call("ZRANGE", KEYS[1], 0, 0)
if #head == 0 then return {} end
local id = head[1]
local body = redis.call("HGET", KEYS[2], id)
if not body then
  redis.call("ZREM", KEYS[1], id)
  return {id, "", 0}
end
return {id, body, redis.call("HINCRBY", KEYS[3], id, 1)}
