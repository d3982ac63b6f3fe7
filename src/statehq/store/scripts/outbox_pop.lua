#!lua flags=allow-oom
--[[ statehq outbox_pop: drop the outbox's first reply once it has been sent.

KEYS[1] outbox list   ARGV[1] the entry that was sent

Pops only when that entry is still first, so two drainers never drop a reply unsent.
Returns 1 when popped. allow-oom: it frees memory.
]]
if redis.call("LINDEX", KEYS[1], 0) == ARGV[1] then
  redis.call("LPOP", KEYS[1])
  return 1
end
return 0
