#!lua
--[[ statehq update: apply hash operations to one member's document atomically.

KEYS[1]  doc    hash  path -> JSON leaf ("{}" marks an object)
KEYS[2]  hist   list  newest-first encoded versions
KEYS[3]  seen   string last version written (outlives the session to tell "expired")
KEYS[4]  lease  string "<token>:<holder>"
KEYS[5]  msg    string dedup mark of the inbound message (optional)

ARGV[1]  expected version, "" for none (0 = must not exist)
ARGV[2]  fencing token, "" for none
ARGV[3]  session TTL in ms          ARGV[4]  seen-marker TTL in ms
ARGV[5]  history length            ARGV[6]  dedup-mark TTL in ms
ARGV[7]  max document bytes        ARGV[8]  _last_updated as a JSON string leaf
ARGV[9..] operation triples (op, path, value); see statehq/store/codec.py

Returns one of
  {"OK", version, ttl_ms, encoded}          encoded = JSON object of path -> leaf
  {"DUP", produced_version, version, ttl_ms, encoded or ""}
  {"CONFLICT", actual_version}
  {"LEASE", current_token or -1}
  {"TOOBIG", size}
  {"ABSENT"}                                 an "E" op found no document

Nothing is written unless the reply is OK. JSON is never decoded here: leaves are
opaque strings, which is what keeps [] a list and 2**64 exact.
]]
local doc_key, hist_key, seen_key, lease_key, msg_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local expected, token = ARGV[1], ARGV[2]
local ttl, seen_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local hist_len, dedup_ttl, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])

if token ~= "" then
  local held = redis.call("GET", lease_key)
  local current = held and string.match(held, "^(%d+):")
  if current ~= token then return {"LEASE", tonumber(current) or -1} end
end

local flat = redis.call("HGETALL", doc_key)
local exists = #flat > 0
local doc = {}
for i = 1, #flat, 2 do doc[flat[i]] = flat[i + 1] end
local version = exists and (tonumber(doc["_version"]) or 0) or 0

if msg_key then
  local produced = redis.call("GET", msg_key)
  if produced then
    local encoded = exists and cjson.encode(doc) or ""
    return {"DUP", tonumber(produced), version, redis.call("PTTL", doc_key), encoded}
  end
end

if expected ~= "" and tonumber(expected) ~= version then return {"CONFLICT", version} end

local changed = {}
local function drop_subtree(path)
  local prefix = path .. "."
  local n = #prefix
  for field in pairs(doc) do
    if string.sub(field, 1, n) == prefix then doc[field] = nil; changed[field] = false end
  end
end

local keep = {_version = true, _last_updated = true}
for i = 9, #ARGV, 3 do
  local op, path, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == "S" then
    if doc[path] == "{}" then drop_subtree(path) end
    doc[path] = value; changed[path] = value
  elseif op == "O" then
    if doc[path] ~= "{}" then doc[path] = "{}"; changed[path] = "{}" end
  elseif op == "D" then
    if doc[path] == "{}" then drop_subtree(path) end
    if doc[path] then doc[path] = nil; changed[path] = false end
  elseif op == "P" then
    keep[path] = true
  elseif op == "C" then
    for field in pairs(doc) do
      if not keep[string.match(field, "^[^.]*")] then doc[field] = nil; changed[field] = false end
    end
  elseif op == "E" then
    if not exists then return {"ABSENT"} end
  else
    return redis.error_reply("ERR statehq update: unknown operation " .. tostring(op))
  end
end

local new_version = version + 1
if not exists then new_version = (tonumber(redis.call("GET", seen_key)) or 0) + 1 end
local version_leaf = string.format("%d", new_version)
doc["_version"] = version_leaf; changed["_version"] = version_leaf
doc["_last_updated"] = ARGV[8]; changed["_last_updated"] = ARGV[8]

local size = 0
for field, value in pairs(doc) do size = size + #field + #value end
if size > max_bytes then return {"TOOBIG", size} end

local sets, dels = {}, {}
for field, value in pairs(changed) do
  if value then sets[#sets + 1] = field; sets[#sets + 1] = value else dels[#dels + 1] = field end
end
for i = 1, #dels, 1000 do redis.call("HDEL", doc_key, unpack(dels, i, math.min(i + 999, #dels))) end
for i = 1, #sets, 1000 do redis.call("HSET", doc_key, unpack(sets, i, math.min(i + 999, #sets))) end

local encoded = cjson.encode(doc)
redis.call("LPUSH", hist_key, encoded)
redis.call("LTRIM", hist_key, 0, hist_len - 1)
redis.call("PEXPIRE", doc_key, ttl)
redis.call("PEXPIRE", hist_key, ttl)
redis.call("SET", seen_key, version_leaf, "PX", seen_ttl)
if msg_key then redis.call("SET", msg_key, version_leaf, "PX", dedup_ttl) end
return {"OK", new_version, ttl, encoded}
