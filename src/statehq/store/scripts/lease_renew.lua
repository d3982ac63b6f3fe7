#!lua flags=allow-oom
--[[ statehq lease_renew: extend a lease, only for its current holder.

KEYS[1] lease   ARGV[1] fencing token   ARGV[2] lease TTL in ms
Returns 1 when renewed, 0 when the token is no longer current (the lease was lost).
allow-oom: it only changes a TTL.
]]
local held = redis.call("GET", KEYS[1])
if held and string.match(held, "^(%d+):") == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
end
return 0
