#!lua flags=allow-oom
--[[ statehq ready_done: take a drained sender off the ready set, unless it was marked since.

KEYS[1] ready  sorted set  sender -> when it may next be picked (ms)
ARGV[1] sender   ARGV[2] the hidden_until_ms its claim (ready_claim) set

The worker found the sender's inbox empty, then calls this. A webhook that queued an
update in between has marked the sender (its score moved), so the sender stays. Timeline
this prevents: worker reads "empty"; webhook queues m2 and marks; worker removes the
sender; m2 waits for the reconciler. Returns 1 when removed. allow-oom: it frees memory.
]]
local score = redis.call("ZSCORE", KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call("ZREM", KEYS[1], ARGV[1])
  return 1
end
return 0
