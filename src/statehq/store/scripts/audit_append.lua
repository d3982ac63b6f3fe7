#!lua
--[[ statehq audit_append: record an event that changes no state (a refused write, a
     message id, an expiry noticed) in a session's audit stream.

KEYS[1]  audit  stream the session's audit trail
KEYS[2]  seen   string last version written (reported as the entry's version)

ARGV[1]  audit retention in ms     ARGV[2]  audit stream max length
ARGV[3]  timestamp (JSON string)   ARGV[4]  event   ARGV[5]  channel
ARGV[6]  reason                    ARGV[7]  detail (JSON object)

Returns the entry id. The stream expires after the retention period of quiet, and
entries older than it are trimmed on every append, so it cannot grow without bound.
]]
local version = redis.call("GET", KEYS[2]) or ""
local id = redis.call("XADD", KEYS[1], "MAXLEN", ARGV[2], "*",
  "ts", ARGV[3], "event", ARGV[4], "channel", ARGV[5], "reason", ARGV[6], "detail", ARGV[7],
  "v_before", version, "v_after", version, "fields", "[]", "removed", "[]", "values", "{}")
local now = redis.call("TIME")
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[1])
redis.call("XTRIM", KEYS[1], "MINID", string.format("%d", math.max(oldest, 0)))
redis.call("PEXPIRE", KEYS[1], ARGV[1])
return id
