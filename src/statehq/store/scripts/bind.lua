#!lua
--[[ statehq bind: move a channel's session to the member it belongs to.

The caller has already written the channel session's content into the member's
session (another key, maybe another Cluster slot). This script then, atomically on the
channel's keys, checks that the channel session did not change since it was copied,
records the route and removes the channel's own document. Readers and writers check
the route in their own scripts, so they see either the channel session or the member's,
never a gap.

KEYS[1] doc   KEYS[2] hist   KEYS[3] route   KEYS[4] audit   KEYS[5] seen

ARGV[1]  version of the channel session that was copied (0 = there was none)
ARGV[2]  target session key
ARGV[3]  audit retention in ms     ARGV[4]  audit stream max length
ARGV[5]  timestamp (JSON string)   ARGV[6]  channel   ARGV[7]  reason   ARGV[8] detail

Returns {"OK", audit_id} | {"BOUND", current_target} | {"CONFLICT", actual_version}
]]
local current = redis.call("GET", KEYS[3])
if current then return {"BOUND", current} end
local version = tonumber(redis.call("HGET", KEYS[1], "_version")) or 0
if version ~= tonumber(ARGV[1]) then return {"CONFLICT", version} end
redis.call("SET", KEYS[3], ARGV[2])
-- seen goes too: after an unbind, the number's next holder starts afresh, not "expired".
redis.call("DEL", KEYS[1], KEYS[2], KEYS[5])
local id = redis.call("XADD", KEYS[4], "MAXLEN", ARGV[4], "*",
  "ts", ARGV[5], "event", "identity.bound", "channel", ARGV[6], "reason", ARGV[7],
  "detail", ARGV[8], "v_before", tostring(version), "v_after", "", "fields", "[]",
  "removed", "[]", "values", "{}")
redis.call("PEXPIRE", KEYS[4], ARGV[3])
return {"OK", id}
