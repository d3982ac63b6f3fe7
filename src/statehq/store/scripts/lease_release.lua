#!lua flags=allow-oom
--[[ statehq lease_release: drop a lease, only for its current holder.

KEYS[1] lease   ARGV[1] fencing token
Returns 1 when released, 0 when the token was no longer current (nothing changed).
allow-oom: it frees memory.
]]
local held = redis.call("GET", KEYS[1])
if held and string.match(held, "^(%d+):") == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
