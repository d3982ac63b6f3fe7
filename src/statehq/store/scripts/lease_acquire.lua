#!lua flags=allow-oom
--[[ statehq lease_acquire: give one holder at a time a fencing token for a member.

KEYS[1] lease  string "<token>:<holder>"   KEYS[2] fence  token counter
ARGV[1] holder name, unique to this attempt   ARGV[2] lease TTL in ms
ARGV[3] fence-counter TTL in ms

Returns {1, token} when acquired, {0, remaining_ttl_ms} when someone else holds it.

Tokens only grow. A counter that expired restarts from the server clock in ms, so a
holder paused across that gap still holds a token lower than any issued since.

allow-oom: two small keys, so workers can take a sender on a full server and
set aside, retry or acknowledge what is queued there.
]]
local held = redis.call("GET", KEYS[1])
if held then
  local token, who = string.match(held, "^(%d+):(.*)$")
  -- This very attempt, sent again after its reply was lost (a dropped connection): it
  -- holds the lease already, so it gets its token back instead of waiting out the TTL.
  if who == ARGV[1] then return {1, tonumber(token)} end
  return {0, redis.call("PTTL", KEYS[1])}
end
if redis.call("EXISTS", KEYS[2]) == 0 then
  local now = redis.call("TIME")
  redis.call("SET", KEYS[2], string.format("%d", tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)))
end
local token = redis.call("INCR", KEYS[2])
redis.call("PEXPIRE", KEYS[2], ARGV[3])
redis.call("SET", KEYS[1], token .. ":" .. ARGV[1], "PX", ARGV[2])
return {1, token}
