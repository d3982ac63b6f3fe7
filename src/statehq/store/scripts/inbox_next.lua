#!lua flags=allow-oom
--[[ statehq inbox_next: the sender's oldest queued update, counting the attempt.

KEYS[1] inbox  sorted set   KEYS[2] bodies  hash   KEYS[3] tries  hash id -> attempts
KEYS[4] errors hash id -> the last error handling the update raised
KEYS[5] (optional) lease  string "<token>:<holder>": take only while the lease is ours
ARGV[1] (optional) the id of the update just processed, or "": acknowledged first, as by
        inbox_ack, which saves a worker one round trip per update
ARGV[2] (with KEYS[5]) whose the lease must be: a fencing token, or ":" and the holder
        name a lease_acquire just before this call (in the same pipeline) was given

Returns {id, body, attempts}, {} when the inbox is empty, or "LEASE" when the lease is
not ours (nothing taken; the update just processed is still acknowledged: its turn was
committed). attempts > 1 means a worker took this update before and did not acknowledge
it (it died, or its turn failed).

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
if KEYS[5] then
  -- A worker that lost its lease (paused past its TTL) must not take what its successor
  -- is taking: both would run the same update's turn.
  local token, holder = string.match(redis.call("GET", KEYS[5]) or "", "^(%d+):(.*)$")
  local want = ARGV[2]
  local ours
  if string.sub(want, 1, 1) == ":" then ours = holder == string.sub(want, 2) else ours = token == want end
  if not ours then return "LEASE" end
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
