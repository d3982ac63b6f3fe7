#!lua
--[[ statehq unbind: detach a channel from the member it was bound to.

KEYS[1] route   KEYS[2] audit

ARGV[1]  audit retention in ms     ARGV[2]  audit stream max length
ARGV[3]  timestamp (JSON string)   ARGV[4]  channel   ARGV[5]  reason   ARGV[6] detail

Returns {"OK", former_target, audit_id} | {"NOTBOUND"}
]]
local target = redis.call("GET", KEYS[1])
if not target then return {"NOTBOUND"} end
redis.call("DEL", KEYS[1])
local id = redis.call("XADD", KEYS[2], "MAXLEN", ARGV[2], "*",
  "ts", ARGV[3], "event", "identity.unbound", "channel", ARGV[4], "reason", ARGV[5],
  "detail", ARGV[6], "v_before", "", "v_after", "", "fields", "[]", "removed", "[]",
  "values", "{}")
redis.call("PEXPIRE", KEYS[2], ARGV[1])
return {"OK", target, id}
