#!lua flags=no-writes
--[[ statehq get: one member's document, its TTL, and whether it expired.

KEYS[1]  doc   hash of path -> JSON leaf
KEYS[2]  seen  last version written; outlives the session

Returns {1, ttl_ms, flat_fields}  the session is live (fields as HGETALL returns them)
        {2, last_version}          no document, but one expired recently
        {0}                        no document, and none is remembered
]]
local flat = redis.call("HGETALL", KEYS[1])
if #flat > 0 then return {1, redis.call("PTTL", KEYS[1]), flat} end
local seen = redis.call("GET", KEYS[2])
if seen then return {2, tonumber(seen)} end
return {0}
