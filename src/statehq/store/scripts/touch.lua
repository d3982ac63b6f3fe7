#!lua
--[[ statehq touch: slide a live session's TTL without writing a version.

KEYS[1] doc   KEYS[2] hist   KEYS[3] seen
ARGV[1] session TTL in ms    ARGV[2] seen-marker TTL in ms

Returns the new TTL in ms, or -2 when there is no live session (nothing is changed).
]]
if redis.call("EXISTS", KEYS[1]) == 0 then return -2 end
redis.call("PEXPIRE", KEYS[1], ARGV[1])
redis.call("PEXPIRE", KEYS[2], ARGV[1])
redis.call("PEXPIRE", KEYS[3], ARGV[2])
return tonumber(ARGV[1])
