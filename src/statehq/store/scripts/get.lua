#!lua flags=no-writes
--[[ statehq get: one session's document, its TTL, and whether it expired or moved.

KEYS[1]  doc    hash of path -> JSON leaf
KEYS[2]  seen   last version written; outlives the session
KEYS[3]  route  set when the session moved to another key (identity binding)

Returns {1, ttl_ms, fields}       the session is live; fields = the hash as HGETALL sends it
        {2, last_version}          no document, but one expired recently
        {3, target}                the session now lives under target
        {0}                        no document, and none is remembered
]]
-- Checked first and in the same script: a reader never sees the window between a
-- binding's copy to the member and the removal of the channel's own document.
local moved = redis.call("GET", KEYS[3])
if moved then return {3, moved} end
local flat = redis.call("HGETALL", KEYS[1])
if #flat > 0 then
  -- As HGETALL sent it: the client's parser reads a flat reply in C, faster than this
  -- script could encode it as one JSON object (and no JSON is ever decoded in Lua).
  return {1, redis.call("PTTL", KEYS[1]), flat}
end
local seen = redis.call("GET", KEYS[2])
if seen then return {2, tonumber(seen)} end
return {0}
