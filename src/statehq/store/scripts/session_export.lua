#!lua flags=no-writes
--[[ statehq session_export: one session as it is at this moment, for a backup.

One read of every key that makes up the session, so the document, the version inside
it, its history and its TTL belong together even while other clients keep writing.

KEYS[1]  doc    hash of path -> JSON leaf
KEYS[2]  hist   the history ring, newest first (a full version, then reverse patches)
KEYS[3]  route  set when the session moved to another key (identity binding)
KEYS[4]  audit  stream the session's audit trail

ARGV[1]  "1" = include the audit stream, "" = leave it out

Returns {1, ttl_ms, encoded, history, audit}  a live session: encoded = JSON object of
                                               path -> leaf, history = the ring's entries
                                               as stored (store/history.py rebuilds the
                                               versions), audit = XRANGE reply or {}
        {3, target}                            the session now lives under target
        {0}                                    no live document (expired or never was)
]]
local moved = redis.call("GET", KEYS[3])
if moved then return {3, moved} end
local flat = redis.call("HGETALL", KEYS[1])
if #flat == 0 then return {0} end
-- Only strings are encoded, no JSON is decoded: leaves stay opaque (see codec.py).
local doc = {}
for i = 1, #flat, 2 do doc[flat[i]] = flat[i + 1] end
local audit = {}
if ARGV[1] == "1" then audit = redis.call("XRANGE", KEYS[4], "-", "+") end
return {1, redis.call("PTTL", KEYS[1]), cjson.encode(doc), redis.call("LRANGE", KEYS[2], 0, -1),
  audit}
